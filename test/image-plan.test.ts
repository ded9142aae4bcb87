// The planner and packing: planBoard() against the runtime's own arena plan, the board limits, the
// largest context and the formats that fit, packing refusals, and an image that runs exactly like the
// model it was packed from (same logits on V8 and wasm3).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { boardByName, boards, parseProfile, type BoardProfile } from '../host/board/boards.ts';
import { imageToModel } from '../host/image/model.ts';
import { appFootprint, convertModel, deviceApp, DoesNotFitError, packModel, planRequest } from '../host/image/pack.ts';
import { alternativesThatFit, AOT_FOOTPRINT, aotCode, estimateTokPerSec, fibCalls, formatPlan, largestContext, linearLimit, planBoard, wasm3Heap, withContext, type BoardPlanRequest } from '../host/image/plan.ts';
import { readImage } from '../host/image/read.ts';
import { FIB_WASM, fibValue, measureFibRate } from '../host/image/speed.ts';
import type { ModelConfig } from '../host/model/config.ts';
import { kvFormat } from '../host/model/kv.ts';
import { planModel } from '../host/model/plan.ts';
import { ModelRuntime } from '../host/model/runtime.ts';
import { formatByName } from '../host/quant/formats.ts';
import { TENSOR_CLASSIFIER } from '../host/model/desc.ts';
import { dequantize } from '../host/model/quantize.ts';
import { MATRIX_NAMES, matrixShape } from '../host/model/model.ts';
import { tinyModel } from './fixtures/image.ts';
import { testEngines } from './helpers.ts';

const C: ModelConfig = { dim: 64, hiddenDim: 172, nLayers: 3, nHeads: 8, nKvHeads: 4, vocabSize: 96, seqLen: 128, sharedClassifier: true };
const tb1 = formatByName('tb1')!;
const int4 = kvFormat('int4')!;
const f32kv = kvFormat('f32')!;
const app = deviceApp();
const engines = await testEngines();

// A board like esp32 with the given memory (linear memory shares the heap), under a firmware whose stack is
// static (nothing taken from the heap before the app: the figures are the limits as given).
function board(linearMax: number, heapTotal: number, shared = true): BoardProfile {
  const b = boardByName('esp32');
  return { ...b, memory: { ...b.memory, linearMemoryMax: linearMax, heapTotal, linearInHeap: shared }, firmware: { name: 'test', mainTaskFromHeap: false, basis: 'test' } };
}

function request(b: BoardProfile, kv = int4, ctx?: number): BoardPlanRequest {
  const m = convertModel(tinyModel(C, 1), { quant: tb1 }).model;
  return planRequest(m, { board: b, kv, app, ctx }, 600);
}

const p = suite('planner');

p('linear memory is the runtime plan to the byte; everything resident on a large board', () => {
  const r = request(boardByName('host'));
  const plan = planBoard(r);
  const rt = planModel(r.model, { target: 'device', kv: int4, act: 'i8', has: r.app.has, tokenizerImage: r.tokenizer, textBytes: r.textBytes }, r.app.heapBase);
  assert.ok(plan.fits);
  assert.ok(rt.memory.tokenizer > r.tokenizer.byteLength, 'the app\'s copy of the tokenizer section is planned');
  assert.is(plan.linear, rt.memory.total);
  assert.is(plan.streamedBytesPerToken, 0);
  assert.ok(plan.runtime.tensors.every((t) => t.resident));
  const sum = plan.rows.reduce((s, x) => s + x.linear, 0);
  assert.is(sum, plan.linear, 'the rows add up to the total');
});

p('a small board streams weights to fit, within its largest block and what wasm3 leaves of the heap', () => {
  const all = planBoard(request(boardByName('host'))).linear;
  const b = board(Math.floor(all * 0.8), 4 << 20);
  const plan = planBoard(request(b));
  assert.ok(plan.fits, formatPlan(plan));
  assert.ok(plan.linear <= b.memory.linearMemoryMax);
  assert.ok(plan.streamedBytesPerToken > 0);
  // the shared heap binds: wasm3's needs come off the top
  const r = request(board(1 << 20, Math.floor(all * 0.8) + wasm3Heap(request(b)).total));
  assert.is(linearLimit(r), Math.floor(all * 0.8));
  assert.ok(planBoard(r).linear <= linearLimit(r));
  // a PSRAM board: linear memory has its own pool
  const ps = request(board(all, 1 << 20, false));
  assert.is(linearLimit(ps), all);
});

