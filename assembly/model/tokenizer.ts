// llama2.c run.c's BPE tokenizer on the device, so a board turns text into tokens and back by itself.
// Host reference (the spec): host/model/tokenizer.ts. The tokenizer image (written by the host,
// tokenizerImage() in host/model/tokenizer.ts; docs/model.md) is copied into the arena at init:
//   u32 magic "EFTK", version 1, vocab, max_token_length, bos, eos, dummy-prefix id (" ", or -1), 0;
//   f32 scores[vocab]; u32 offsets[vocab + 1] into the piece bytes; u32 sorted[vocab] (ids by piece,
//   byte order); u32 byte_ids[256] (the fallback token of each byte); the piece bytes.
import { weights_read } from '../abi';
import { arena_alloc } from '../arena';
import { D_TEXT_BYTES, D_TOK_BYTES, D_TOK_OFFSET } from './desc';

const TOK_MAGIC: u32 = 0x4b544645; // "EFTK"
const H_WORDS: i32 = 8;

let img: usize = 0;
let vocab: i32 = 0, maxLen: i32 = 0, bos: i32 = 1, eos: i32 = 2, dummy: i32 = -1;
let scores: usize = 0, offsets: usize = 0, sorted: usize = 0, byteIds: usize = 0, pieces: usize = 0;
let text: usize = 0, textCap: i32 = 0; // the prompt, written by the host
let toks: usize = 0;                    // (textCap + 3) i32
let piece: usize = 0;                   // decode output

@inline function dword(i: i32): i32 { return load<i32>(desc0 + (<usize>i << 2)); }
let desc0: usize = 0;

// Allocates the tokenizer (from the descriptor's image range) and its buffers. False: out of memory
// or a bad image.
export function tokenizerReserve(desc: usize): bool {
  desc0 = desc;
  img = 0;
  const bytes = dword(D_TOK_BYTES);
  if (bytes <= 0) return true;
  img = arena_alloc(<u32>bytes);
  if (img == 0) return false;
  weights_read(img, dword(D_TOK_OFFSET), bytes);
  if (load<u32>(img) != TOK_MAGIC || load<u32>(img, 4) != 1) return false;
  vocab = load<i32>(img, 8); maxLen = load<i32>(img, 12); bos = load<i32>(img, 16); eos = load<i32>(img, 20); dummy = load<i32>(img, 24);
  scores = img + (<usize>H_WORDS << 2);
  offsets = scores + (<usize>vocab << 2);
  sorted = offsets + (<usize>(vocab + 1) << 2);
  byteIds = sorted + (<usize>vocab << 2);
  pieces = byteIds + (256 << 2);
  textCap = dword(D_TEXT_BYTES);
  text = arena_alloc(<u32>textCap + 1);
  toks = arena_alloc(<u32>(textCap + 3) << 2);
  piece = arena_alloc(<u32>maxLen + 1);
  return text != 0 && toks != 0 && piece != 0;
}

export function tok_text(): usize { return text; }
export function tokBos(): i32 { return bos; }
export function tokEos(): i32 { return eos; }
// bytes of the prompt buffer; -1 without a device tokenizer
export function tokTextCap(): i32 { return img == 0 ? -1 : textCap; }
export function tok_tokens(): usize { return toks; }
export function tok_piece(): usize { return piece; }

@inline function pStart(id: i32): usize { return pieces + <usize>load<u32>(offsets + (<usize>id << 2)); }
@inline function pLen(id: i32): i32 { return <i32>(load<u32>(offsets + (<usize>(id + 1) << 2)) - load<u32>(offsets + (<usize>id << 2))); }

// strcmp of piece `id` against the bytes a (la) followed by b (lb).
function compare(id: i32, a: usize, la: i32, b: usize, lb: i32): i32 {
  const p = pStart(id), lp = pLen(id);
  const n = la + lb;
  const m = min(lp, n);
  for (let i = 0; i < m; i++) {
    const c = <i32>load<u8>(p + i) - <i32>(i < la ? load<u8>(a + i) : load<u8>(b + i - la));
    if (c != 0) return c;
  }
  return lp - n;
}

