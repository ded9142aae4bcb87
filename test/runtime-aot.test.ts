// The AOT app layer (boards/runtime/aot/app_aot.c: build/device.wasm translated by wasm2c, every load
// and store bounds-checked) gives the same outputs, token for token and byte for byte, as wasm3 on the
// same image: the host's wasm3 (`edge-flash run IMAGE --engine wasm3`, ModelRuntime), the C runtime's
// wasm3 app layer (build/app_run) and the AOT one (build/app_run-aot) run the same calls on the packed
// image (its descriptor section to model_init, weights_read on its bytes). And the AOT runtime boots
// an image whose app it was built from, refuses any other app, and traps as wasm3 does.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { appRunDecode, appRunGenerate, dumpRuntime, type Dump } from '../host/bench/aot.ts';
import { getEngine } from '../host/engine/index.ts';
import { loadModel } from '../host/formats/index.ts';
import { readImage } from '../host/image/read.ts';
import { writeImage } from '../host/image/write.ts';
import { kvFormat } from '../host/model/kv.ts';
import { ModelRuntime } from '../host/model/runtime.ts';
import { fromRoot } from '../host/paths.ts';
import { TINY, imageParts } from './fixtures/image.ts';
import { cli } from './helpers.ts';
import { makeRuntime, runBin } from './runtime-helpers.ts';

const build = makeRuntime('aot');
const dir = mkdtempSync(join(tmpdir(), 'edge-flash-rt-aot-'));
const PROMPT = 'In the beginning';
const STEPS = 64;

function hostDecode(rt: ModelRuntime, steps: number): number[] {
  rt.setSampler({ temperature: 0, topp: 0.9, seed: 1n });
  const out: number[] = [];
  let tok = 1;
  for (let pos = 0; pos < steps; pos++) out.push((tok = rt.step(tok, pos)));
  return out;
}

let kjv: Dump;
test('the kjv demo image (tb1, int4 KV): AOT, C wasm3 and the host wasm3 print the same text and decode the same tokens', async () => {
  const image = join(dir, 'kjv.efimg');
  const p = cli('pack', fromRoot('models', 'kjv-esp32-260k', 'model.bin'), '--board', 'host', '--quant', 'tb1', '--kv', 'int4', '-o', image);
  assert.is(p.code, 0, p.err);
  const r = cli('run', image, '--engine', 'wasm3', '-t', '0', '-n', String(STEPS), '-i', PROMPT);
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /^In the beginning./);
  const img = readImage(new Uint8Array(readFileSync(image)));
  kjv = { path: image, boardId: img.boardId };
  const rt = ModelRuntime.fromImage(img, await getEngine('wasm3'), { capMemory: true });
  let tokens: number[];
  try {
    tokens = hostDecode(rt, STEPS);
  } finally {
    rt.close();
  }
  assert.is(appRunGenerate('aot', kjv, PROMPT, STEPS), r.out);
  assert.is(appRunGenerate('wasm3', kjv, PROMPT, STEPS), r.out);
  assert.equal(appRunDecode('aot', kjv, STEPS).tokens, tokens);
  assert.equal(appRunDecode('wasm3', kjv, STEPS).tokens, tokens);
});

test('the float32 path (kjv-esp32-260k-fp, f32 KV): the AOT app decodes the tokens wasm3 decodes (no fused multiply-adds)', async () => {
  const model = loadModel(fromRoot('models', 'kjv-esp32-260k-fp', 'model.bin'));
  const rt = ModelRuntime.create(model, await getEngine('wasm3'), { target: 'device', kv: kvFormat('f32')!, act: 'i8', batch: 1, sampler: false });
  let tokens: number[], dump: Dump;
  try {
    // every f32 matrix in 8-row panels: the f32p8 kernel, vectorized after aot-gen.sh's range check
    assert.ok(rt.plan.tensors.filter((t) => t.kind !== 'vector').every((t) => t.format.name === 'f32p8'), 'f32 weights in panels');
    dump = dumpRuntime(rt, join(dir, 'fp'));
    tokens = hostDecode(rt, STEPS);
  } finally {
    rt.close();
  }
  assert.equal(appRunDecode('aot', dump, STEPS).tokens, tokens);
  // under a memory limit the streamed matrices keep rows (f32) beside resident panels: the same tokens
  const all = ModelRuntime.create(model, await getEngine('wasm3'), { target: 'device', kv: kvFormat('f32')!, act: 'i8', batch: 1, sampler: false });
  const limit = all.plan.memory.total - Math.floor(all.plan.memory.residentWeights / 2);
  all.close();
  const tight = ModelRuntime.create(model, await getEngine('wasm3'), { target: 'device', kv: kvFormat('f32')!, act: 'i8', batch: 1, sampler: false, memoryLimit: limit, capMemory: true });
  let mixed: number[];
  try {
    const forms = new Set(tight.plan.tensors.filter((t) => t.kind === 'matrix').map((t) => `${t.format.name} ${t.resident ? 'resident' : 'streamed'}`));
    assert.equal([...forms].sort(), ['f32 streamed', 'f32p8 resident']);
    dump = dumpRuntime(tight, join(dir, 'fp-tight'));
    mixed = hostDecode(tight, STEPS);
  } finally {
    tight.close();
  }
  assert.equal(mixed, tokens);
  assert.equal(appRunDecode('aot', dump, STEPS).tokens, tokens);
});

