// The memory planner: what a model needs on a board and whether it fits. Linear memory is the
// runtime's own arena plan (host/model/plan.ts planModel, the arithmetic of model_init, which the
// runtime checks to the byte), fitted to the board's largest block by streaming weights from flash;
// wasm3's heap (compiled code, stacks) and the image size come from the board profile and the image
// layout. planBoard() is a plain function: tests call it directly, `plan` and `pack` print it.
import type { BoardProfile } from '../board/boards.ts';
import { UserError } from '../errors.ts';
import { headDim, type ModelConfig } from '../model/config.ts';
import { KV_FORMATS, type KvFormat } from '../model/kv.ts';
import { MATRIX_NAMES, type Matrix, type Model } from '../model/model.ts';
import { planModel, type ActMode, type MemoryPlan, type Plan as RuntimePlan } from '../model/plan.ts';
import { FORMATS, formatByName, runsOn, type WeightFormat } from '../quant/formats.ts';
import { REFS } from '../quant/ref/index.ts';
import { descriptorBytes, descriptorImageTensor, layoutImage, modelTensors, paddedK, paddedM, tensorBytes } from './layout.ts';
import { modelImageTensors } from './model.ts';
import * as D from '../model/desc.ts';
import { isaTokPerSec } from '../model/isa-speed.ts';
import type { ImageTensorData } from './write.ts';

export interface AppFootprint {
  wasmBytes: number;                   // the app module: stays in flash, wasm3 compiles it into its heap
  heapBase: number;                    // linear memory below the arena (data, stack): arena_top at start
  has: (exportName: string) => boolean; // the kernels the module exports
}

// A measurement of this machine, for the tok/s estimate (host/image/speed.ts).
export interface HostSpeed {
  secondsPerToken: number;  // one decode step of this model under wasm3 here
  fibRate: number;          // wasm3 fib(n) calls per second here
  spread?: number;          // (max - min) / median of the calibration rounds' decode x fib products
  detail: string;
}

export interface BoardPlanRequest {
  model: Model;               // in the formats it will be packed in; config.seqLen is the context planned
  kv: KvFormat;
  act: ActMode;
  topk?: number;              // a4.8's top-K fraction (host/model/plan.ts); default: the mode's
  board: BoardProfile;
  app: AppFootprint;
  tokenizer: Uint8Array;      // the image's tokenizer section (EFTK): the app copies it into linear memory
  textBytes: number;          // the app's prompt buffer
  metadataBytes: number | null;
  signed: boolean;
  speed?: HostSpeed;
  engine?: Engine;            // default wasm3
  quick?: boolean;            // searches: whether it fits is all that is asked (no smallest plan when it does not)
}

// What a board's figures depend on beside the model: the board, the app, the engine running it.
export type BoardSide = Pick<BoardPlanRequest, 'board' | 'app' | 'engine'>;

// What runs the app on the board: wasm3 interprets build/device.wasm; aot is the same module
// translated to C by wasm2c and compiled into the firmware (`make -C boards/runtime aot`).
export type Engine = 'wasm3' | 'aot';
export const ENGINES: readonly Engine[] = ['wasm3', 'aot'];

// The AOT build's footprint, measured by `make -C boards/runtime aot-size` (x86 -m32 -Os as the
// proxy for a 32-bit board): app_module.o 150,103 bytes of text from a 45,448-byte build/device.wasm
// (3.3 bytes of code per wasm byte); app_aot.o + aot_rt.o 8,277 bytes of text + 336 of data (the
// runtime glue) and 2,149 bytes of data and bss in RAM. The code runs from flash (the app partition);
// linear memory is the same arena plan as under wasm3, and the native stack stays (boards' nativeStack).
export const AOT_FOOTPRINT = {
  codePerWasmByte: 3.3,
  runtime: 8613,
  ram: 2149,
  basis: 'measured with make -C boards/runtime aot-size (-m32 -Os): 150,103 bytes of code from a 45,448-byte build/device.wasm, 8,613 bytes of runtime glue, 2,149 bytes of data + bss',
  // Decode speed over wasm3's, the lowest of the per-configuration medians of three runs of
  // `bench --model 260k,15m --peers --steps 256 --repeat 3` on the development machine, quiet
  // (2026-12-02 05:19-05:29 UTC, the README's peers table, after the int4 pair-of-heads and f32p8
  // changes): f32 layer weights 10.7x (260k; 15m 13.3x), quantized 8.2x (260k tb1 + int4 KV, f32
  // classifier). A host ratio taken to the board: wasm3 on Xtensa runs without tail calls, so the
  // board's ratio is likely higher; not measured on a board.
  speedup: { f32: 10.7, quantized: 8.2 },
  speedupBasis: 'the lowest aot/wasm3 decode ratio of three runs of bench --model 260k,15m --peers on the development machine (2026-12-02, quiet), not measured on a board',
};

