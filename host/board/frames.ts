// The protocol's one table (docs/protocol.md): frame types, their payload fields and lengths, and the
// error catalogue. The codecs below, the C header and the shared vectors are all generated from it.
// Codes are append-only, never reused.

export const PROTOCOL_VERSION = 1;
export const MIN_MAX_FRAME = 256;      // every device accepts bodies this large, so HELLO always fits
export const HOST_MAX_FRAME = 65535;   // the largest body the host accepts
export const BODY_OVERHEAD = 6;        // type, seq, crc
export const CHUNK_OVERHEAD = BODY_OVERHEAD + 4; // + the chunk's offset
export const MIN_IMAGE_SIZE = 56;      // an image's header and digest alone

// A field: fixed ones have a size; 'rest' takes the remaining bytes; 'strings3' three u8-length strings.
export type FieldKind = 'u8' | 'u16' | 'u32' | 'f32' | 'sha256' | 'rest' | 'strings3';
export interface Field { name: string; kind: FieldKind }
const SIZE: Record<FieldKind, number> = { u8: 1, u16: 2, u32: 4, f32: 4, sha256: 32, rest: 0, strings3: 0 };

export type Direction = 'to_device' | 'to_host';
export interface FrameType {
  code: number;
  name: string;
  dir: Direction;
  fields: Field[];
  minRest: number;     // the least number of bytes the variable part must have (0 when fixed)
}

const f = (spec: string): Field[] =>
  spec.split(/\s+/).filter(Boolean).map((s) => {
    const [kind, name] = s.split(':');
    return { kind: kind as FieldKind, name };
  });

export const FRAME_TYPES: FrameType[] = [
  { code: 0x01, name: 'HELLO', dir: 'to_device', fields: f('u16:protocol_version u16:host_max_frame'), minRest: 0 },
  { code: 0x02, name: 'INFO', dir: 'to_device', fields: [], minRest: 0 },
  // the end of a framed session: the device answers, stops a reply that streams, and is undecided again
  { code: 0x03, name: 'BYE', dir: 'to_device', fields: [], minRest: 0 },
  { code: 0x10, name: 'UPLOAD_BEGIN', dir: 'to_device', fields: f('u32:image_size sha256:sha256'), minRest: 0 },
  { code: 0x11, name: 'UPLOAD_CHUNK', dir: 'to_device', fields: f('u32:offset rest:data'), minRest: 1 },
  { code: 0x12, name: 'VERIFY', dir: 'to_device', fields: [], minRest: 0 },
  { code: 0x13, name: 'COMMIT', dir: 'to_device', fields: [], minRest: 0 },
  { code: 0x14, name: 'CONFIRM', dir: 'to_device', fields: [], minRest: 0 },
  { code: 0x15, name: 'ROLLBACK', dir: 'to_device', fields: [], minRest: 0 },
  { code: 0x16, name: 'RESET', dir: 'to_device', fields: [], minRest: 0 },
  { code: 0x20, name: 'CHAT', dir: 'to_device', fields: f('u32:seed f32:temperature f32:top_p u16:steps u8:mode u8:flags rest:prompt'), minRest: 0 },
  { code: 0x21, name: 'CANCEL', dir: 'to_device', fields: [], minRest: 0 },

  { code: 0x81, name: 'HELLO_REPLY', dir: 'to_host', fields: f('u16:protocol_version u16:board_id u32:max_frame'), minRest: 0 },
  { code: 0x83, name: 'BYE_REPLY', dir: 'to_host', fields: [], minRest: 0 },
  {
    code: 0x82, name: 'INFO_REPLY', dir: 'to_host', minRest: 3,
    fields: f(`u16:protocol_version u16:board_id u32:max_frame u32:slot_capacity u32:erase_block u32:heap_free
      u32:heap_largest u32:linear_memory u32:last_tok_per_s_x1000 u8:booted_slot u8:slot_a_state u8:slot_b_state u8:flags
      sha256:booted_sha256 sha256:upload_sha256 u32:upload_size u32:upload_next strings3:strings`),
  },
  { code: 0x90, name: 'UPLOAD_BEGIN_REPLY', dir: 'to_host', fields: f('u32:next_offset u32:max_chunk u16:window'), minRest: 0 },
  { code: 0x91, name: 'UPLOAD_CHUNK_REPLY', dir: 'to_host', fields: f('u32:offset u32:next_offset'), minRest: 0 },
  { code: 0x92, name: 'VERIFY_REPLY', dir: 'to_host', fields: f('u32:image_size sha256:sha256'), minRest: 0 },
  { code: 0x93, name: 'COMMIT_REPLY', dir: 'to_host', fields: f('u8:slot'), minRest: 0 },
  { code: 0x94, name: 'CONFIRM_REPLY', dir: 'to_host', fields: f('u8:slot'), minRest: 0 },
  { code: 0x95, name: 'ROLLBACK_REPLY', dir: 'to_host', fields: f('u8:slot'), minRest: 0 },
  { code: 0x96, name: 'RESET_REPLY', dir: 'to_host', fields: [], minRest: 0 },
  { code: 0xa0, name: 'CHAT_REPLY', dir: 'to_host', fields: f('u16:prompt_tokens u16:context'), minRest: 0 },
  { code: 0xa1, name: 'CANCEL_REPLY', dir: 'to_host', fields: f('u8:was_running'), minRest: 0 },
  { code: 0x41, name: 'TOKEN', dir: 'to_host', fields: f('u32:token rest:text'), minRest: 0 },
  {
    code: 0x42, name: 'STATS', dir: 'to_host', minRest: 0,
    fields: f('u8:reason u8:reserved u16:prompt_tokens u16:tokens u32:prefill_us u32:decode_us u32:linear_memory u32:heap_free u32:heap_largest'),
  },
  { code: 0x43, name: 'LOG', dir: 'to_host', fields: f('u8:level rest:text'), minRest: 1 },
  { code: 0x7f, name: 'ERROR', dir: 'to_host', fields: f('u8:req_type u16:code u32:arg rest:message'), minRest: 0 },
];

