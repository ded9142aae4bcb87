// Writes the protocol's shared vectors (vectors.json) and C constants (protocol.gen.h) from the frame
// table in host/board/frames.ts and the framing in host/board/framing.ts.
// `npx tsx test/vectors/protocol/generate.ts` (--check compares instead of writing); test/board-framing.test.ts
// regenerates them in memory and requires the committed files to match.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from '../../../host/image/crc32.ts';
import { sha256, toHex } from '../../../host/image/sign.ts';
import {
  BODY_OVERHEAD, CHUNK_OVERHEAD, ERROR_CODES, FRAME_TYPES, HOST_MAX_FRAME, MIN_IMAGE_SIZE, MIN_MAX_FRAME, PROTOCOL_VERSION,
  REPLY_BIT, SLOT_STATES, STATS_REASONS, LOG_LEVELS, T, TYPE_BY_NAME, concat, encodePayload, errorName, fieldOffsets, fixedSize, payloadRange,
  type Direction, type Fields,
} from '../../../host/board/frames.ts';
import { Decoder, cobsEncode, encodeFrame, frameBody, type DecodeEvent } from '../../../host/board/framing.ts';
import { fromRoot } from '../../../host/paths.ts';

export const PROTOCOL_VECTOR_DIR = fromRoot('test', 'vectors', 'protocol');

const te = new TextEncoder();
const seqBytes = (n: number, from = 1) => Uint8Array.from({ length: n }, (_, i) => ((i + from) % 255) + 1);
const SHA = sha256(te.encode('edge-flash protocol vector image'));