// The AOT app's code in flash: the translated module and its runtime glue.
export function aotCode(r: BoardPlanRequest): number {
  return aotCodeFor(r.app.wasmBytes);
}
export function aotCodeFor(wasmBytes: number): number {
  return AOT_FOOTPRINT.runtime + Math.round(AOT_FOOTPRINT.codePerWasmByte * wasmBytes);
}

// The task running the app: on ESP-IDF, its main task (app_main), whose stack holds the native stack the
// engine needs (the profile's wasm3.nativeStack; under AOT the translated app's calls) and this much for
// the runtime itself (host/firmware/project.ts sets CONFIG_ESP_MAIN_TASK_STACK_SIZE to mainTaskStack).
export const RUNTIME_STACK_BYTES = 16384;
// FreeRTOS's task control block and the heap's block header beside the stack (an estimate, rounded up).
export const TASK_OVERHEAD_BYTES = 512;
export const mainTaskStack = (board: BoardProfile) => board.wasm3.nativeStack + RUNTIME_STACK_BYTES;
// What the firmware takes from the internal heap before the app can allocate linear memory, by the
// profile's firmware (board.firmware.mainTaskFromHeap): ESP-IDF allocates the main task's stack and TCB
// from the heap before app_main runs; on a board without PSRAM that is the block linear memory needs (on
// the plain ESP32 the 200 KiB DRAM span 0x3FFAE000-0x3FFE0000, which leaves about 95 KiB of its 160 KiB
// beside a 64.5 KiB stack; on the ESP32-S3 and -C3 their one span). A firmware whose stack is static
// (the bare-metal ESP32-C3 runtime, a process on Linux) takes nothing: the engine's native stack is
// counted in the heap as measured.
export function firmwareHeapBeforeApp(board: BoardProfile): number {
  return board.firmware.mainTaskFromHeap ? mainTaskStack(board) + TASK_OVERHEAD_BYTES : 0;
}

// The native stack the engine runs on, as the heap sees it: the firmware's main task where the firmware
// allocates it from the heap, otherwise the profile's native stack.
function nativeStackHeap(b: BoardProfile): number {
  return b.firmware.mainTaskFromHeap ? firmwareHeapBeforeApp(b) : b.wasm3.nativeStack;
}

// The engine's needs beside linear memory: wasm3's heap, or the AOT build's static data and native stack.
export function engineHeap(r: BoardSide): number {
  return (r.engine ?? 'wasm3') === 'aot' ? AOT_FOOTPRINT.ram + nativeStackHeap(r.board) : wasm3Heap(r).total;
}

// The largest block linear memory can get once the firmware is up: the profile's figure, less the main
// task where the firmware takes it from the same heap before the app runs.
export function linearBlock(b: BoardProfile): number {
  return Math.max(0, b.memory.linearMemoryMax - (b.memory.linearInHeap ? firmwareHeapBeforeApp(b) : 0));
}

// The firmware's app partition (where the AOT code lives), or null where the board has none (a file system).
export function appPartition(b: BoardProfile): { name: string; size: number } | null {
  const p = b.flash.partitions.find((x) => x.type === 'app');
  return p ? { name: p.name, size: p.size } : null;
}

export interface PlanRow {
  item: string;
  linear: number;             // bytes of linear memory
  heap: number;               // bytes of wasm3's heap beside it
  flash: number;              // bytes read from flash per generated token
  note: string;
}