p('when nothing fits: the smallest plan, the largest context that fits, and formats that fit', () => {
  const host = request(boardByName('host'));
  const minimal = planBoard({ ...host, board: board(1, 1 << 30) });
  assert.not.ok(minimal.fits);
  assert.match(minimal.problems[0], /needs at least/);
  const b = board(minimal.linear + 2048, 1 << 30);
  const r = request(b, f32kv);
  const full = planBoard(r);
  const best = largestContext(r, C.seqLen);
  assert.ok(best >= 1 && best <= C.seqLen);
  if (!full.fits) {
    assert.ok(planBoard({ ...r, model: withContext(r.model, best) }).fits, `fits at ${best}`);
    assert.not.ok(planBoard({ ...r, model: withContext(r.model, best + 1) }).fits, `not at ${best + 1}`);
  }
  const tight = request(board(Math.floor(minimal.linear * 0.9), 1 << 30), f32kv);
  assert.not.ok(planBoard(tight).fits);
  const alts = alternativesThatFit(request(board(planBoard(request(boardByName('host'), int4)).linear - 1024, 1 << 30), f32kv));
  assert.ok(alts.some((a) => a.kv !== 'f32'), 'a smaller KV cache fits');
  for (const a of alts) assert.ok(['f32', 'int8', 'int4', 'int3'].includes(a.kv));
});

p('the image size in the plan is the packed image to the byte', () => {
  const src = tinyModel(C, 2);
  const res = packModel(src, { board: boardByName('host'), quant: tb1, kv: int4, app, tool: 'test', source: 'synthetic' });
  assert.is(res.plan.image, res.bytes.byteLength);
  assert.is(res.image.config.plannedLinear, res.plan.linear);
});

p('f32 weights packed for the device build: matrices in 8-row panels (f32p8), the shared embedding the same bytes; read back, the same values; planned for the simd build, rows again', () => {
  const src = tinyModel(C, 5); // hidden 172: panels and a tail of 4 rows
  const res = packModel(src, { board: boardByName('host'), kv: f32kv, app, tool: 'test', source: 'synthetic' });
  const img = readImage(res.bytes);
  assert.ok(img.config.sharedClassifier, 'one copy of the embedding and classifier');
  for (const t of img.tensors) assert.is(t.format.name, t.role === 'norm' ? 'f32' : 'f32p8', t.name);
  const back = imageToModel(img);
  const same = (a: Float32Array, b: Float32Array, what: string) => assert.ok(a.length === b.length && a.every((v, i) => Object.is(v, b[i])), what);
  same(dequantize(back.embedding, C.vocabSize, C.dim), dequantize(src.embedding, C.vocabSize, C.dim), 'embedding');
  for (const n of MATRIX_NAMES) {
    const [rows, cols] = matrixShape(C, n);
    same(dequantize(back.layers[1][n], rows, cols), dequantize(src.layers[1][n], rows, cols), n);
  }
  const simd = planModel(back, { target: 'simd', kv: f32kv }, 0);
  for (const t of simd.tensors) assert.is(t.format.name, 'f32', `simd ${t.name}`);
  assert.is(simd.tensors[TENSOR_CLASSIFIER].data, simd.tensors[0].data, 'simd: the classifier still reads the embedding');
});

p('the tok/s estimate scales a measurement here by the fib call rates, and adds flash reads', () => {
  assert.is(fibCalls(24), 150049);
  assert.is(fibValue(10), 55);
  const plan = planBoard(request(boardByName('esp32')));
  const boardRate = fibCalls(24) / 0.297;
  const est = estimateTokPerSec(plan, { secondsPerToken: 0.01, fibRate: boardRate * 100, detail: 'test' });
  const want = 1 / (0.01 * 100 + plan.streamedBytesPerToken / 20e6);
  assert.ok(Math.abs(est.value - want) < 1e-9);
  assert.match(est.basis, /^estimate: /);
  const host = estimateTokPerSec(planBoard(request(boardByName('host'))), { secondsPerToken: 0.01, fibRate: 1, detail: 'test' });
  assert.is(host.value, 100);
  assert.match(host.basis, /^measured/);
});