export const REPLY_BIT = 0x80;

export const ERROR_CODES = [
  [1, 'BAD_FRAME'], [2, 'BAD_CRC'], [3, 'UNKNOWN_TYPE'], [4, 'BAD_LENGTH'], [5, 'FRAME_TOO_LARGE'], [6, 'VERSION'], [7, 'BUSY'],
  [16, 'NO_UPLOAD'], [17, 'TOO_LARGE'], [18, 'BAD_OFFSET'], [19, 'INCOMPLETE'], [20, 'STORAGE'], [21, 'NOT_VERIFIED'],
  [22, 'SHA_MISMATCH'], [23, 'IMAGE'], [24, 'NO_PREVIOUS'], [25, 'BAD_SIZE'],
  [32, 'NO_IMAGE'], [33, 'PROMPT_TOO_LONG'], [34, 'TRAP'], [35, 'BAD_SETTINGS'], [36, 'OUT_OF_MEMORY'],
  [48, 'INTERNAL'],
] as const;
export type ErrorName = (typeof ERROR_CODES)[number][1];
export const ERR = Object.fromEntries(ERROR_CODES.map(([c, n]) => [n, c])) as Record<ErrorName, number>;

// What each error means, for messages ("failed to write chunk 12: CRC mismatch").
export const ERROR_TEXT: Record<ErrorName, string> = {
  BAD_FRAME: 'frame not decodable', BAD_CRC: 'CRC mismatch', UNKNOWN_TYPE: 'unknown frame type', BAD_LENGTH: 'wrong payload length',
  FRAME_TOO_LARGE: 'frame too large', VERSION: 'protocol version not supported', BUSY: 'busy with a chat',
  NO_UPLOAD: 'no upload under way', TOO_LARGE: 'image larger than the slot', BAD_OFFSET: 'chunk past the end of the image',
  INCOMPLETE: 'upload incomplete', STORAGE: 'storage failed', NOT_VERIFIED: 'image not verified',
  SHA_MISMATCH: 'SHA-256 of the written image differs', IMAGE: 'image check failed', NO_PREVIOUS: 'no previous image',
  BAD_SIZE: 'image size too small', NO_IMAGE: 'no image loaded', PROMPT_TOO_LONG: 'prompt too long',
  TRAP: 'the app trapped', BAD_SETTINGS: 'sampler settings out of range', OUT_OF_MEMORY: 'out of memory', INTERNAL: 'internal error',
};

export function errorName(code: number): string {
  return ERROR_CODES.find(([c]) => c === code)?.[1] ?? `error ${code}`;
}

export const SLOT_STATES = ['empty', 'receiving', 'written', 'verified', 'pending', 'confirmed', 'invalid'] as const;
export const STATS_REASONS = ['steps', 'end', 'cancelled', 'context', 'error'] as const;
export const LOG_LEVELS = ['error', 'warning', 'info', 'debug'] as const;