export interface BoardPlan {
  request: BoardPlanRequest;
  runtime: RuntimePlan;       // the runtime's plan: the fitted one, or the smallest there is when nothing fits
  memory: MemoryPlan;
  rows: PlanRow[];
  linear: number;
  heap: number;
  image: number;
  streamedBytesPerToken: number;
  limits: { linear: number; heap: number; image: number; appCode: number | null };
  engine: Engine;
  appCode: number;            // bytes of AOT code in flash (0 under wasm3: the app is in the image)
  fits: boolean;
  problems: string[];
  tokPerSec?: { value: number; basis: string };
  speedNote?: string;         // why there is no estimate (the calibration's spread over MAX_SPREAD)
}

const TARGET = 'device' as const;    // boards run the MVP build under wasm3

function runtimePlan(r: BoardPlanRequest, memoryLimit?: number): RuntimePlan {
  return planModel(r.model, { target: TARGET, kv: r.kv, act: r.act, topk: r.topk, memoryLimit, has: r.app.has, tokenizerImage: r.tokenizer, textBytes: r.textBytes }, r.app.heapBase);
}

// wasm3's own needs beside linear memory: runtime and compiled code, wasm stack, native stack.
export function wasm3Heap(r: BoardSide): { runtime: number; stack: number; native: number; total: number } {
  const w = r.board.wasm3;
  const runtime = w.runtime + Math.round(w.codePerWasmByte * r.app.wasmBytes);
  const native = nativeStackHeap(r.board);
  return { runtime, stack: w.stack, native, total: runtime + w.stack + native };
}

// The linear memory the plan may use: the board's largest block and, where linear memory shares the
// heap with wasm3 (no PSRAM), no more than the heap leaves beside wasm3's own needs.
export function linearLimit(r: BoardSide): number {
  const m = r.board.memory;
  return m.linearInHeap ? Math.max(0, Math.min(linearBlock(r.board), m.heapTotal - engineHeap(r))) : m.linearMemoryMax;
}

// The runtime plan that fits the board's linear memory, or null; and the smallest plan there is.
function fitRuntime(r: BoardPlanRequest): { fitted: RuntimePlan | null; smallest: RuntimePlan } {
  const limit = linearLimit(r);
  const all = runtimePlan(r);
  if (all.memory.total <= limit) return { fitted: all, smallest: all };
  const at = (l: number): RuntimePlan | null => {
    try {
      return runtimePlan(r, l);
    } catch (e) {
      if (e instanceof UserError) return null;
      throw e;
    }
  };
  const fitted = at(limit);
  if (fitted || r.quick) return { fitted, smallest: fitted ?? all };
  // Nothing fits: find the smallest linear memory any plan reaches (the runtime's fit is monotone in the limit).
  let lo = Math.min(limit, all.memory.total), hi = all.memory.total;
  let best = all;
  while (hi - lo > 16) {
    const mid = Math.floor((lo + hi) / 2);
    const p = at(mid);
    if (p) {
      best = p;
      hi = mid;
    } else lo = mid;
  }
  return { fitted: null, smallest: best };
}