p('the AOT build: the same linear memory plan, no wasm3 heap, its code against the app partition', () => {
  const big = request(boardByName('host'));
  const w = planBoard(big), a = planBoard({ ...big, engine: 'aot' });
  assert.is(a.engine, 'aot');
  assert.is(a.linear, w.linear, 'linear memory is the same plan');
  assert.is(a.heap, AOT_FOOTPRINT.ram + big.board.wasm3.nativeStack);
  assert.ok(a.heap < w.heap);
  assert.ok(!a.rows.some((x) => x.item.startsWith('wasm3')), a.rows.map((x) => x.item).join(', '));
  assert.is(a.appCode, aotCode(big));
  assert.is(aotCode(big), AOT_FOOTPRINT.runtime + Math.round(AOT_FOOTPRINT.codePerWasmByte * big.app.wasmBytes));
  assert.is(w.appCode, 0);
  // a shared heap that wasm3's needs crowd out: the AOT build gets the memory back, and a longer context
  const b = board(4 << 20, wasm3Heap(request(boardByName('esp32'))).total + 4096);
  const r = request(b);
  assert.is(planBoard(r).fits, false);
  assert.ok(planBoard({ ...r, engine: 'aot' }).fits, formatPlan(planBoard({ ...r, engine: 'aot' })));
  assert.ok(largestContext({ ...r, engine: 'aot' }, 128) > largestContext(r, 128));
  // code that does not fit the app partition is a problem of its own
  const tiny = { ...b, flash: { ...b.flash, partitions: b.flash.partitions.map((x) => (x.type === 'app' ? { ...x, size: 0x1000 } : x)) } };
  const over = planBoard({ ...request(tiny), engine: 'aot' });
  assert.is(over.fits, false);
  assert.match(over.problems.join('; '), /AOT code .* > 4\.0 KiB \(app partition 'factory'\)/);
  // its tok/s: wasm3's estimate over the stored AOT/wasm3 ratio (tb1 layers: the quantized one), plus the same flash reads
  const esp = request(boardByName('esp32'));
  const boardRate = fibCalls(24) / 0.297;
  const aot = planBoard({ ...esp, engine: 'aot' });
  const est = estimateTokPerSec(aot, { secondsPerToken: 0.01, fibRate: boardRate * 100, detail: 'test' });
  const want = 1 / ((0.01 * 100) / AOT_FOOTPRINT.speedup.quantized + aot.streamedBytesPerToken / 20e6);
  assert.ok(Math.abs(est.value - want) < 1e-9, `${est.value} vs ${want}`);
  assert.ok(est.basis.includes(`the AOT build at ${AOT_FOOTPRINT.speedup.quantized}x wasm3 (quantized layer weights`), est.basis);
});

p('the fib module computes fib on every engine', () => {
  for (const e of engines) {
    const inst = e.instantiate(FIB_WASM, () => []);
    assert.is(Number(inst.call('fib', 20)), 6765, e.name);
    inst.close();
    assert.ok(measureFibRate(e, 15) > 0, e.name);
  }
});

const k = suite('packing');

k('an image runs exactly as the model it was packed from (same logits, V8 and wasm3)', () => {
  const src = tinyModel(C, 3);
  const res = packModel(src, { board: boardByName('host'), quant: tb1, kv: int4, app, tool: 'test', source: 'synthetic', ctx: 64 });
  const fromImage = imageToModel(readImage(res.bytes));
  const direct = withContext(convertModel(src, { quant: tb1 }).model, 64);
  for (const e of engines) {
    const a = ModelRuntime.create(fromImage, e, { target: 'device', kv: int4 });
    const b = ModelRuntime.create(direct, e, { target: 'device', kv: int4 });
    try {
      for (let pos = 0; pos < 4; pos++) {
        const la = a.forward([pos + 3], pos)!, lb = b.forward([pos + 3], pos)!;
        assert.equal([...la], [...lb], `${e.name} position ${pos}`);
      }
    } finally {
      a.close();
      b.close();
    }
  }
});

