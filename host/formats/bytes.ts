// Bounds-checked little-endian reading for the model file readers. Every read names the field it
// is for, so a truncated or corrupt file fails with one line: the file, the field, what was expected.
import { UserError } from '../errors.ts';

export class FileFormatError extends UserError {}

// Thrown when a reader over a prefix of a file needs bytes past it (host/formats/index.ts reads
// more and parses again); never reaches the user.
export class NeedMore extends Error {
  constructor(readonly upTo: number) {
    super(`need bytes up to ${upTo}`);
  }
}

// Largest values a loader believes before allocating for them.
export const LIMITS = {
  metadataArray: 1 << 22,      // items in a GGUF array the model uses (the vocabulary limit)
  unusedArray: 1 << 16,        // items kept of one the model does not use (longer ones are skipped)
  jsonHeader: 64 << 20,        // bytes of a safetensors JSON header
  firstRead: 1 << 20,          // bytes of a file read before its header says how much it describes
} as const;

// Text from a file, made safe for a one-line message: control characters escaped, long runs cut.
export function clean(s: string): string {
  const t = s.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return t.length > 120 ? `${t.slice(0, 117)}...` : t;
}

export class ByteReader {
  readonly view: DataView;
  readonly bytes: Uint8Array;
  pos = 0;

  // bytes: the file, or its first bytes when fileSize (the whole file's) is larger.
  constructor(readonly file: string, bytes: Uint8Array, readonly fileSize = bytes.byteLength) {
    // a plain Uint8Array view (a Buffer's slice() would not copy)
    this.bytes = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  // The file's length (what every bound is checked against), not the prefix held.
  get length(): number {
    return this.fileSize;
  }

  fail(field: string, expected: string, found?: string): never {
    throw new FileFormatError(`${this.file}: ${clean(field)}: expected ${expected}${found !== undefined ? `, found ${clean(found)}` : ''}`);
  }

  // Checks that [at, at + n) lies inside the file.
  need(at: number, n: number, field: string): void {
    this.inFile(at, n, field);
    if (at + n > this.bytes.byteLength) throw new NeedMore(at + n);
  }

  // Checks that [at, at + n) lies inside the file, without reading it.
  inFile(at: number, n: number, field: string): void {
    if (!(n >= 0) || !(at >= 0) || !Number.isSafeInteger(at + n) || at + n > this.length) {
      this.fail(field, `${n} bytes at offset ${at}`, `the file ends at ${this.length} (truncated?)`);
    }
  }

  seek(at: number): this {
    this.pos = at;
    return this;
  }

  u8(field: string): number {
    this.need(this.pos, 1, field);
    return this.view.getUint8(this.pos++);
  }
  i32(field: string): number {
    this.need(this.pos, 4, field);
    const v = this.view.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }
  u32(field: string): number {
    this.need(this.pos, 4, field);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  f32(field: string): number {
    this.need(this.pos, 4, field);
    const v = this.view.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }
  // u64 as a number; values past 2^53 are a corrupt file here.
  u64(field: string): number {
    this.need(this.pos, 8, field);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(field, 'a size below 2^53', String(v));
    return Number(v);
  }
  i64(field: string): bigint {
    this.need(this.pos, 8, field);
    const v = this.view.getBigInt64(this.pos, true);
    this.pos += 8;
    return v;
  }
  f64(field: string): number {
    this.need(this.pos, 8, field);
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }
  take(n: number, field: string): Uint8Array {
    this.need(this.pos, n, field);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  // `count` float32 values, copied (so the result is aligned whatever the offset).
  f32s(count: number, field: string): Float32Array {
    const raw = this.take(count * 4, field);
    return new Float32Array(raw.slice().buffer);
  }
}

// A little-endian writer for the file writers (tests and tools write every format they read).
export class ByteWriter {
  private chunks: Uint8Array[] = [];
  private size = 0;

  get length(): number {
    return this.size;
  }
  bytes(b: Uint8Array): this {
    this.chunks.push(b.slice());
    this.size += b.byteLength;
    return this;
  }
  private scalar(n: number, set: (v: DataView) => void): this {
    const b = new Uint8Array(n);
    set(new DataView(b.buffer));
    return this.bytes(b);
  }
  u8(v: number): this { return this.scalar(1, (d) => d.setUint8(0, v)); }
  i32(v: number): this { return this.scalar(4, (d) => d.setInt32(0, v, true)); }
  u32(v: number): this { return this.scalar(4, (d) => d.setUint32(0, v, true)); }
  f32(v: number): this { return this.scalar(4, (d) => d.setFloat32(0, v, true)); }
  u64(v: number | bigint): this { return this.scalar(8, (d) => d.setBigUint64(0, BigInt(v), true)); }
  i64(v: number | bigint): this { return this.scalar(8, (d) => d.setBigInt64(0, BigInt(v), true)); }
  f64(v: number): this { return this.scalar(8, (d) => d.setFloat64(0, v, true)); }
  f32s(a: ArrayLike<number>): this {
    return this.bytes(new Uint8Array(Float32Array.from(a).buffer));
  }
  zeros(n: number): this {
    return this.bytes(new Uint8Array(n));
  }
  padTo(align: number): this {
    const r = this.size % align;
    return r ? this.zeros(align - r) : this;
  }
  finish(): Uint8Array {
    const out = new Uint8Array(this.size);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.byteLength;
    }
    return out;
  }
}

// f16 and bf16 to f32 (GGUF, safetensors).
export function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

export function f32ToF16(v: number): number {
  // round to nearest even through a float32 view; used only by test writers
  const f = new Float32Array([v]);
  const x = new Uint32Array(f.buffer)[0];
  const sign = (x >>> 16) & 0x8000;
  let e = ((x >>> 23) & 0xff) - 127 + 15;
  let m = x & 0x7fffff;
  if (((x >>> 23) & 0xff) === 0xff) return sign | 0x7c00 | (m ? 0x200 : 0);
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    m |= 0x800000;
    const shift = 14 - e;
    let h = m >>> shift;
    const rem = m & ((1 << shift) - 1), half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (m >>> 13);
  const rem = m & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
  return sign | h;
}

export function bf16ToF32(h: number): number {
  const b = new Uint32Array([h << 16]);
  return new Float32Array(b.buffer)[0];
}

export function f32ToBf16(v: number): number {
  const x = new Uint32Array(new Float32Array([v]).buffer)[0];
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return (x >>> 16) | 0x40;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}
