// Which WebAssembly instructions wasm3 (0.9, the boards' interpreter) executes, and a scan of a
// module's code for any it does not. wasm3 rejects those only when it compiles the function, and
// then with a message that does not name the instruction ("incorrect type on stack", "unknown
// opcode"); this scan names it, so that a device build that drifted (a compiler flag, a new
// kernel) fails with the instruction and the function that holds it.
//
// wasm3 runs: the MVP, sign extension (0xc0-0xc4), non-trapping float-to-int (0xfc 0-7), multi-value
// and memory.copy/memory.fill (0xfc 10, 11). Everything else found is reported by proposal.

export interface RejectedInstruction {
  func: number;       // function index (imports first, as the spec numbers them)
  offset: number;     // byte offset in the module
  opcode: string;     // e.g. '0xfd 0x0c'
  proposal: string;   // what it belongs to, e.g. 'SIMD (v128)'
}

export const SIMD = 'SIMD (v128)';

class Reader {
  constructor(readonly b: Uint8Array, public at: number) {}
  byte(): number {
    if (this.at >= this.b.length) throw new Error('truncated module');
    return this.b[this.at++];
  }
  u32(): number {
    let v = 0, shift = 0, byte: number;
    do {
      byte = this.byte();
      v += (byte & 0x7f) * 2 ** shift;
      shift += 7;
    } while (byte & 0x80);
    return v;
  }
  skipLeb(): void {
    while (this.byte() & 0x80);
  }
  skip(n: number): void {
    this.at += n;
  }
}

// Single-byte instructions wasm3 rejects, by proposal (none of these are emitted by the MVP).
function singleByteProposal(op: number): string | undefined {
  if (op >= 0x06 && op <= 0x0a) return 'exception handling';
  if (op === 0x12 || op === 0x13) return 'tail calls (return_call)';
  if (op === 0x14 || op === 0x15) return 'typed function references';
  if (op === 0x18 || op === 0x19) return 'exception handling';
  if (op === 0x25 || op === 0x26) return 'reference types (table.get/set)';
  if (op >= 0xd0 && op <= 0xd6) return 'reference types';
  if (op === 0xfb) return 'garbage collection';
  if (op === 0xfd) return SIMD;
  if (op === 0xfe) return 'threads (atomics)';
  if (op >= 0xc5 && op !== 0xfc) return 'an unknown proposal';
  return undefined;
}

// The first instruction of each function body that wasm3 does not execute, or its first v128 local
// (the scan of a body stops there: the immediates of other proposals are not decoded). Throws on a
// module too short for what its sections declare.
export function rejectedInstructions(wasm: Uint8Array): RejectedInstruction[] {
  return walk(wasm);
}

// The instructions beyond the MVP that wasm3 runs, as the spec names them, by proposal.
export const POST_MVP: ReadonlyArray<{ opcode: string; name: string; proposal: string }> = [
  ...['i32.extend8_s', 'i32.extend16_s', 'i64.extend8_s', 'i64.extend16_s', 'i64.extend32_s'].map((name, i) => ({ opcode: `0x${(0xc0 + i).toString(16)}`, name, proposal: 'sign extension' })),
  ...['i32.trunc_sat_f32_s', 'i32.trunc_sat_f32_u', 'i32.trunc_sat_f64_s', 'i32.trunc_sat_f64_u', 'i64.trunc_sat_f32_s', 'i64.trunc_sat_f32_u', 'i64.trunc_sat_f64_s', 'i64.trunc_sat_f64_u']
    .map((name, i) => ({ opcode: `0xfc 0x0${i}`, name, proposal: 'non-trapping float-to-int' })),
  { opcode: '0xfc 0x0a', name: 'memory.copy', proposal: 'bulk memory' },
  { opcode: '0xfc 0x0b', name: 'memory.fill', proposal: 'bulk memory' },
];
export const MULTI_VALUE = 'multi-value';

// What of wasm3's post-MVP set a module uses: each instruction of POST_MVP found (by opcode, with its
// count), and multi-value where a function type has more than one result or a block takes its type by
// index. A module with instructions wasm3 rejects is scanned up to them (rejectedInstructions names them).
export function instructionUse(wasm: Uint8Array): { instructions: Map<string, number>; multiValue: number } {
  const instructions = new Map<string, number>();
  let multiValue = 0;
  walk(wasm, (key) => {
    if (key === MULTI_VALUE) multiValue++;
    else instructions.set(key, (instructions.get(key) ?? 0) + 1);
  });
  return { instructions, multiValue };
}