// run.c's str_lookup: the id whose piece is a || b, or -1.
function lookup(a: usize, la: i32, b: usize, lb: i32): i32 {
  let lo = 0, hi = vocab - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const id = load<i32>(sorted + (<usize>mid << 2));
    const c = compare(id, a, la, b, lb);
    if (c == 0) return id;
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

// Encode the textLen bytes at tok_text() into tok_tokens(); returns the count, or -1 (no tokenizer,
// text too long). Stops at a NUL byte, as C strings do.
export function tok_encode(textLen: i32, addBos: i32, addEos: i32): i32 {
  if (img == 0 || textLen < 0 || textLen > textCap) return -1;
  for (let i = 0; i < textLen; i++) if (load<u8>(text + i) == 0) { textLen = i; break; }
  let n = 0;
  if (addBos != 0) { store<i32>(toks + (<usize>n << 2), bos); n++; }
  if (textLen > 0 && dummy >= 0) { store<i32>(toks + (<usize>n << 2), dummy); n++; }
  let start = 0, len = 0;
  for (let i = 0; i < textLen; i++) {
    const c = <i32>load<u8>(text + i);
    if ((c & 0xc0) != 0x80) { start = i; len = 0; }
    len++;
    const next = i + 1 < textLen ? <i32>load<u8>(text + i + 1) : 0;
    if ((next & 0xc0) == 0x80 && len < 4) continue;
    const id = lookup(text + start, len, 0, 0);
    if (id != -1) { store<i32>(toks + (<usize>n << 2), id); n++; }
    else for (let j = 0; j < len; j++) { store<i32>(toks + (<usize>n << 2), load<i32>(byteIds + (<usize>load<u8>(text + start + j) << 2))); n++; }
    len = 0;
    start = i + 1;
  }
  for (;;) {
    let best: f32 = -1e10;
    let bestId = -1, bestIdx = -1;
    for (let i = 0; i < n - 1; i++) {
      const a = load<i32>(toks + (<usize>i << 2)), b = load<i32>(toks + (<usize>(i + 1) << 2));
      const id = lookup(pStart(a), pLen(a), pStart(b), pLen(b));
      if (id != -1) {
        const s = load<f32>(scores + (<usize>id << 2));
        if (s > best) { best = s; bestId = id; bestIdx = i; }
      }
    }
    if (bestIdx == -1) break;
    store<i32>(toks + (<usize>bestIdx << 2), bestId);
    for (let i = bestIdx + 1; i < n - 1; i++) store<i32>(toks + (<usize>i << 2), load<i32>(toks + (<usize>(i + 1) << 2)));
    n--;
  }
  if (addEos != 0) { store<i32>(toks + (<usize>n << 2), eos); n++; }
  return n;
}

@inline function hex(c: i32): i32 {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 55;
  if (c >= 0x61 && c <= 0x66) return c - 87;
  return -1;
}

// The bytes run.c prints for `token` after `prev` (decode, then safe_printf's filter), at
// tok_piece(); returns their count (-1: no tokenizer or a bad id).
export function tok_decode(prev: i32, token: i32): i32 {
  if (img == 0 || token < 0 || token >= vocab) return -1;
  let p = pStart(token), l = pLen(token);
  if (prev == bos && l > 0 && load<u8>(p) == 0x20) { p++; l--; }
  // "<0xXX>" (sscanf "<0x%02hhX>"): the raw byte
  if (l >= 4 && load<u8>(p) == 0x3c && load<u8>(p, 1) == 0x30 && load<u8>(p, 2) == 0x78) {
    const d0 = hex(<i32>load<u8>(p, 3));
    if (d0 >= 0) {
      const d1 = l > 4 ? hex(<i32>load<u8>(p, 4)) : -1;
      const b = d1 < 0 ? d0 : d0 * 16 + d1;
      const printable = (b >= 0x20 && b <= 0x7e) || (b >= 0x09 && b <= 0x0d);
      if (!printable) return 0;
      store<u8>(piece, <u8>b);
      return 1;
    }
  }
  if (l == 1) {
    const b = <i32>load<u8>(p);
    if (!((b >= 0x20 && b <= 0x7e) || (b >= 0x09 && b <= 0x0d))) return 0;
  }
  for (let i = 0; i < l; i++) store<u8>(piece + i, load<u8>(p + i));
  return l;
}
