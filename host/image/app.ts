// What an image's app is: which build (device, the MVP module wasm3 and boards run; or simd, V8 only),
// told from its code, not from its name or a flag. The code section is walked instruction by
// instruction (MVP, sign extension, saturating truncation, bulk memory, reference types, tail calls);
// the first 0xFD prefix (or a v128 local) is SIMD. An opcode this walker does not know stops it:
// the app's build is then 'unknown', and the engine's own loader has the last word.
import { baseImports } from '../engine/imports.ts';
import type { Target } from '../quant/formats.ts';

export type AppBuild = Target | 'unknown';

const V128 = 0x7b;
const VALTYPES = new Set([0x7f, 0x7e, 0x7d, 0x7c, V128, 0x70, 0x6f]);

class Reader {
  constructor(private b: Uint8Array, public at: number, private end: number) {}
  byte(): number {
    if (this.at >= this.end) throw new RangeError('past the end');
    return this.b[this.at++];
  }
  u32(): number {
    let v = 0, shift = 0, x: number;
    do {
      x = this.byte();
      v += (x & 0x7f) * 2 ** shift;
      shift += 7;
    } while (x & 0x80);
    return v;
  }
  skipLeb(): void {
    while (this.byte() & 0x80);
  }
  skip(n: number): void {
    this.at += n;
    if (this.at > this.end) throw new RangeError('past the end');
  }
}

// Skips one instruction's immediates; returns false on SIMD, null on an opcode it does not know.
function skipImmediates(r: Reader, op: number): boolean | null {
  if (op <= 0x01 || op === 0x05 || op === 0x0b || op === 0x0f || op === 0x1a || op === 0x1b || op === 0xd1) return true;
  if (op >= 0x02 && op <= 0x04) { // block, loop, if: a block type (empty, a value type, or a type index)
    const t = r.byte();
    if (t !== 0x40 && !VALTYPES.has(t) && t & 0x80) r.skipLeb();
    return true;
  }
  if (op === 0x0c || op === 0x0d || op === 0x10 || op === 0x12 || (op >= 0x20 && op <= 0x26) || op === 0x3f || op === 0x40 || op === 0xd2) {
    r.skipLeb();
    return true;
  }
  if (op === 0x0e) { // br_table
    for (let n = r.u32() + 1; n > 0; n--) r.skipLeb();
    return true;
  }
  if (op === 0x11 || op === 0x13) { r.skipLeb(); r.skipLeb(); return true; } // call_indirect: type, table
  if (op === 0x1c) { r.skip(r.u32()); return true; }                         // select with types
  if (op >= 0x28 && op <= 0x3e) { r.skipLeb(); r.skipLeb(); return true; }   // memarg: align, offset
  if (op === 0x41 || op === 0x42) { r.skipLeb(); return true; }              // i32/i64.const
  if (op === 0x43) { r.skip(4); return true; }
  if (op === 0x44) { r.skip(8); return true; }
  if (op >= 0x45 && op <= 0xc4) return true;                                  // numeric, sign extension
  if (op === 0xd0) { r.byte(); return true; }                                 // ref.null t
  if (op === 0xfc) {
    const sub = r.u32();
    if (sub <= 7) return true;                                                // saturating truncation
    const words = [2, 1, 2, 1, 2, 1, 2, 1, 1, 1][sub - 8];                    // memory.init .. table.fill
    if (words === undefined) return null;
    for (let i = 0; i < words; i++) r.skipLeb();
    return true;
  }
  if (op === 0xfd) return false;
  return null;
}

// The build an app module is: 'simd' when any function uses a SIMD instruction or a v128 local.
export function appBuild(app: Uint8Array): AppBuild {
  try {
    const r = new Reader(app, 8, app.byteLength);
    while (r.at < app.byteLength) {
      const id = r.byte();
      const size = r.u32();
      const end = r.at + size;
      if (id === 10) { // code: vec(body); body = size, vec(locals), expression
        const c = new Reader(app, r.at, end);
        for (let n = c.u32(); n > 0; n--) {
          const bodyEnd = c.u32() + c.at;
          const f = new Reader(app, c.at, bodyEnd);
          for (let l = f.u32(); l > 0; l--) {
            f.skipLeb();
            if (f.byte() === V128) return 'simd';
          }
          while (f.at < bodyEnd) {
            const ok = skipImmediates(f, f.byte());
            if (ok === false) return 'simd';
            if (ok === null) return 'unknown';
          }
          c.at = bodyEnd;
        }
        return 'device';
      }
      r.skip(size);
    }
    return 'device'; // no code at all
  } catch {
    return 'unknown';
  }
}

// The exports the model runtime calls (host/model/runtime.ts) and the imports a board provides
// (host/engine/imports.ts, docs/abi.md): an app that lacks one, or wants another, cannot run.
export const APP_EXPORTS = [
  'memory', 'arena_reset', 'arena_top', 'arena_alloc', 'model_init', 'model_memory', 'model_tokens', 'model_forward',
  'model_logits', 'model_step', 'sampler_init', 'sampler_sample',
] as const;

// What keeps an app from running, in one line; null when nothing does.
export function appProblem(app: Uint8Array): string | null {
  let mod: WebAssembly.Module;
  try {
    mod = new WebAssembly.Module(app as Uint8Array<ArrayBuffer>);
  } catch (e) {
    return `the app is not a valid WebAssembly module (${(e as Error).message.replace(/^WebAssembly\.Module\(\): /, '')})`;
  }
  const provided = new Set(baseImports()(() => { throw new Error('no instance'); }).map((f) => `${f.module}.${f.name}`));
  const extra = WebAssembly.Module.imports(mod).filter((i) => i.kind !== 'function' || !provided.has(`${i.module}.${i.name}`));
  if (extra.length) return `the app imports ${extra.map((i) => `${i.module}.${i.name}`).join(', ')}, which a board does not provide (only ${[...provided].join(', ')})`;
  const exports = new Set(WebAssembly.Module.exports(mod).map((e) => e.name));
  const missing = APP_EXPORTS.filter((n) => !exports.has(n));
  if (missing.length) return `the app does not export ${missing.join(', ')}: it is not an edge-flash device app (build/device.wasm)`;
  return null;
}