// One sample of every frame type, with the values the vectors' encoded bytes come from.
export const SAMPLES: Array<{ name: string; type: string; seq: number; fields: Fields }> = [
  { name: 'hello', type: 'HELLO', seq: 1, fields: { protocol_version: PROTOCOL_VERSION, host_max_frame: HOST_MAX_FRAME } },
  { name: 'info', type: 'INFO', seq: 2, fields: {} },
  { name: 'bye', type: 'BYE', seq: 14, fields: {} },
  { name: 'upload_begin', type: 'UPLOAD_BEGIN', seq: 3, fields: { image_size: 300000, sha256: SHA } },
  { name: 'upload_chunk', type: 'UPLOAD_CHUNK', seq: 4, fields: { offset: 4096, data: Uint8Array.of(0x45, 0x46, 0x49, 0x4d, 0x00, 0x01, 0x00, 0x00, 0xff) } },
  { name: 'upload_chunk_zeros', type: 'UPLOAD_CHUNK', seq: 5, fields: { offset: 0, data: new Uint8Array(300) } },
  { name: 'upload_chunk_254_nonzero', type: 'UPLOAD_CHUNK', seq: 6, fields: { offset: 0x01020304, data: seqBytes(300) } },
  { name: 'verify', type: 'VERIFY', seq: 7, fields: {} },
  { name: 'commit', type: 'COMMIT', seq: 8, fields: {} },
  { name: 'confirm', type: 'CONFIRM', seq: 9, fields: {} },
  { name: 'rollback', type: 'ROLLBACK', seq: 10, fields: {} },
  { name: 'reset', type: 'RESET', seq: 11, fields: {} },
  { name: 'chat', type: 'CHAT', seq: 12, fields: { seed: 42, temperature: 0.8, top_p: 0.9, steps: 64, mode: 0, flags: 1, prompt: te.encode('In the beginning') } },
  { name: 'chat_greedy_empty', type: 'CHAT', seq: 13, fields: { seed: 0, temperature: 0, top_p: 1, steps: 0, mode: 1, flags: 0, prompt: new Uint8Array(0) } },
  { name: 'cancel', type: 'CANCEL', seq: 255, fields: {} },
  { name: 'hello_reply', type: 'HELLO_REPLY', seq: 1, fields: { protocol_version: 1, board_id: 2, max_frame: 4106 } },
  { name: 'bye_reply', type: 'BYE_REPLY', seq: 14, fields: {} },
  {
    name: 'info_reply', type: 'INFO_REPLY', seq: 2, fields: {
      protocol_version: 1, board_id: 2, max_frame: 4106, slot_capacity: 0x1f0000, erase_block: 4096, heap_free: 120000, heap_largest: 90000,
      linear_memory: 163840, last_tok_per_s_x1000: 45250, booted_slot: 0, slot_a_state: 5, slot_b_state: 1, flags: 1,
      booted_sha256: sha256(te.encode('booted')), upload_sha256: SHA, upload_size: 300000, upload_next: 8192,
      strings: ['0.1.0', '0.9.0', 'esp32'],
    },
  },
  { name: 'upload_begin_reply', type: 'UPLOAD_BEGIN_REPLY', seq: 3, fields: { next_offset: 8192, max_chunk: 4096, window: 4 } },
  { name: 'upload_chunk_reply', type: 'UPLOAD_CHUNK_REPLY', seq: 4, fields: { offset: 4096, next_offset: 4105 } },
  { name: 'verify_reply', type: 'VERIFY_REPLY', seq: 7, fields: { image_size: 300000, sha256: SHA } },
  { name: 'commit_reply', type: 'COMMIT_REPLY', seq: 8, fields: { slot: 1 } },
  { name: 'confirm_reply', type: 'CONFIRM_REPLY', seq: 9, fields: { slot: 1 } },
  { name: 'rollback_reply', type: 'ROLLBACK_REPLY', seq: 10, fields: { slot: 0 } },
  { name: 'reset_reply', type: 'RESET_REPLY', seq: 11, fields: {} },
  { name: 'chat_reply', type: 'CHAT_REPLY', seq: 12, fields: { prompt_tokens: 5, context: 512 } },
  { name: 'cancel_reply', type: 'CANCEL_REPLY', seq: 255, fields: { was_running: 1 } },
  { name: 'token', type: 'TOKEN', seq: 12, fields: { token: 1576, text: te.encode(' the') } },
  { name: 'token_partial_utf8', type: 'TOKEN', seq: 12, fields: { token: 0x1f3, text: Uint8Array.of(0xe2, 0x80) } },
  {
    name: 'stats', type: 'STATS', seq: 12, fields: {
      reason: 0, reserved: 0, prompt_tokens: 5, tokens: 59, prefill_us: 81234, decode_us: 1300000, linear_memory: 163840, heap_free: 110000, heap_largest: 80000,
    },
  },
  { name: 'log', type: 'LOG', seq: 0, fields: { level: 2, text: te.encode('slot B pending: booting it') } },
  { name: 'error', type: 'ERROR', seq: 4, fields: { req_type: T.UPLOAD_CHUNK, code: 18, arg: 300000, message: te.encode('chunk at 299999 + 4096 ends past the image (300000 bytes)') } },
];

// COBS edge cases: runs of 254 and 255, zeros at either end.
const COBS_CASES: Array<[string, Uint8Array]> = [
  ['empty', new Uint8Array(0)],
  ['one_zero', Uint8Array.of(0)],
  ['two_zeros', Uint8Array.of(0, 0)],
  ['zero_inside', Uint8Array.of(0x11, 0x22, 0x00, 0x33)],
  ['trailing_zero', Uint8Array.of(0x11, 0x22, 0x33, 0x44, 0x00)],
  ['nonzero_253', seqBytes(253)],
  ['nonzero_254', seqBytes(254)],
  ['nonzero_255', seqBytes(255)],
  ['zero_then_254', concat([Uint8Array.of(0), seqBytes(254)])],
  ['nonzero_254_then_zero', concat([seqBytes(254), Uint8Array.of(0)])],
];

function jsonFields(v: Fields): Record<string, unknown> {
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, x instanceof Uint8Array ? { hex: toHex(x) } : x]));
}