function walk(wasm: Uint8Array, use?: (key: string) => void): RejectedInstruction[] {
  const r = new Reader(wasm, 8);
  let imported = 0;
  const out: RejectedInstruction[] = [];
  while (r.at < wasm.length) {
    const id = r.byte();
    const size = r.u32();
    const end = r.at + size;
    if (id === 1 && use) {
      const n = r.u32();
      for (let i = 0; i < n; i++) {
        r.byte(); // 0x60
        r.skip(r.u32()); // params: one value-type byte each
        const results = r.u32();
        if (results > 1) use(MULTI_VALUE);
        r.skip(results);
      }
    } else if (id === 2) {
      const n = r.u32();
      for (let i = 0; i < n; i++) {
        r.skip(r.u32()); // module name
        r.skip(r.u32()); // field name
        const kind = r.byte();
        if (kind === 0) { r.skipLeb(); imported++; }
        else if (kind === 1) { r.byte(); limits(r); }
        else if (kind === 2) limits(r);
        else if (kind === 3) { r.byte(); r.byte(); }
        else r.skipLeb(); // tag
      }
    } else if (id === 10) {
      const n = r.u32();
      for (let i = 0; i < n; i++) {
        const bodySize = r.u32();
        const bodyEnd = r.at + bodySize;
        const groups = r.u32();
        let v128Local = -1;
        for (let g = 0; g < groups; g++) {
          r.skipLeb();
          if (r.byte() === 0x7b && v128Local < 0) v128Local = r.at - 1;
        }
        const bad = v128Local >= 0 ? { offset: v128Local, opcode: 'a v128 local', proposal: SIMD } : scanBody(r, bodyEnd, use);
        if (bad) out.push({ func: imported + i, ...bad });
        r.at = bodyEnd;
      }
    }
    r.at = end;
  }
  return out;
}

function limits(r: Reader): void {
  const flags = r.byte();
  r.skipLeb();
  if (flags & 1) r.skipLeb();
}

function scanBody(r: Reader, end: number, use?: (key: string) => void): Omit<RejectedInstruction, 'func'> | undefined {
  while (r.at < end) {
    const offset = r.at;
    const op = r.byte();
    const proposal = singleByteProposal(op);
    if (proposal) {
      const sub = op === 0xfd || op === 0xfe || op === 0xfb ? ` 0x${r.u32().toString(16).padStart(2, '0')}` : '';
      return { offset, opcode: `0x${op.toString(16)}${sub}`, proposal };
    }
    if (op === 0x02 || op === 0x03 || op === 0x04) {
      // block type: 0x40, a value type, or a type index (s33)
      const t = r.b[r.at];
      if (t === 0x40 || (t >= 0x6f && t <= 0x7f)) r.at++;
      else { r.skipLeb(); use?.(MULTI_VALUE); }
    } else if (op === 0x0c || op === 0x0d || op === 0x10 || (op >= 0x20 && op <= 0x24)) r.skipLeb();
    else if (op === 0x0e) {
      const n = r.u32();
      for (let i = 0; i <= n; i++) r.skipLeb();
    } else if (op === 0x11) { r.skipLeb(); r.skipLeb(); }
    else if (op === 0x1c) r.skip(r.u32());
    else if (op >= 0x28 && op <= 0x3e) { r.skipLeb(); r.skipLeb(); }
    else if (op === 0x3f || op === 0x40) r.byte();
    else if (op === 0x41 || op === 0x42) r.skipLeb();
    else if (op === 0x43) r.skip(4);
    else if (op === 0x44) r.skip(8);
    else if (op >= 0xc0 && op <= 0xc4) use?.(`0x${op.toString(16)}`);
    else if (op === 0xfc) {
      const sub = r.u32();
      const key = `0xfc 0x${sub.toString(16).padStart(2, '0')}`;
      if (sub <= 7) { use?.(key); continue; } // non-trapping float-to-int
      if (sub === 10) { r.byte(); r.byte(); use?.(key); continue; } // memory.copy
      if (sub === 11) { r.byte(); use?.(key); continue; }           // memory.fill
      const proposal = sub <= 9 ? 'bulk memory (memory.init/data.drop)' : 'reference types (table instructions)';
      return { offset, opcode: `0xfc 0x${sub.toString(16).padStart(2, '0')}`, proposal };
    }
  }
  return undefined;
}

// One line naming what wasm3 would reject, or undefined when the module has none.
export function describeRejected(wasm: Uint8Array): string | undefined {
  let bad: RejectedInstruction[];
  try {
    bad = rejectedInstructions(wasm);
  } catch {
    return undefined;
  }
  if (bad.length === 0) return undefined;
  const first = bad[0];
  return `${bad.length} function(s) use instructions wasm3 does not run, first ${first.proposal}: ${first.opcode} in function ${first.func} (byte ${first.offset})`;
}
