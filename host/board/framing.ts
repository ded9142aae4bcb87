// Framing (docs/protocol.md section 2): COBS-encoded bodies between 0x00 delimiters, a CRC-32 per
// body. Pure: bytes in, frames or errors out; no I/O, so the vectors test it without a port.
import { crc32 } from '../image/crc32.ts';
import {
  BODY_OVERHEAD, ERR, TYPE_BY_CODE, concat, decodePayload, payloadRange,
  type Direction, type Fields, type FrameType,
} from './frames.ts';

export function cobsEncode(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(data.byteLength + 1 + Math.floor(data.byteLength / 254));
  let codeAt = 0, o = 1, code = 1;
  for (let i = 0; i < data.byteLength; i++) {
    if (data[i] === 0) {
      out[codeAt] = code;
      codeAt = o++;
      code = 1;
    } else {
      out[o++] = data[i];
      if (++code === 0xff) {
        out[codeAt] = code;
        codeAt = o++;
        code = 1;
      }
    }
  }
  out[codeAt] = code;
  return out.subarray(0, o);
}

// null when a code byte promises more bytes than there are (the input has no zeros: it was delimited).
export function cobsDecode(enc: Uint8Array): Uint8Array | null {
  const out = new Uint8Array(enc.byteLength);
  let i = 0, o = 0;
  while (i < enc.byteLength) {
    const code = enc[i++];
    if (code === 0 || i + code - 1 > enc.byteLength) return null;
    for (let k = 1; k < code; k++) out[o++] = enc[i++];
    if (code < 0xff && i < enc.byteLength) out[o++] = 0;
  }
  return out.subarray(0, o);
}

// The most encoded bytes a body of maxFrame bytes can take.
export function maxEncoded(maxFrame: number): number {
  return maxFrame + 1 + Math.floor(maxFrame / 254);
}

export function frameBody(type: number, seq: number, payload: Uint8Array): Uint8Array {
  const body = new Uint8Array(payload.byteLength + BODY_OVERHEAD);
  body[0] = type;
  body[1] = seq & 0xff;
  body.set(payload, 2);
  new DataView(body.buffer).setUint32(2 + payload.byteLength, crc32(body.subarray(0, 2 + payload.byteLength)), true);
  return body;
}

// One frame as it goes on the wire: COBS(body) and its delimiter (the leading 0x00 is the sender's).
export function encodeFrame(type: number, seq: number, payload: Uint8Array): Uint8Array {
  return concat([cobsEncode(frameBody(type, seq, payload)), Uint8Array.of(0)]);
}

export interface FrameEvent {
  kind: 'frame';
  type: FrameType;
  seq: number;
  payload: Uint8Array;
  fields: Fields;
}
export interface ErrorEvent {
  kind: 'error';
  code: number;       // the ERR catalogue
  reqType: number;    // the frame's type byte, 0 if it had none
  seq: number;
  arg: number;        // as the ERROR frame's arg (docs/protocol.md section 7)
}
export interface SkipEvent {
  kind: 'skip';       // bytes before the first delimiter: a boot log, a banner
  bytes: Uint8Array;
}
export type DecodeEvent = FrameEvent | ErrorEvent | SkipEvent;

// Checks one delimited run of encoded bytes (steps 3..8 of the receiver's rules).
export function decodeFrame(enc: Uint8Array, receives: Direction, maxFrame: number): FrameEvent | ErrorEvent {
  const body = cobsDecode(enc);
  if (body && body.byteLength > maxFrame) return { kind: 'error', code: ERR.FRAME_TOO_LARGE, reqType: 0, seq: 0, arg: maxFrame };
  if (!body || body.byteLength < BODY_OVERHEAD) return { kind: 'error', code: ERR.BAD_FRAME, reqType: body && body.byteLength > 0 ? body[0] : 0, seq: body && body.byteLength > 1 ? body[1] : 0, arg: 0 };
  const reqType = body[0], seq = body[1];
  const n = body.byteLength - 4;
  const want = crc32(body.subarray(0, n));
  const got = new DataView(body.buffer, body.byteOffset).getUint32(n, true);
  if (want !== got) return { kind: 'error', code: ERR.BAD_CRC, reqType, seq, arg: want };
  const type = TYPE_BY_CODE.get(reqType);
  if (!type || type.dir !== receives) return { kind: 'error', code: ERR.UNKNOWN_TYPE, reqType, seq, arg: reqType };
  const payload = body.slice(2, n);
  const range = payloadRange(type);
  const fields = payload.byteLength >= range.min && (range.max === null || payload.byteLength <= range.max) ? decodePayload(type, payload) : null;
  if (!fields) return { kind: 'error', code: ERR.BAD_LENGTH, reqType, seq, arg: payload.byteLength };
  return { kind: 'frame', type, seq, payload, fields };
}

// The streaming receiver: feed it bytes as they arrive; it never stores more than one frame's worth.
export class Decoder {
  private buf: Uint8Array;
  private len = 0;
  private over = false;
  private synced = false;
  private skipped: number[] = [];

  constructor(readonly receives: Direction, readonly maxFrame: number) {
    this.buf = new Uint8Array(maxEncoded(maxFrame));
  }

  push(bytes: Uint8Array): DecodeEvent[] {
    const out: DecodeEvent[] = [];
    for (const b of bytes) {
      if (!this.synced) {
        if (b !== 0) {
          this.skipped.push(b);
          continue;
        }
        this.synced = true;
        if (this.skipped.length) out.push({ kind: 'skip', bytes: Uint8Array.from(this.skipped) });
        this.skipped = [];
        continue;
      }
      if (b !== 0) {
        if (this.len < this.buf.byteLength) this.buf[this.len++] = b;
        else this.over = true;
        continue;
      }
      if (this.over) out.push({ kind: 'error', code: ERR.FRAME_TOO_LARGE, reqType: 0, seq: 0, arg: this.maxFrame });
      else if (this.len > 0) out.push(decodeFrame(this.buf.subarray(0, this.len), this.receives, this.maxFrame));
      this.len = 0;
      this.over = false;
    }
    return out;
  }

  // Bytes seen before the first delimiter and not yet reported (monitor shows them as text).
  pending(): Uint8Array {
    return Uint8Array.from(this.skipped);
  }
}