function jsonEvent(e: DecodeEvent): Record<string, unknown> {
  if (e.kind === 'skip') return { skip: toHex(e.bytes) };
  if (e.kind === 'error') return { error: errorName(e.code), code: e.code, req_type: e.reqType, seq: e.seq, arg: e.arg };
  return { frame: e.type.name, type: e.type.code, seq: e.seq, payload: toHex(e.payload) };
}

const wire = (name: string, seq: number, fields: Fields) => encodeFrame(TYPE_BY_NAME[name].code, seq, encodePayload(TYPE_BY_NAME[name], fields));
const withCrc = (body: Uint8Array) => {
  const b = new Uint8Array(body.byteLength + 4);
  b.set(body);
  new DataView(b.buffer).setUint32(body.byteLength, crc32(body), true);
  return b;
};
const raw = (bodyNoCrc: number[]) => concat([cobsEncode(withCrc(Uint8Array.from(bodyNoCrc))), Uint8Array.of(0)]);
const Z = Uint8Array.of(0);

// Streams of wire bytes and what a receiver must make of them, in order.
export function decodeCases(): Array<{ name: string; about: string; receives: Direction; max_frame: number; stream: Uint8Array }> {
  const hello = wire('HELLO', 1, { protocol_version: 1, host_max_frame: 65535 });
  const badCrc = hello.slice();
  badCrc[3] ^= 0x04; // a payload byte: COBS stays valid, the CRC does not
  const flippedCrcByte = hello.slice();
  flippedCrcByte[hello.byteLength - 2] ^= 0x80;
  const chunk = (n: number) => wire('UPLOAD_CHUNK', 4, { offset: 0, data: seqBytes(n) });
  return [
    { name: 'boot_log_then_hello', about: 'bytes before the first 0x00 are skipped', receives: 'to_device', max_frame: 256, stream: concat([te.encode('ets Jun  8 2016 00:22:57\r\nrst:0x1 (POWERON_RESET)\r\n'), Z, hello]) },
    { name: 'padding_zeros', about: 'empty frames are padding, never errors', receives: 'to_device', max_frame: 256, stream: concat([Z, Z, Z, hello, Z, Z]) },
    { name: 'two_frames', about: 'back to back, one delimiter between them', receives: 'to_device', max_frame: 256, stream: concat([Z, hello, wire('INFO', 2, {})]) },
    { name: 'no_delimiter_yet', about: 'bytes with no 0x00 are held, nothing is reported', receives: 'to_device', max_frame: 256, stream: te.encode('> hello there') },
    { name: 'bad_crc', about: 'a payload bit flipped', receives: 'to_device', max_frame: 256, stream: concat([Z, badCrc, wire('INFO', 2, {})]) },
    { name: 'bad_crc_byte', about: 'a CRC bit flipped', receives: 'to_device', max_frame: 256, stream: concat([Z, flippedCrcByte]) },
    { name: 'bad_cobs', about: 'a code byte promising more bytes than the frame has', receives: 'to_device', max_frame: 256, stream: Uint8Array.of(0, 0x09, 0x01, 0x02, 0, ...wire('INFO', 2, {})) },
    { name: 'too_short', about: 'a body of 5 bytes (type, seq and three of the CRC bytes)', receives: 'to_device', max_frame: 256, stream: concat([Z, cobsEncode(Uint8Array.of(0x02, 0x01, 0xaa, 0xbb, 0xcc)), Z]) },
    { name: 'one_byte', about: 'a lone non-zero byte between delimiters', receives: 'to_device', max_frame: 256, stream: Uint8Array.of(0, 0x02, 0x02, 0) },
    { name: 'unknown_type', about: 'type 0x55 is not in the table', receives: 'to_device', max_frame: 256, stream: concat([Z, raw([0x55, 0x07, 1, 2, 3])]) },
    { name: 'reply_type_to_device', about: "a device-to-host type sent to the device is unknown to it", receives: 'to_device', max_frame: 256, stream: concat([Z, wire('HELLO_REPLY', 9, { protocol_version: 1, board_id: 2, max_frame: 256 })]) },
    { name: 'request_type_to_host', about: 'a host-to-device type received by the host', receives: 'to_host', max_frame: 65535, stream: concat([Z, wire('INFO', 3, {})]) },
    { name: 'hello_short', about: 'HELLO with 3 payload bytes', receives: 'to_device', max_frame: 256, stream: concat([Z, raw([0x01, 0x05, 1, 0, 0])]) },
    { name: 'hello_long', about: 'HELLO with 5 payload bytes', receives: 'to_device', max_frame: 256, stream: concat([Z, raw([0x01, 0x06, 1, 0, 0, 1, 0])]) },
    { name: 'info_with_payload', about: 'INFO with 1 payload byte', receives: 'to_device', max_frame: 256, stream: concat([Z, raw([0x02, 0x07, 0])]) },
    { name: 'chunk_no_data', about: 'UPLOAD_CHUNK with an offset and no data', receives: 'to_device', max_frame: 256, stream: concat([Z, raw([0x11, 0x08, 0, 0, 0, 0])]) },
    { name: 'chat_short', about: 'CHAT with 13 payload bytes', receives: 'to_device', max_frame: 256, stream: concat([Z, raw([0x20, 0x09, ...new Array(13).fill(1)])]) },
    { name: 'info_reply_strings_short', about: 'INFO reply whose third string runs past the payload', receives: 'to_host', max_frame: 65535, stream: concat([Z, raw([0x82, 0x02, ...new Array(108).fill(0), 1, 0x41, 1, 0x42, 5, 0x43])]) },
    { name: 'max_frame_fits', about: 'a body of exactly max_frame bytes', receives: 'to_device', max_frame: 256, stream: concat([Z, chunk(256 - CHUNK_OVERHEAD)]) },
    { name: 'decoded_over_max_frame', about: 'a body of max_frame + 1 bytes (encoded within the limit)', receives: 'to_device', max_frame: 256, stream: concat([Z, chunk(257 - CHUNK_OVERHEAD), wire('INFO', 2, {})]) },
    { name: 'encoded_over_limit', about: 'more encoded bytes than max_frame allows: dropped unbuffered, reported at its delimiter, then the next frame', receives: 'to_device', max_frame: 256, stream: concat([Z, new Uint8Array(1000).fill(0x41), Z, wire('INFO', 2, {})]) },
    { name: 'person_then_host', about: 'a typed line, then a framed host: the line is skipped', receives: 'to_device', max_frame: 256, stream: concat([te.encode('hello board\r'), Z, hello]) },
  ];
}