export function planBoard(r: BoardPlanRequest): BoardPlan {
  const { fitted, smallest } = fitRuntime(r);
  const rt = fitted ?? smallest;
  const m = rt.memory;
  const c = r.model.config;
  const a16 = (n: number) => Math.ceil(n / 16) * 16;
  const rows: PlanRow[] = [];
  const row = (item: string, linear: number, heap: number, flash: number, note: string) => rows.push({ item, linear, heap, flash, note });
  const byName = new Map(rt.tensors.map((t) => [t.name, t]));

  row('app static data', m.heapBase, 0, 0, 'data segments and stack below the arena (__heap_base)');
  row('model descriptor', m.descriptor, 0, 0, `${rt.tensors.length} tensor entries`);
  // Weights: the runtime counts 16 bytes of slack per resident tensor (align16(bytes + 16)).
  const seen = new Set<number>();
  const weightRow = (item: string, names: string[], note: string) => {
    let lin = 0, fl = 0, res = 0;
    const formats = new Set<string>();
    for (const n of names) {
      const t = byName.get(n)!;
      if (t.kind !== 'vector') formats.add(t.format.name);
      if (t.resident) {
        if (!seen.has(t.offset)) lin += a16(t.bytes + 16);
        seen.add(t.offset);
        res++;
      } else fl += t.kind === 'embedding' ? t.rowBytes : t.bytes;
    }
    const where = res === names.length ? 'resident' : res === 0 ? 'streamed' : `${res} of ${names.length} resident`;
    row(item, lin, 0, fl, `${[...formats].join('+') || 'f32'}, ${where}${note}`);
  };
  const shared = r.model.classifier === null;
  weightRow('token embedding', ['embedding'], `${byName.get('embedding')!.resident ? '' : ' (one row a token)'}${shared ? ', shared with the classifier' : ''}`);
  for (let l = 0; l < c.nLayers; l++) weightRow(`layer ${l}`, [`layers.${l}.rms_att`, `layers.${l}.rms_ffn`, ...MATRIX_NAMES.map((n) => `layers.${l}.${n}`)], '');
  weightRow('final norm + classifier', ['rms_final', 'classifier'], shared ? ' (the embedding)' : '');
  if (m.stage > 0) row('staging buffer', m.stage, 0, 0, 'streamed weights pass through it, one row tile or more at a time');
  row('KV cache', m.kvCache, 0, 0, `${r.kv.name}, ${c.nLayers} layers x ${c.seqLen} positions x K,V${r.kv.qmax ? ', a bf16 scale per head' : ''}`);
  row('activations', m.activations, 0, 0, `run state for a prefill width of ${rt.batch}`);
  if (m.scratch > 0) row('kernel scratch', m.scratch, 0, 0, 'the largest scratch of the kernels chosen');
  if (m.sampler > 0) row('sampler', m.sampler, 0, 0, `top-p buffer, ${c.vocabSize} x 8 bytes`);
  row('tokenizer', m.tokenizer, 0, 0, `the app's copy of the ${r.tokenizer.byteLength}-byte tokenizer section, a ${r.textBytes}-byte prompt buffer, its tokens`);
  const engine = r.engine ?? 'wasm3';
  const w3 = wasm3Heap(r);
  const part = appPartition(r.board);
  const appCode = engine === 'aot' ? aotCode(r) : 0;
  if (engine === 'aot') {
    row('AOT app code', 0, 0, 0, `${fmtBytes(appCode)} in flash${part ? ` (app partition '${part.name}')` : ''}: the ${r.app.wasmBytes}-byte app as C, ~${AOT_FOOTPRINT.codePerWasmByte} bytes per app byte + glue (measured, AOT_FOOTPRINT in host/image/plan.ts)`);
    row('AOT static data', 0, AOT_FOOTPRINT.ram, 0, 'the runtime glue\'s data and bss; no interpreter heap');
    row(nativeItem(r.board), 0, nativeStackHeap(r.board), 0, `${nativeNote(r.board)} (boards/${r.board.name}.json)`);
  } else {
    row('wasm3 runtime + code', 0, w3.runtime, 0, `the ${r.app.wasmBytes}-byte app compiled, ~${r.board.wasm3.codePerWasmByte} bytes per app byte (measured, see boards/${r.board.name}.json)`);
    row('wasm3 stack', 0, w3.stack, 0, 'the interpreter value stack');
    row(nativeItem(r.board), 0, w3.native, 0, nativeNote(r.board));
  }

  const linear = m.total;
  const heap = engineHeap(r);
  const image = imageSize(r, rt);
  const bm = r.board.memory;
  const limits = { linear: linearLimit(r), heap: bm.linearInHeap ? bm.heapTotal - Math.min(linear, linearBlock(r.board)) : bm.heapTotal, image: r.board.imageCapacity, appCode: engine === 'aot' && part ? part.size : null };
  const problems: string[] = [];
  if (!fitted) {
    const why = bm.linearInHeap && limits.linear < linearBlock(r.board)
      ? `${fmtBytes(bm.heapTotal)} of heap less ${fmtBytes(heap)} for ${engine} leaves ${fmtBytes(limits.linear)}`
      : bm.linearInHeap && firmwareHeapBeforeApp(r.board) > 0
        ? `${r.board.name}'s ${fmtBytes(bm.linearMemoryMax)} block less the ${r.board.firmware.name} main task (${fmtBytes(firmwareHeapBeforeApp(r.board))}) leaves ${fmtBytes(limits.linear)}`
        : `${r.board.name} gives ${engine} ${fmtBytes(limits.linear)}`;
    problems.push(`linear memory: needs at least ${fmtBytes(linear)} with every weight streamed; ${why}`);
  }
  if (heap > limits.heap && (fitted || !bm.linearInHeap)) problems.push(`${engine} needs ${fmtBytes(heap)} of heap beside linear memory, ${r.board.name} has ${fmtBytes(Math.max(0, limits.heap))}`);
  if (image > limits.image) problems.push(`image ${fmtBytes(image)} > ${fmtBytes(limits.image)} (${slotPhrase(r.board)})`);
  if (limits.appCode !== null && appCode > limits.appCode) problems.push(`AOT code ${fmtBytes(appCode)} > ${fmtBytes(limits.appCode)} (app partition '${part!.name}')`);
  const plan: BoardPlan = {
    request: r, runtime: rt, memory: m, rows, linear, heap, image, streamedBytesPerToken: m.streamedPerToken, limits,
    engine, appCode, fits: problems.length === 0, problems,
  };
  if (r.speed) {
    if ((r.speed.spread ?? 0) > MAX_SPREAD) plan.speedNote = `no estimate: the calibration's spread was ${((r.speed.spread ?? 0) * 100).toFixed(0)} %, over ${MAX_SPREAD * 100} % (this machine is busy: run again when it is quiet)`;
    else plan.tokPerSec = estimateTokPerSec(plan, r.speed);
  }
  return plan;
}