test('aot-gen.sh: the f32p8 kernel checks its three ranges once per call, then runs a copy without per-access checks', () => {
  const c = readFileSync(fromRoot('boards', 'runtime', 'build', 'aot', 'app_module.c'), 'utf8');
  const copy = /static void w2c_gemm_f32p8_f32_naive_in_range\([^)]*\) \{\n([\s\S]*?)\n\}\n/.exec(c);
  assert.ok(copy, 'the in-range copy');
  assert.ok(/ef_f32_load_in_range\(/.test(copy![1]) && !/[^_]f32_load\(|[^_]f32_store\(/.test(copy![1]), 'its accesses unchecked');
  const orig = /static void w2c_gemm_f32p8_f32_naive\([^)]*\) \{\n  if \(ef_f32p8_in_range\(([\s\S]*?)\n\}\n/.exec(c);
  assert.ok(orig && /[^_]f32_load\(/.test(orig[1]), 'the kernel: the range check, then the checked body for calls outside it');
});

test('a trap comes back as the same error line from both app layers: an access past the memory cap', () => {
  const run = (b: string) => runBin(join(build, b), ['--image', kjv.path, '--board-id', String(kjv.boardId), '--cap', '200000', '--decode', '4']);
  const w = run('app_run'), a = run('app_run-aot');
  assert.is(w.code, 2);
  assert.is(a.code, 2);
  const trap = (err: string) => err.split('\n').filter((l) => l.startsWith('app_run'));
  assert.equal(trap(a.err), ["app_run (aot): model_init: app trapped in 'model_init': [trap] out of bounds memory access"]);
  assert.equal(trap(w.err), ["app_run (wasm3): model_init: app trapped in 'model_init': [trap] out of bounds memory access"]);
});

test('edge-flash-runtime-aot boots an image of its own app (the self-test) and refuses an image with another app', () => {
  const bin = join(build, 'edge-flash-runtime-aot');
  const boot = (app: Uint8Array, name: string) => {
    const img = join(dir, `${name}.efimg`);
    writeFileSync(img, writeImage(imageParts(TINY, 3, { app })).bytes);
    const board = ['--slot-file', join(dir, `${name}-slots.bin`), '--board-id', '2', '--capacity', '262144'];
    const i = runBin(bin, [...board, '--install', img]);
    assert.is(i.code, 0, i.err);
    return runBin(bin, [...board, '--boot', '--call', 'arena_top', '--call', 'no_such_export']);
  };
  const ok = boot(new Uint8Array(readFileSync(fromRoot('build', 'device.wasm'))), 'own');
  assert.is(ok.code, 0, ok.err);
  const events = ok.out.trim().split('\n').map((l) => JSON.parse(l));
  assert.is(events[0].event, 'booted', ok.err);
  const calls = events.filter((e) => e.event === 'call');
  assert.ok(calls[0].ok, calls[0].error);
  assert.ok(calls[0].result > 0);
  assert.equal(calls[1], { event: 'call', export: 'no_such_export', ok: false, error: "app: no export 'no_such_export' (function lookup failed)" });
  const other = boot(new Uint8Array(readFileSync(fromRoot('build', 'probe.wasm'))), 'other');
  assert.is(other.code, 0, other.err);
  assert.match(other.err, /self-test failed: aot: app: the image's app \(sha256 [0-9a-f]{16}\.\.\.\) is not the one compiled into this runtime \([0-9a-f]{16}\.\.\.\)/);
  assert.is(JSON.parse(other.out.trim().split('\n')[0]).event, 'self_test_failed');
});

test('bench --model: an aot row beside every wasm3 row, with its ratio against that row; --engine aot without --model exits 2', () => {
  const r = cli('bench', '--model', '260k', '--steps', '8', '--repeat', '1', '--engine', 'wasm3,aot', '--json');
  assert.is(r.code, 0, r.err);
  const rows = JSON.parse(r.out);
  const wasm3 = rows.filter((x: any) => x.engine === 'wasm3'), aot = rows.filter((x: any) => x.engine === 'aot');
  assert.ok(wasm3.length >= 3);
  assert.is(aot.length, wasm3.length);
  for (const x of aot) assert.ok(x.tok_s > 0 && x.ratio_vs_wasm3 > 0, JSON.stringify(x));
  assert.ok(wasm3.every((x: any) => x.ratio_vs_wasm3 === null));
  assert.ok(aot.some((x: any) => x.weights === 'f32') && aot.some((x: any) => x.weights === 'ternary' && x.kv === 'int4'));
  const bad = cli('bench', '--engine', 'aot');
  assert.is(bad.code, 2);
  assert.match(bad.err.trim(), /^edge-flash: error: --engine aot times whole models: it goes with --model$/);
});

test.run();