k('pack refuses an image that does not fit, with the plan; force (pack --ignore-fit) writes it anyway', () => {
  const src = tinyModel(C, 4);
  const small = board(4096, 1 << 20);
  try {
    packModel(src, { board: small, quant: tb1, kv: f32kv, app, tool: 'test', source: 'synthetic' });
    assert.unreachable('packed');
  } catch (e) {
    assert.instance(e, DoesNotFitError);
    assert.match((e as Error).message, /does not fit esp32: linear memory: needs at least/);
    assert.not.ok((e as DoesNotFitError).plan.fits);
  }
  const res = packModel(src, { board: small, quant: tb1, kv: f32kv, app, tool: 'test', source: 'synthetic', force: true });
  assert.is(res.image.config.plannedLinear, 0, 'an unplanned image says so');
});

k('the creation time is in the metadata only when asked for, so packing is reproducible', () => {
  const src = tinyModel(C, 5);
  const o = { board: boardByName('rpi4'), quant: tb1, kv: int4, app, tool: 'test', source: 'synthetic' };
  const a = packModel(src, o).bytes, b = packModel(src, o).bytes;
  assert.equal(a, b);
  const t = packModel(src, { ...o, created: new Date(Date.UTC(2026, 0, 2)) });
  assert.is(t.image.metadata!.created, '2026-01-02T00:00:00.000Z');
  assert.not.ok('created' in readImage(a).metadata!);
});

k('embeddings go to q8_0 under a sub-8-bit format; --embed chooses; K = 172 pads', () => {
  const src = tinyModel(C, 6);
  const m = convertModel(src, { quant: tb1 }).model;
  assert.is(m.embedding.format.name, 'q8_0');
  assert.is(m.layers[0].w2.k, 192, 'ffn_down padded to whole tb1 blocks');
  assert.is(convertModel(src, { quant: tb1, embed: formatByName('f32') }).model.embedding.format.name, 'f32');
  assert.is(convertModel(src, {}).model.embedding.format.name, 'f32');
});

k('the app footprint is what the runtime measures', () => {
  const f = appFootprint(app);
  assert.is(f.wasmBytes, app.byteLength);
  assert.ok(f.heapBase > 0 && f.heapBase % 16 === 0);
  assert.ok(f.has('model_init'));
});

const b = suite('board profiles');

b('every profile loads, ids are unique, partitions fit the flash, each figure states its basis', () => {
  const all = boards();
  assert.ok(all.length >= 9);
  for (const x of all) {
    assert.ok(x.memory.basis.length > 40 && x.wasm3.basis.length > 40 && x.speed.basis.length > 20, x.name);
    assert.ok(x.memory.linearMemoryMax > 0 && x.memory.heapTotal > 0 && x.imageCapacity > 0, x.name);
    // one model slot: the partition holds the slot record and two slots (A/B), as the firmware lays it out
    if (x.flash.imagePartition) {
      const part = x.flash.partitions.find((p) => p.name === x.flash.imagePartition)!.size;
      assert.is(x.imagePartitionBytes, part);
      assert.ok(2 * x.imageCapacity + 2 * 4096 <= part && 2 * (x.imageCapacity + 4096) + 2 * 4096 > part, x.name);
      assert.is(x.imageCapacity % 4096, 0);
    }
  }
  assert.is(boardByName('esp32').imageCapacity, 0x177000); // (0x2f0000 - 2 sectors) / 2
  assert.is(boardByName('esp32').memory.linearMemoryMax, 160 * 1024);
  assert.ok(boardByName('esp32s3-psram8').accepts.includes('esp32s3'));
});

b('a malformed profile is refused with the field named', () => {
  const raw = JSON.parse(JSON.stringify({ ...boardByName('esp32'), memory: { ...boardByName('esp32').memory, linearMemoryMax: 'lots' } }));
  assert.throws(() => parseProfile(raw, 'x.json'), /x\.json: memory\.linearMemoryMax: 'lots' is not a size/);
  const overlap = JSON.parse(JSON.stringify(boardByName('esp32')));
  overlap.flash.partitions[1].offset = '0xa000';
  assert.throws(() => parseProfile(overlap, 'y.json'), /flash\.partitions/);
});

p.run();
k.run();
b.run();