// The plan's row for the task running the app, by the firmware.
function nativeItem(b: BoardProfile): string {
  return b.firmware.mainTaskFromHeap ? `${b.firmware.name} main task` : 'native stack';
}
function nativeNote(b: BoardProfile): string {
  return b.firmware.mainTaskFromHeap
    ? `its ${fmtBytes(mainTaskStack(b))} stack (${fmtBytes(b.wasm3.nativeStack)} native + ${fmtBytes(RUNTIME_STACK_BYTES)} runtime) and TCB, taken from the heap before the app starts`
    : `the task running the app (${b.firmware.name} firmware)`;
}

export function imageSize(r: BoardPlanRequest, rt: RuntimePlan): number {
  return layoutImage({
    descriptor: descriptorBytes(r.model.config), app: r.app.wasmBytes, tokenizer: r.tokenizer.byteLength,
    tensors: plannedTensors(rt).map((t) => t.data.byteLength), metadata: r.metadataBytes, signed: r.signed,
  }).totalSize;
}

// The image's shape of a runtime plan: the classifier is shared (no 'output' tensor) when the plan
// reads the embedding's bytes for it.
export function plannedShape(rt: RuntimePlan): ModelConfig {
  return { ...rt.config, sharedClassifier: rt.tensors[D.TENSOR_CLASSIFIER].data === rt.tensors[D.TENSOR_EMBEDDING].data };
}

// The image's tensors (modelTensors(plannedShape(rt)) order) as a runtime plan reads them: its formats
// and bytes (the plan keeps a matrix whose rows are not whole row tiles as f32) and its residency. A
// shared classifier reads the embedding's bytes: resident when either entry is.
export function plannedTensors(rt: RuntimePlan): ImageTensorData[] {
  const c = plannedShape(rt);
  const specs = modelTensors(c);
  const out: ImageTensorData[] = [];
  rt.tensors.forEach((t, i) => {
    const j = descriptorImageTensor(c, i);
    if (out[j]) out[j].resident ||= t.resident;
    else out[j] = { name: specs[j].name, format: t.format, m: specs[j].m, k: specs[j].k, scale: t.scale, resident: t.resident, data: t.data };
  });
  return out;
}

// fib(n) makes 2*fib(n+1)-1 calls.
export function fibCalls(n: number): number {
  let a = 0, b = 1;
  for (let i = 0; i < n + 1; i++) [a, b] = [b, a + b];
  return 2 * a - 1;
}

// An estimate is printed only where repeated calibration rounds agree this well ((max - min) / median).
export const MAX_SPREAD = 0.25;