export function manifest(): string {
  const decode = decodeCases().map((c) => {
    const d = new Decoder(c.receives, c.max_frame);
    const events = d.push(c.stream).map(jsonEvent);
    return { name: c.name, about: c.about, receives: c.receives, max_frame: c.max_frame, stream: toHex(c.stream), events, held: toHex(d.pending()) };
  });
  return JSON.stringify({
    about: 'edge-flash serial protocol version 1 test vectors (docs/protocol.md), generated by test/vectors/protocol/generate.ts from ' +
      'host/board/frames.ts. crc: CRC-32 checks. cobs: data and its COBS encoding. frames: one of every type; payload is the fields ' +
      'encoded, body adds type, seq and CRC, wire is COBS(body) + 0x00 (a sender also sends 0x00 before its first frame). decode: a ' +
      'stream fed byte by byte to a fresh receiver for the given direction and max_frame, and the events it must report, in order ' +
      '(skip: bytes before the first delimiter; held: bytes still waiting for a delimiter at the end, not reported). Floats are f32.',
    protocol_version: PROTOCOL_VERSION,
    crc: [{ ascii: '123456789', crc32: crc32(te.encode('123456789')) }, { ascii: '', crc32: 0 }],
    cobs: COBS_CASES.map(([name, data]) => ({ name, data: toHex(data), encoded: toHex(cobsEncode(data)) })),
    frames: SAMPLES.map((s) => {
      const t = TYPE_BY_NAME[s.type];
      const payload = encodePayload(t, s.fields);
      return { name: s.name, type_name: t.name, type: t.code, seq: s.seq, fields: jsonFields(s.fields), payload: toHex(payload), body: toHex(frameBody(t.code, s.seq, payload)), wire: toHex(encodeFrame(t.code, s.seq, payload)) };
    }),
    decode,
  }, null, 1) + '\n';
}

