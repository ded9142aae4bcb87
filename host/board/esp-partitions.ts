// ESP-IDF's binary partition table (what `idf.py build` writes to partition_table/partition-table.bin,
// flashed at 0x8000): 32-byte entries [magic 0xAA 0x50, type, subtype, offset u32 LE, size u32 LE,
// label 16 bytes, flags u32 LE], then an MD5 entry [0xEB 0xEB, 14 bytes 0xFF, MD5 of the entries before
// it], then 0xFF. Read here so `flash --rom --firmware` can check that the firmware it writes looks for
// the model where the image goes.
import { createHash } from 'node:crypto';
import { UserError } from '../errors.ts';

export interface EspPartition {
  label: string;
  type: number;      // 0 app, 1 data, others custom
  subtype: number;
  offset: number;
  size: number;
}

const ENTRY = 32;
const MAX_ENTRIES = 95; // 0xC00 bytes

export function readPartitionTable(b: Uint8Array, what: string): EspPartition[] {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: EspPartition[] = [];
  for (let i = 0; i < MAX_ENTRIES && (i + 1) * ENTRY <= b.byteLength; i++) {
    const at = i * ENTRY;
    const magic = v.getUint16(at, true);
    if (magic === 0x50aa) {
      const label = new TextDecoder().decode(b.subarray(at + 12, at + 28)).replace(/\0.*$/s, '');
      out.push({ label, type: b[at + 2], subtype: b[at + 3], offset: v.getUint32(at + 4, true), size: v.getUint32(at + 8, true) });
      continue;
    }
    if (magic === 0xebeb) {
      const want = Buffer.from(b.subarray(at + 16, at + 32)).toString('hex');
      const got = createHash('md5').update(b.subarray(0, at)).digest('hex');
      if (want !== got) throw new UserError(`${what}: the partition table's MD5 entry (${want}) is not the MD5 of its entries (${got})`);
      break;
    }
    if (magic === 0xffff) break;
    throw new UserError(`${what}: not an ESP-IDF partition table (entry ${i} starts with 0x${magic.toString(16).padStart(4, '0')}, expected 0x50aa)`);
  }
  if (!out.length) throw new UserError(`${what}: an empty partition table`);
  return out;
}