// A measured basis for a board's decode time, where one exists: seconds a token for the plan, or null
// when the basis does not cover it (another model shape, format or engine). The first that answers is
// used, before the fib ratio below; a table of instruction counts measured on the emulated chip (the
// esp32c3 under QEMU) registers here.
export interface SpeedBasis {
  board: string;
  name: string;
  secondsPerToken(plan: BoardPlan): number | null;
}
export const MEASURED_BASES: SpeedBasis[] = [];

export function measuredEstimate(plan: BoardPlan): { value: number; basis: string } | null {
  for (const b of MEASURED_BASES) {
    if (b.board !== plan.request.board.name) continue;
    const s = b.secondsPerToken(plan);
    if (s !== null && s > 0) return { value: 1 / s, basis: `measured: ${b.name}` };
  }
  return null;
}

// Board seconds a token = a wasm3 decode step here x (this machine's wasm3 fib call rate / the
// board's), plus the streamed bytes over the board's flash read rate. An estimate: fib is call-bound,
// the kernels loop-bound, and caches (flash, PSRAM) are not modelled.
export function estimateTokPerSec(plan: BoardPlan, s: HostSpeed): { value: number; basis: string } {
  const measured = measuredEstimate(plan);
  if (measured) return measured;
  const b = plan.request.board;
  let ratio = 1;
  let basis = `measured: a wasm3 decode step on this machine (${s.detail})`;
  if (b.speed.fibN > 0) {
    ratio = s.fibRate / (fibCalls(b.speed.fibN) / b.speed.fibSeconds);
    basis = `estimate: a wasm3 decode step here (${s.detail}) x ${ratio.toFixed(1)}, this machine's wasm3 fib call rate over ${b.name}'s (${b.speed.basis})`;
  }
  if (plan.engine === 'aot') {
    const quantized = plan.runtime.tensors.some((t) => t.name.startsWith('layers.') && t.kind === 'matrix' && t.format.name !== 'f32');
    const x = quantized ? AOT_FOOTPRINT.speedup.quantized : AOT_FOOTPRINT.speedup.f32;
    ratio /= x;
    basis += `; the AOT build at ${x}x wasm3 (${quantized ? 'quantized' : 'f32'} layer weights: ${AOT_FOOTPRINT.speedupBasis})`;
  }
  const stream = plan.streamedBytesPerToken / b.flash.readBytesPerSecond;
  if (plan.streamedBytesPerToken > 0) basis += `; plus ${fmtBytes(plan.streamedBytesPerToken)} a token from flash at ${(b.flash.readBytesPerSecond / 1e6).toFixed(0)} MB/s (${b.flash.readBasis})`;
  return { value: 1 / (s.secondsPerToken * ratio + stream), basis };
}

// The same model with another context (the KV cache and attention buffers follow seq_len).
export function withContext(m: Model, ctx: number): Model {
  return { ...m, config: { ...m.config, seqLen: ctx } };
}