const cname = (s: string) => s.toUpperCase();

export function header(): string {
  const L: string[] = [
    '/* generated by test/vectors/protocol/generate.ts from host/board/frames.ts: do not edit (docs/protocol.md) */',
    '#ifndef EDGE_FLASH_PROTOCOL_GEN_H', '#define EDGE_FLASH_PROTOCOL_GEN_H', '',
    `#define EF_PROTOCOL_VERSION ${PROTOCOL_VERSION}`,
    `#define EF_MIN_MAX_FRAME ${MIN_MAX_FRAME}`,
    `#define EF_BODY_OVERHEAD ${BODY_OVERHEAD}`,
    `#define EF_CHUNK_OVERHEAD ${CHUNK_OVERHEAD}`,
    `#define EF_MIN_IMAGE_SIZE ${MIN_IMAGE_SIZE}`,
    `#define EF_REPLY_BIT 0x${REPLY_BIT.toString(16)}`,
    '/* the encoded bytes a body of n bytes may take, delimiter excluded */',
    '#define EF_COBS_MAX(n) ((n) + 1 + (n) / 254)', '',
    '/* frame types: payload fixed size, least and most payload length (0 = max_frame - 6), field offsets */',
  ];
  for (const t of FRAME_TYPES) {
    const n = `EF_${cname(t.name)}`;
    const r = payloadRange(t);
    L.push(`#define ${n} 0x${t.code.toString(16).padStart(2, '0')} /* ${t.dir === 'to_device' ? 'host -> device' : 'device -> host'} */`);
    L.push(`#define ${n}_FIXED ${fixedSize(t)}`, `#define ${n}_MIN ${r.min}`, `#define ${n}_MAX ${r.max ?? 0}`);
    for (const { field, offset } of fieldOffsets(t)) L.push(`#define ${n}_${cname(field.name)} ${offset} /* ${field.kind} */`);
  }
  L.push('', '/* error codes (closed catalogue, append-only) */');
  for (const [c, n] of ERROR_CODES) L.push(`#define EF_ERR_${n} ${c}`);
  L.push('', '/* slot states, STATS reasons, LOG levels */');
  SLOT_STATES.forEach((s, i) => L.push(`#define EF_SLOT_${cname(s)} ${i}`));
  L.push(`#define EF_SLOT_STATE_COUNT ${SLOT_STATES.length}`, `#define EF_SLOT_NAMES { ${SLOT_STATES.map((s) => `"${s}"`).join(', ')} }`);
  STATS_REASONS.forEach((s, i) => L.push(`#define EF_STOP_${cname(s)} ${i}`));
  LOG_LEVELS.forEach((s, i) => L.push(`#define EF_LOG_${cname(s)} ${i}`));
  L.push('', '#endif', '');
  return L.join('\n');
}

export function vectorFiles(): Map<string, string> {
  return new Map([['vectors.json', manifest()], ['protocol.gen.h', header()]]);
}

if (process.argv[1]?.endsWith('generate.ts') && process.argv[1].includes('protocol')) {
  const check = process.argv.includes('--check');
  let bad = 0;
  for (const [name, content] of vectorFiles()) {
    const path = join(PROTOCOL_VECTOR_DIR, name);
    if (check) {
      if (!existsSync(path) || readFileSync(path, 'utf8') !== content) {
        process.stderr.write(`differs: ${path}\n`);
        bad++;
      }
    } else writeFileSync(path, content);
  }
  process.stderr.write(check ? `${bad} of the protocol vector files differ\n` : `wrote ${vectorFiles().size} files to ${PROTOCOL_VECTOR_DIR}\n`);
  process.exit(bad ? 1 : 0);
}
