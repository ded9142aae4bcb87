// Which wasm3 the firmware needs, from the device app's instructions: an instruction scan of
// build/device.wasm (host/engine/opcodes.ts instructionUse) for what it uses beyond the MVP, checked
// against the app's own text form (build/device.wat), then against the opcode tables of the wasm3 0.9.0
// sources that `edge-flash firmware` copies (the wasm3x-sys crate's, read here), and against upstream
// wasm3's releases as recorded below.
//
// What the upstream record says (read from the wasm3/wasm3 repository's tags, source/m3_compile.c's
// c_operations and c_operationsFC tables and the 0xFC dispatch in m3_compile.c / m3_config.h):
//   v0.4.6 (f99d76c8): sign extension only; no saturating float-to-int, no memory.copy/fill
//   v0.4.7 (3b970de4), v0.4.8 (46944248), v0.4.9 (98692f6f): + saturating float-to-int (0xFC 0x00-0x07)
//   v0.5.0 (6b8bcb1e): + memory.copy, memory.fill (0xFC 0x0a, 0x0b; d_m3EnableExtendedOpcodes defaults to 1)
// So the finding is: the app's instructions need wasm3 v0.4.7 or later; v0.5.0 (the last upstream
// release) has every one of them in its tables, and the device app ran model_init and 8 decode steps
// under v0.5.0 on this machine (tools/wasm3-footprint/measure.ts pointed at v0.5.0's sources). The
// firmware ships 0.9.0 because it is the interpreter the host runs and measures, not for an instruction
// that 0.5.0 lacks. Which wasm3 version the ESP component registry carries was not checked (no access).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { instructionUse, POST_MVP, rejectedInstructions } from '../host/engine/opcodes.ts';
import { wasm3SourceDir } from '../host/firmware/project.ts';
import { fromRoot } from '../host/paths.ts';

const app = readFileSync(fromRoot('build', 'device.wasm'));
const wat = readFileSync(fromRoot('build', 'device.wat'), 'utf8');
const use = instructionUse(app);
const used = POST_MVP.filter((op) => use.instructions.has(op.opcode));

// upstream releases: the POST_MVP instructions in their opcode tables (see the header)
const SIGN_EXT = POST_MVP.filter((o) => o.proposal === 'sign extension').map((o) => o.name);
const SAT = POST_MVP.filter((o) => o.proposal === 'non-trapping float-to-int').map((o) => o.name);
const UPSTREAM: Record<string, string[]> = {
  'v0.4.6': SIGN_EXT,
  'v0.4.7': [...SIGN_EXT, ...SAT],
  'v0.4.9': [...SIGN_EXT, ...SAT],
  'v0.5.0': [...SIGN_EXT, ...SAT, 'memory.copy', 'memory.fill'],
};

// wasm3 names the saturating truncations its own way: i32.trunc_sat_f32_s is "i32.trunc_s:sat/f32"
const wasm3Name = (spec: string) => spec.replace(/^(i\d\d)\.trunc_sat_(f\d\d)_([su])$/, '$1.trunc_$3:sat/$2');

test('the scan: the device app uses sign extension and saturating float-to-int, counted as its text form counts them; no multi-value, no bulk memory', () => {
  assert.equal(rejectedInstructions(app), [], 'the app has no instruction wasm3 rejects');
  const proposals = [...new Set(used.map((o) => o.proposal))].sort();
  assert.equal(proposals, ['non-trapping float-to-int', 'sign extension']);
  for (const op of POST_MVP) {
    // an instruction in the text form, not a function named after it ($~lib/memory/memory.copy)
    const inText = (wat.match(new RegExp(`(?<![\\w$/.~])${op.name.replace('.', '\\.')}(?![\\w.])`, 'g')) ?? []).length;
    assert.is(use.instructions.get(op.opcode) ?? 0, inText, `${op.name} (${op.opcode})`);
  }
  assert.is(use.multiValue, 0);
  assert.not.ok(use.instructions.has('0xfc 0x0a'), 'memory.copy is a library function of the app, not the instruction');
});

test('wasm3 0.9.0, as the firmware copies it: every instruction the app uses is in its opcode tables', () => {
  const compile = readFileSync(join(wasm3SourceDir(), 'm3_compile.c'), 'utf8');
  assert.match(readFileSync(join(wasm3SourceDir(), 'wasm3.h'), 'utf8'), /#define M3_VERSION\s+"0\.9\.0"/);
  assert.ok(used.length >= 2);
  for (const op of used) assert.match(compile, new RegExp(`M3OP(_F)?\\(\\s*"${wasm3Name(op.name).replace(/[.:/]/g, (c) => `\\${c}`)}"`), `${op.name} in 0.9.0's tables`);
});

test('upstream releases: the app\'s instructions are all in v0.4.7 and later (v0.5.0 included); v0.4.6 lacks saturating float-to-int', () => {
  const missing = (tag: string) => used.filter((o) => !UPSTREAM[tag].includes(o.name)).map((o) => o.name);
  assert.ok(missing('v0.4.6').length > 0 && missing('v0.4.6').every((n) => n.includes('trunc_sat')), missing('v0.4.6').join(', '));
  for (const tag of ['v0.4.7', 'v0.4.9', 'v0.5.0']) assert.equal(missing(tag), [], tag);
});

test.run();