// The largest context that fits (linear memory, heap and image), or 0 when not even one position does.
export function largestContext(r: BoardPlanRequest, maxCtx: number): number {
  const ok = (ctx: number) => planBoard({ ...r, model: withContext(r.model, ctx), speed: undefined, quick: true }).fits;
  if (!ok(1)) return 0;
  if (ok(maxCtx)) return maxCtx;
  let lo = 1, hi = maxCtx;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (ok(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}

// A model of the same shape whose layer matrices are in `f` (zero weights: only sizes matter here).
export function reshapedModel(m: Model, f: WeightFormat): Model {
  const c = m.config;
  const zero = (rows: number, cols: number): Matrix => ({ format: f, m: paddedM(f, rows), k: paddedK(f, cols), data: new Uint8Array(tensorBytes(f, rows, cols)), scale: 1 });
  const kv = (c.dim * c.nKvHeads) / c.nHeads;
  return {
    ...m,
    layers: m.layers.map((l) => ({
      ...l, wq: zero(c.dim, c.dim), wk: zero(kv, c.dim), wv: zero(kv, c.dim), wo: zero(c.dim, c.dim),
      w1: zero(c.hiddenDim, c.dim), w2: zero(c.dim, c.hiddenDim), w3: zero(c.hiddenDim, c.dim),
    })),
  };
}

export interface Alternative {
  quant: string;
  kv: string;
  linear: number;
  image: number;
}

// Layer formats (those with a reference quantizer, so pack can make them) and KV formats that fit.
export function alternativesThatFit(r: BoardPlanRequest): Alternative[] {
  const out: Alternative[] = [];
  for (const f of FORMATS.filter((x) => !x.retired && REFS[x.name] && runsOn(x, TARGET))) {
    const model = reshapedModel(r.model, f);
    for (const kv of KV_FORMATS) {
      if (kv.name === 'int3' && headDim(r.model.config) % 8 !== 0) continue;
      const p = planBoard({ ...r, model, kv, speed: undefined, quick: true });
      if (p.fits) out.push({ quant: f.name, kv: kv.name, linear: p.linear, image: p.image });
    }
  }
  return out;
}

// Where an image goes on a board, in words: one of two model slots sharing the image partition.
export function slotPhrase(b: BoardProfile): string {
  return b.imagePartitionBytes !== null ? `a model slot: two share the ${fmtBytes(b.imagePartitionBytes)} partition '${b.flash.imagePartition}'` : 'the image size limit';
}

export function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(2)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

export interface PlanExtras {
  largestCtx?: number;
  alternatives?: Alternative[];
  sourceSeqLen?: number;
  other?: { engine: Engine; fits: boolean; tokPerSec: number | null };   // the same request under the other engine
}

// The table `plan` and `pack` print: rows, totals against the limits, the verdict, the estimate.
export function formatPlan(plan: BoardPlan, extra: PlanExtras = {}): string {
  const r = plan.request;
  const c: ModelConfig = r.model.config;
  const out: string[] = [];
  out.push(`board ${r.board.name}: ${r.board.title}`);
  out.push(`model dim ${c.dim}, hidden ${c.hiddenDim}, ${c.nLayers} layers, ${c.nHeads} heads (${c.nKvHeads} KV), vocab ${c.vocabSize}; ` +
    `context ${c.seqLen}${extra.sourceSeqLen ? ` of ${extra.sourceSeqLen}` : ''}, KV ${r.kv.name}, activations ${r.act}, ${TARGET} build ${plan.engine === 'aot' ? 'compiled ahead of time (wasm2c, --engine aot)' : 'under wasm3'}`);
  out.push('');
  const w = Math.max(24, ...plan.rows.map((x) => x.item.length));
  const col = (n: number) => (n ? fmtBytes(n) : '-').padStart(11);
  const heapName = plan.engine === 'aot' ? 'AOT heap' : 'wasm3 heap';
  out.push(`${'item'.padEnd(w)}  ${'linear mem'.padStart(11)}  ${heapName.padStart(11)}  ${'flash/token'.padStart(11)}  note`);
  for (const x of plan.rows) out.push(`${x.item.padEnd(w)}  ${col(x.linear)}  ${col(x.heap)}  ${col(x.flash)}  ${x.note}`);
  out.push(`${'total'.padEnd(w)}  ${col(plan.linear)}  ${col(plan.heap)}  ${col(plan.streamedBytesPerToken)}`);
  const lim = (v: number, l: number) => `${fmtBytes(v)} of ${fmtBytes(l)}: ${v <= l ? 'ok' : 'OVER'}`;
  out.push('');
  const bm = r.board.memory;
  if (bm.linearInHeap) {
    out.push(`heap: linear memory ${fmtBytes(plan.linear)} + ${plan.engine} ${fmtBytes(plan.heap)} = ${lim(plan.linear + plan.heap, bm.heapTotal)} ` +
      `(one heap for both on ${r.board.name}, ${r.board.firmware.name} firmware; linear memory in one block of at most ${fmtBytes(linearBlock(r.board))}` +
      `${firmwareHeapBeforeApp(r.board) > 0 ? ` (${fmtBytes(bm.linearMemoryMax)} less the main task)` : ''}, so the plan may use ${fmtBytes(plan.limits.linear)})`);
  } else {
    out.push(`linear memory ${lim(plan.linear, plan.limits.linear)} (its own memory on ${r.board.name});   ${heapName} ${lim(plan.heap, plan.limits.heap)}`);
  }
  out.push(`image ${lim(plan.image, plan.limits.image)} (${slotPhrase(r.board)})`);
  if (plan.limits.appCode !== null) out.push(`AOT code ${lim(plan.appCode, plan.limits.appCode)} (app partition; the rest of the firmware shares it)`);
  if (plan.fits) {
    const streamed = plan.runtime.tensors.filter((t) => !t.resident).length;
    out.push(`verdict: FITS on ${r.board.name} (${streamed === 0 ? 'every weight resident' : `${streamed} of ${plan.runtime.tensors.length} tensors streamed from flash each token`})`);
  } else {
    out.push(`verdict: DOES NOT FIT on ${r.board.name}: ${plan.problems.join('; ')}`);
    if (extra.largestCtx !== undefined) out.push(extra.largestCtx > 0 ? `  largest context that fits: ${extra.largestCtx} (--ctx ${extra.largestCtx})` : '  no context fits with these formats');
    if (extra.alternatives) {
      if (extra.alternatives.length === 0) out.push(`  no layer format and KV format fits at context ${c.seqLen}`);
      else {
        const by = new Map<string, string[]>();
        for (const a of extra.alternatives) by.set(a.quant, [...(by.get(a.quant) ?? []), a.kv]);
        out.push(`  formats that fit at context ${c.seqLen}: ${[...by].map(([q, kvs]) => `--quant ${q} --kv ${kvs.join('|')}`).join('; ')}`);
      }
    }
  }
  if (plan.tokPerSec) out.push(`speed: ~${fmtRate(plan.tokPerSec.value)} tok/s on ${r.board.name}${plan.engine === 'aot' ? ' (AOT build)' : ''}, ${plan.tokPerSec.basis}`);
  else if (plan.speedNote) out.push(`speed: ${plan.speedNote}`);
  if (extra.other?.tokPerSec) out.push(`  with --engine ${extra.other.engine}: ${extra.other.fits ? `~${fmtRate(extra.other.tokPerSec)} tok/s` : 'does not fit'}`);
  // beside the estimate: the tok/s from instructions counted on the chip's ISA (host/model/isa-speed.ts)
  const isa = isaTokPerSec(r.board.name, r.model.config, plan.engine, plan.streamedBytesPerToken, r.board.flash.readBytesPerSecond);
  if (isa) out.push(`  from instructions counted on its ISA: ~${fmtRate(isa.value)} tok/s${plan.engine === 'aot' ? ' (AOT build)' : ''}, ${isa.basis}`);
  return out.join('\n');
}

export function fmtRate(x: number): string {
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toPrecision(2);
}

export function planJson(plan: BoardPlan, extra: PlanExtras = {}): Record<string, unknown> {
  const r = plan.request;
  return {
    board: r.board.name, firmware: r.board.firmware.name, engine: plan.engine, config: r.model.config, ctx: r.model.config.seqLen, kv: r.kv.name, act: r.act, batch: plan.runtime.batch,
    formats: Object.fromEntries(modelImageTensors(r.model).map(({ name, t }) => [name, t.format.name])),
    rows: plan.rows, memory: plan.memory,
    totals: { linear: plan.linear, heap: plan.heap, image: plan.image, streamedBytesPerToken: plan.streamedBytesPerToken, appCode: plan.appCode },
    limits: plan.limits, fits: plan.fits, problems: plan.problems, ...extra,
    tokPerSec: plan.tokPerSec ? { estimate: plan.tokPerSec.value, spread: r.speed?.spread ?? null, basis: plan.tokPerSec.basis } : null,
    ...(plan.speedNote ? { speedNote: plan.speedNote } : {}),
    ...isaJson(plan),
  };
}

// the ISA-count tok/s (host/model/isa-speed.ts), only where one was measured (esp32c3, a counted shape)
function isaJson(plan: BoardPlan): Record<string, unknown> {
  const r = plan.request;
  const isa = isaTokPerSec(r.board.name, r.model.config, plan.engine, plan.streamedBytesPerToken, r.board.flash.readBytesPerSecond);
  return isa ? { tokPerSecIsa: { estimate: isa.value, basis: isa.basis } } : {};
}

export const F32 = formatByName('f32')!;
