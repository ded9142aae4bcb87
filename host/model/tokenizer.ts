// The BPE tokenizer of llama2.c's run.c, on the host: the reference that the WASM tokenizer
// (assembly/model/tokenizer.ts) must match token for token, and what tests compare against.
// Pieces are byte strings compared as C strings (strcmp: unsigned bytes, up to the first NUL).
//
// encode: optional BOS; a dummy-prefix " " token when the text is not empty; each UTF-8 code point
// looked up whole, else one byte-fallback token per byte ("<0xXX>", id = byte + 3 in llama
// vocabularies); then repeatedly merge the adjacent pair whose concatenation is in the vocabulary
// with the highest score (the first such pair on ties), until none is left; optional EOS.
// decode: strip one leading space after BOS; "<0xXX>" becomes the raw byte.
import { maxOf } from '../arrays.ts';


export interface Tokenizer {
  pieces: Uint8Array[];  // token id -> bytes
  scores: Float32Array;  // merge scores
  maxTokenLength: number;
  bos: number;           // 1 in llama2.c
  eos: number;           // 2 in llama2.c
}

// The bytes of a piece up to its first NUL, as strcmp and printf("%s") see them.
export function cstr(b: Uint8Array): Uint8Array {
  const z = b.indexOf(0);
  return z < 0 ? b : b.subarray(0, z);
}

export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

// Token ids sorted by their piece (run.c's sorted_vocab; a stable sort, as glibc's qsort is here).
export function sortedVocab(t: Tokenizer): Uint32Array {
  const ids = Array.from({ length: t.pieces.length }, (_, i) => i);
  const keys = t.pieces.map(cstr);
  ids.sort((a, b) => compareBytes(keys[a], keys[b]) || a - b);
  return Uint32Array.from(ids);
}