export const TYPE_BY_NAME = Object.fromEntries(FRAME_TYPES.map((t) => [t.name, t])) as Record<string, FrameType>;
export const TYPE_BY_CODE = new Map(FRAME_TYPES.map((t) => [t.code, t]));
export const T = Object.fromEntries(FRAME_TYPES.map((t) => [t.name, t.code])) as Record<string, number>;

// The fixed part's size, and each fixed field's offset in the payload.
export function fixedSize(t: FrameType): number {
  return t.fields.reduce((n, x) => n + SIZE[x.kind], 0);
}
export function fieldOffsets(t: FrameType): Array<{ field: Field; offset: number }> {
  let o = 0;
  return t.fields.map((field) => {
    const r = { field, offset: o };
    o += SIZE[field.kind];
    return r;
  });
}
export function hasRest(t: FrameType): boolean {
  return t.fields.some((x) => x.kind === 'rest' || x.kind === 'strings3');
}
// The payload's allowed length range; max null = up to max_frame - 6.
export function payloadRange(t: FrameType): { min: number; max: number | null } {
  const min = fixedSize(t) + t.minRest;
  return { min, max: hasRest(t) ? null : min };
}

export type Fields = Record<string, number | Uint8Array | string[]>;

// A payload from field values: numbers for integers and floats, bytes for sha256 and rest, three strings.
export function encodePayload(t: FrameType, v: Fields): Uint8Array {
  const parts: Uint8Array[] = [];
  const fixed = new Uint8Array(fixedSize(t));
  const dv = new DataView(fixed.buffer);
  for (const { field, offset } of fieldOffsets(t)) {
    const x = v[field.name];
    switch (field.kind) {
      case 'u8': dv.setUint8(offset, num(x, field)); break;
      case 'u16': dv.setUint16(offset, num(x, field), true); break;
      case 'u32': dv.setUint32(offset, num(x, field), true); break;
      case 'f32': dv.setFloat32(offset, x as number, true); break;
      case 'sha256': {
        const b = (x ?? new Uint8Array(32)) as Uint8Array;
        if (b.byteLength !== 32) throw new Error(`${t.name}.${field.name}: 32 bytes needed, got ${b.byteLength}`);
        fixed.set(b, offset);
        break;
      }
      case 'rest': parts.push((x ?? new Uint8Array(0)) as Uint8Array); break;
      case 'strings3': {
        const ss = (x ?? ['', '', '']) as string[];
        for (const s of ss) {
          const b = new TextEncoder().encode(s);
          if (b.byteLength > 255) throw new Error(`${t.name}: a string longer than 255 bytes`);
          parts.push(Uint8Array.of(b.byteLength), b);
        }
        break;
      }
    }
  }
  return concat([fixed, ...parts]);
}

function num(x: unknown, field: Field): number {
  if (x === undefined) return 0;
  if (typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x >= 2 ** (8 * SIZE[field.kind])) {
    throw new Error(`field ${field.name}: ${String(x)} is not a ${field.kind}`);
  }
  return x;
}

// Field values from a payload whose length payloadRange allowed; null if its strings run short.
export function decodePayload(t: FrameType, p: Uint8Array): Fields | null {
  const dv = new DataView(p.buffer, p.byteOffset, p.byteLength);
  const out: Fields = {};
  const fixed = fixedSize(t);
  for (const { field, offset } of fieldOffsets(t)) {
    switch (field.kind) {
      case 'u8': out[field.name] = dv.getUint8(offset); break;
      case 'u16': out[field.name] = dv.getUint16(offset, true); break;
      case 'u32': out[field.name] = dv.getUint32(offset, true); break;
      case 'f32': out[field.name] = dv.getFloat32(offset, true); break;
      case 'sha256': out[field.name] = p.slice(offset, offset + 32); break;
      case 'rest': out[field.name] = p.slice(fixed); break;
      case 'strings3': {
        const ss: string[] = [];
        let o = fixed;
        for (let i = 0; i < 3; i++) {
          if (o >= p.byteLength || o + 1 + p[o] > p.byteLength) return null;
          ss.push(new TextDecoder().decode(p.subarray(o + 1, o + 1 + p[o])));
          o += 1 + p[o];
        }
        out[field.name] = ss;
        break;
      }
    }
  }
  return out;
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
  }
  return out;
}
