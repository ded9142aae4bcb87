// The slot-state record's vectors (docs/slots.md), written from the spec: records.json with encoded
// records (fields -> 100 bytes), copies a reader must ignore, and which copy wins when a region holds
// two. The C runtime's one writer and reader (boards/runtime/core/slots.c) passes them
// (test/runtime-slot-record.test.ts). `npx tsx test/vectors/slots/generate.ts [--check]`.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SLOT_STATES } from '../../../host/board/frames.ts';
import { crc32 } from '../../../host/image/crc32.ts';
import { fromRoot } from '../../../host/paths.ts';

export const SLOT_VECTOR_DIR = fromRoot('test', 'vectors', 'slots');
export const RECORD_BYTES = 100;
const MAGIC = 0x52534645; // "EFSR"
const VERSION = 2;
const STATE = Object.fromEntries(SLOT_STATES.map((s, i) => [s, i])) as Record<(typeof SLOT_STATES)[number], number>;

export interface SlotInfo { state: (typeof SLOT_STATES)[number]; size: number; sha256: string }
export interface SlotRecord { seq: number; active: number; trial: number; slots: [SlotInfo, SlotInfo] }

export function encodeRecord(r: SlotRecord, version = VERSION): Uint8Array {
  const b = new Uint8Array(RECORD_BYTES);
  const v = new DataView(b.buffer);
  v.setUint32(0, MAGIC, true);
  b[4] = version;
  v.setUint32(8, r.seq >>> 0, true);
  b[12] = r.active;
  b[13] = r.trial;
  r.slots.forEach((s, i) => {
    const at = 16 + 40 * i;
    b[at] = STATE[s.state];
    v.setUint32(at + 4, s.size, true);
    b.set(Buffer.from(s.sha256, 'hex'), at + 8);
  });
  v.setUint32(96, crc32(b.subarray(0, 96)), true);
  return b;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const sha = (c: string) => c.repeat(64 / c.length);
const empty: SlotInfo = { state: 'empty', size: 0, sha256: sha('00') };
const EMPTY_RECORD: SlotRecord = { seq: 0, active: 0xff, trial: 0, slots: [empty, empty] };

function manifest(): string {
  const records: Array<{ name: string; record: SlotRecord }> = [
    { name: 'a first upload under way into slot A', record: { seq: 1, active: 0xff, trial: 0, slots: [{ state: 'receiving', size: 155288, sha256: sha('5b2bccd9') }, empty] } },
    { name: 'A committed: pending, trial not begun', record: { seq: 2, active: 0, trial: 0, slots: [{ state: 'pending', size: 155288, sha256: sha('5b2bccd9') }, empty] } },
    { name: 'A on its trial boot', record: { seq: 3, active: 0, trial: 1, slots: [{ state: 'pending', size: 155288, sha256: sha('5b2bccd9') }, empty] } },
    { name: 'A confirmed, B receiving', record: { seq: 5, active: 0, trial: 0, slots: [{ state: 'confirmed', size: 155288, sha256: sha('5b2bccd9') }, { state: 'receiving', size: 3080192, sha256: sha('ff00') }] } },
    { name: 'B rolled back (invalid), A boots', record: { seq: 9, active: 0, trial: 0, slots: [{ state: 'confirmed', size: 56, sha256: sha('01') }, { state: 'invalid', size: 4096, sha256: sha('a5') }] } },
    { name: 'sequence near its wrap', record: { seq: 0xffffffff, active: 1, trial: 0, slots: [{ state: 'invalid', size: 1, sha256: sha('7e') }, { state: 'confirmed', size: 0xfffffffe, sha256: sha('c3') }] } },
  ];
  const good = encodeRecord(records[3].record);
  const mutate = (f: (b: Uint8Array) => void, recrc = true) => {
    const b = good.slice();
    f(b);
    if (recrc) new DataView(b.buffer).setUint32(96, crc32(b.subarray(0, 96)), true);
    return hex(b);
  };
  const ignored = [
    { name: 'erased flash (all 0xFF)', hex: 'ff'.repeat(RECORD_BYTES) },
    { name: 'all zeros', hex: '00'.repeat(RECORD_BYTES) },
    { name: 'one bit of the sequence flipped (CRC)', hex: mutate((b) => (b[8] ^= 1), false) },
    { name: 'the CRC itself flipped', hex: mutate((b) => (b[99] ^= 0x80), false) },
    { name: 'half written: the second half still erased', hex: hex(Uint8Array.from([...good.subarray(0, 50), ...new Uint8Array(50).fill(0xff)])) },
    { name: 'version 1 (its own state numbers)', hex: hex(encodeRecord(records[3].record, 1)) },
    { name: 'bad magic', hex: mutate((b) => (b[0] = 0x46)) },
    { name: 'active slot 2', hex: mutate((b) => (b[12] = 2)) },
    { name: 'slot A in state written (RAM only, never stored)', hex: mutate((b) => (b[16] = STATE.written)) },
    { name: 'slot B in state verified (RAM only, never stored)', hex: mutate((b) => (b[56] = STATE.verified)) },
    { name: 'slot A in state 7 (no such state)', hex: mutate((b) => (b[16] = 7)) },
  ];
  const r = (i: number) => records[i].record;
  const at = (rec: SlotRecord, seq: number): SlotRecord => ({ ...rec, seq });
  const choose = [
    { name: 'both valid: the newer sequence wins (copy 1)', copies: [hex(encodeRecord(at(r(1), 2))), hex(encodeRecord(at(r(2), 3)))], chosen: at(r(2), 3) },
    { name: 'both valid: the newer sequence wins (copy 0)', copies: [hex(encodeRecord(at(r(3), 6))), hex(encodeRecord(at(r(1), 5)))], chosen: at(r(3), 6) },
    { name: 'newer across the wrap: 0 after 0xFFFFFFFF', copies: [hex(encodeRecord(at(r(4), 0))), hex(encodeRecord(at(r(5), 0xffffffff)))], chosen: at(r(4), 0) },
    { name: 'the newer copy cut by a power loss: the older stays in force', copies: [hex(encodeRecord(at(r(2), 8))).slice(0, 100) + 'ff'.repeat(50), hex(encodeRecord(at(r(1), 7)))], chosen: at(r(1), 7) },
    { name: 'only copy 0 valid', copies: [hex(encodeRecord(at(r(0), 4))), 'ff'.repeat(RECORD_BYTES)], chosen: at(r(0), 4) },
    { name: 'neither valid (a new slot file): every slot empty, none active, sequence 0', copies: ['ff'.repeat(RECORD_BYTES), '00'.repeat(RECORD_BYTES)], chosen: EMPTY_RECORD },
  ];
  return JSON.stringify({
    spec: 'docs/slots.md', record_bytes: RECORD_BYTES, version: VERSION, states: SLOT_STATES,
    records: records.map((x) => ({ ...x, hex: hex(encodeRecord(x.record)) })), ignored, choose,
  }, null, 1) + '\n';
}

export function vectorFiles(): Map<string, string> {
  return new Map([['records.json', manifest()]]);
}

if (process.argv[1]?.endsWith('generate.ts') && process.argv[1].includes('slots')) {
  const check = process.argv.includes('--check');
  let bad = 0;
  for (const [name, content] of vectorFiles()) {
    const path = join(SLOT_VECTOR_DIR, name);
    if (check) {
      if (!existsSync(path) || readFileSync(path, 'utf8') !== content) {
        process.stderr.write(`differs: ${path}\n`);
        bad++;
      }
    } else writeFileSync(path, content);
  }
  process.stderr.write(check ? `${bad} of the slot vector files differ\n` : `wrote ${vectorFiles().size} file to ${SLOT_VECTOR_DIR}\n`);
  process.exit(bad ? 1 : 0);
}