// The id of each byte's fallback token: the piece "<0xXX>" where the vocabulary has it, else byte + 3
// (run.c's assumption: <unk>, <s>, </s> come first, then the 256 byte tokens).
export function byteTokens(t: Tokenizer): Uint32Array {
  const out = new Uint32Array(256);
  const index = new Map<string, number>();
  t.pieces.forEach((p, i) => {
    const s = Buffer.from(p).toString('latin1');
    if (/^<0x[0-9A-F]{2}>$/.test(s) && !index.has(s)) index.set(s, i);
  });
  for (let b = 0; b < 256; b++) {
    const id = index.get(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    out[b] = id ?? Math.min(b + 3, t.pieces.length - 1);
  }
  return out;
}

// What the generation loops need from a tokenizer: this host reference, or the device's
// (ModelRuntime.codec(), the WASM tokenizer).
export interface TextCodec {
  readonly bos: number;
  readonly eos: number;
  encode(text: string | Uint8Array, bos: boolean, eos: boolean): number[];
  decode(prev: number, token: number): Uint8Array;
}

export class TokenizerRef implements TextCodec {
  private sorted: Uint32Array;
  private keys: Uint8Array[];
  private bytes: Uint32Array;

  constructor(readonly t: Tokenizer) {
    this.sorted = sortedVocab(t);
    this.keys = t.pieces.map(cstr);
    this.bytes = byteTokens(t);
  }

  get bos(): number { return this.t.bos; }
  get eos(): number { return this.t.eos; }

  lookup(s: Uint8Array): number {
    let lo = 0, hi = this.sorted.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const c = compareBytes(this.keys[this.sorted[mid]], s);
      if (c === 0) return this.sorted[mid];
      if (c < 0) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  encode(text: string | Uint8Array, bos: boolean, eos: boolean): number[] {
    const src = cstr(typeof text === 'string' ? new TextEncoder().encode(text) : text);
    const tokens: number[] = [];
    if (bos) tokens.push(this.t.bos);
    if (src.length > 0) {
      const dummy = this.lookup(Uint8Array.of(0x20));
      if (dummy >= 0) tokens.push(dummy);
    }
    let buf: number[] = [];
    for (let i = 0; i < src.length; i++) {
      if ((src[i] & 0xc0) !== 0x80) buf = [];
      buf.push(src[i]);
      const next = i + 1 < src.length ? src[i + 1] : 0;
      if ((next & 0xc0) === 0x80 && buf.length < 4) continue;
      const id = this.lookup(Uint8Array.from(buf));
      if (id !== -1) tokens.push(id);
      else for (const b of buf) tokens.push(this.bytes[b]);
      buf = [];
    }
    for (;;) {
      let best = Math.fround(-1e10), bestId = -1, bestIdx = -1;
      for (let i = 0; i < tokens.length - 1; i++) {
        const a = this.keys[tokens[i]], b = this.keys[tokens[i + 1]];
        const merged = new Uint8Array(a.length + b.length);
        merged.set(a);
        merged.set(b, a.length);
        const id = this.lookup(merged);
        if (id !== -1 && this.t.scores[id] > best) {
          best = this.t.scores[id];
          bestId = id;
          bestIdx = i;
        }
      }
      if (bestIdx === -1) break;
      tokens.splice(bestIdx, 2, bestId);
    }
    if (eos) tokens.push(this.t.eos);
    return tokens;
  }

  // The bytes run.c prints for `token` after `prev`: decode, then safe_printf's filter (a lone byte
  // that is neither printable ASCII nor whitespace prints nothing).
  decode(prev: number, token: number): Uint8Array {
    let piece = cstr(this.t.pieces[token]);
    if (prev === this.t.bos && piece[0] === 0x20) piece = piece.subarray(1);
    const b = parseByteToken(piece);
    if (b >= 0) piece = Uint8Array.of(b);
    if (piece.length === 0) return piece;
    if (piece.length === 1 && !isPrintOrSpace(piece[0])) return new Uint8Array(0);
    return piece;
  }
}

// sscanf(piece, "<0x%02hhX>"): "<0x" then one or two hex digits; -1 when it does not match.
export function parseByteToken(p: Uint8Array): number {
  if (p.length < 4 || p[0] !== 0x3c || p[1] !== 0x30 || p[2] !== 0x78) return -1;
  const hex = (c: number) => (c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x41 && c <= 0x46 ? c - 55 : c >= 0x61 && c <= 0x66 ? c - 87 : -1);
  const d0 = hex(p[3]);
  if (d0 < 0) return -1;
  const d1 = p.length > 4 ? hex(p[4]) : -1;
  return d1 < 0 ? d0 : d0 * 16 + d1;
}

export function isPrintOrSpace(b: number): boolean {
  return (b >= 0x20 && b <= 0x7e) || b === 0x09 || b === 0x0a || b === 0x0b || b === 0x0c || b === 0x0d;
}

// The tokenizer image the device tokenizer reads (assembly/model/tokenizer.ts; docs/model.md):
// u32 magic "EFTK", version 1, vocab, max_token_length, bos, eos, dummy-prefix id (" ", or -1), 0;
// f32 scores[vocab]; u32 offsets[vocab + 1]; u32 sorted ids[vocab]; u32 byte ids[256]; piece bytes
// (each up to its first NUL, as run.c's strings).
export const TOKENIZER_MAGIC = 0x4b544645;

export function tokenizerImage(t: Tokenizer): Uint8Array {
  const ref = new TokenizerRef(t);
  const keys = t.pieces.map(cstr);
  const vocab = t.pieces.length;
  const total = keys.reduce((s, k) => s + k.length, 0);
  const words = 8 + vocab + (vocab + 1) + vocab + 256;
  const out = new Uint8Array(words * 4 + total);
  const dv = new DataView(out.buffer);
  const maxLen = maxOf(keys.map((k) => k.length), 1);
  [TOKENIZER_MAGIC, 1, vocab, maxLen, t.bos, t.eos, ref.lookup(Uint8Array.of(0x20)), 0].forEach((v, i) => dv.setInt32(4 * i, v, true));
  let at = 32;
  for (let i = 0; i < vocab; i++, at += 4) dv.setFloat32(at, t.scores[i], true);
  let off = 0;
  for (let i = 0; i <= vocab; i++, at += 4) {
    dv.setUint32(at, off, true);
    if (i < vocab) off += keys[i].length;
  }
  for (const id of sortedVocab(t)) { dv.setUint32(at, id, true); at += 4; }
  for (const id of byteTokens(t)) { dv.setUint32(at, id, true); at += 4; }
  for (const k of keys) { out.set(k, at); at += k.length; }
  return out;
}

// The tokenizer an EFTK image holds (the image's tokenizer section, checked by host/image/read.ts):
// pieces as the image stores them (up to their first NUL), scores, bos and eos.
export function tokenizerFromImage(img: Uint8Array): Tokenizer {
  const dv = new DataView(img.buffer, img.byteOffset, img.byteLength);
  const vocab = dv.getUint32(8, true);
  const scores = new Float32Array(vocab);
  for (let i = 0; i < vocab; i++) scores[i] = dv.getFloat32(32 + 4 * i, true);
  const offsets = 32 + 4 * vocab;
  const pieceBase = 32 + 4 * (vocab + (vocab + 1) + vocab + 256);
  const pieces = Array.from({ length: vocab }, (_, i) =>
    img.slice(pieceBase + dv.getUint32(offsets + 4 * i, true), pieceBase + dv.getUint32(offsets + 4 * (i + 1), true)));
  return { pieces, scores, maxTokenLength: dv.getUint32(12, true), bos: dv.getInt32(16, true), eos: dv.getInt32(20, true) };
}
