// The runtime plan: for a model and a target, which kernel and activation format each matrix uses,
// in which form each tensor is stored, which tensors stay resident in linear memory and which stream
// through the staging buffer, and how many bytes every buffer takes. Pack writes it into an image as
// the descriptor section (host/image/pack.ts); where each tensor sits is the image's layout. The same arithmetic as
// model_init (assembly/model/llama.ts), so the plan predicts the linear-memory high-water mark to the
// byte (test/model.test.ts checks it) and can fit a memory limit before anything runs.
import { UserError } from '../errors.ts';
import { actFormat, formatByName, kernelExport, matrixBytes, streamTile, type ActFormatName, type Target, type WeightFormat } from '../quant/formats.ts';
import { headDim, kvDim, type ModelConfig } from './config.ts';
import * as D from './desc.ts';
import { kernelEntry, type KernelEntry } from './dispatch.ts';
import { KV_FORMATS, kvCacheBytes, kvScratchBytes, type KvFormat } from './kv.ts';
import { MATRIX_NAMES, type Matrix, type Model } from './model.ts';
import { convert, rowTileOf } from './quantize.ts';

export interface PlanOptions {
  target: Target;
  // activations before quantized matmuls (i4 only where a kernel takes it); 'a4.8': BitNet a4.8's
  // hybrid, i4 into the projections of the block's inputs (wq, wk, wv, w1, w3) and i8 into those of
  // its intermediate states (wo, w2), which are top-K sparsified first (topk)
  act?: ActMode;
  // fraction of the intermediate states (the inputs of wo and w2) kept by top-K sparsification, in
  // (0, 1]; default: A48_TOPK under act 'a4.8', 1 (dense) otherwise
  topk?: number;
  kv?: KvFormat;
  batch?: number;             // most tokens per forward (prefill GEMM width); default 16
  memoryLimit?: number;       // bytes of linear memory the arena may reach; default: no limit, all resident
  variant?: string;           // force a kernel variant where the format has it (tests, benchmarks)
  sampler?: boolean;          // reserve the top-p buffer (default true)
  tokenizerImage?: Uint8Array; // the device tokenizer (assembly/model/tokenizer.ts), or none
  textBytes?: number;         // longest prompt the device tokenizer takes (default 1024)
  has?: (exportName: string) => boolean; // which kernels the built module has (default: all of the table)
}

export interface TensorPlan {
  name: string;
  kind: 'matrix' | 'vector' | 'embedding';
  format: WeightFormat;
  kernel: KernelEntry | null;
  act: ActFormatName;
  m: number;
  k: number;
  scale: number;
  offset: number;     // in the image once packed (plan order until then: tells a shared classifier's bytes)
  bytes: number;
  rowBytes: number;
  rowTile: number;
  resident: boolean;
  data: Uint8Array;
  forms?: { rows: RowForm; panels: RowForm }; // an f32 matrix the plan panels (f32p8) where it is resident
}

export interface MemoryPlan {
  heapBase: number;
  descriptor: number;
  residentWeights: number;
  activations: number;
  kvCache: number;
  stage: number;
  sampler: number;
  tokenizer: number;
  scratch: number;
  total: number;            // the arena's high-water mark after model_init
  streamedPerToken: number; // weight bytes read through weights_read per decoded token
}

export interface Plan {
  config: ModelConfig;
  target: Target;
  kv: KvFormat;
  act: ActMode;       // the activation mode asked for (each tensor's act is what its kernel takes)
  keepWo: number;     // inputs of wo kept by top-K (0: all)
  keepW2: number;     // inputs of w2 kept by top-K (0: all)
  batch: number;
  dimStride: number;
  kvStride: number;
  hiddenStride: number;
  maxK: number;
  maxM: number;
  logits: number;
  scratch: number;
  stageBytes: number;
  textBytes: number;
  sampler: boolean;
  tokenizerImage: Uint8Array | null;
  tensors: TensorPlan[];
  memory: MemoryPlan;
}

export type ActMode = 'i8' | 'i4' | 'a4.8';
export const ACT_MODES: readonly ActMode[] = ['i8', 'i4', 'a4.8'];
// a4.8's top-K: the paper sparsifies the input of the attention output projection with TopK 50 %; its
// FFN-down input is sparse by itself (squared ReLU, over 80 % zeros), where this model's SwiGLU gives
// no zeros, so the same top-K (keep half) goes there too
export const A48_TOPK = 0.5;

// a4.8 runs with its 3-bit KV cache unless --kv says otherwise
export function defaultKv(act: ActMode): 'int3' | 'f32' {
  return act === 'a4.8' ? 'int3' : 'f32';
}

// The inputs kept of a row of `k` by a top-K fraction: at least one; 0 (all) when nothing is dropped.
export function keepCount(k: number, topk: number): number {
  const keep = Math.max(1, Math.round(k * topk));
  return keep >= k ? 0 : keep;
}

const align16 = (n: number) => Math.ceil(n / 16) * 16;
const TOPK_HIST_BYTES = 256 * 4; // sparsify_topk's histogram (assembly/kernels/act.ts)
const F32 = formatByName('f32')!;
const F32P8 = formatByName('f32p8')!;

// Which f32 matrices the device build reads in 8-row panels (f32p8: the same values, the GEMV's
// form, each row summed in run.c's order as before). Measured interleaved on one app (README, the
// AOT rows): the AOT build 1.8x (15m f32) to 3x (260k f32) with every f32 matrix in panels, 1.1x with
// the classifier only; wasm3 about +10 %. The simd build's f32 kernel sums in four lanes: rows.
export const F32_PANELS: Record<Target, 'all' | 'classifier' | 'none'> = { device: 'all', simd: 'none' };

function panelled(name: string, t: Matrix, opts: PlanOptions): boolean {
  const which = F32_PANELS[opts.target];
  if (t.format.id !== F32.id || which === 'none' || (which === 'classifier' && name !== 'classifier')) return false;
  return opts.has?.(kernelExport(F32P8, 'f32', 'naive')) ?? true;
}

export function chooseKernel(format: WeightFormat, want: ActFormatName, target: Target, force?: string, has: (name: string) => boolean = () => true): KernelEntry {
  const acts: ActFormatName[] = format.family === 'float' ? ['f32'] : want === 'i4' ? ['i4', 'i8'] : ['i8'];
  // forced, then the row's preferred kernel, then any other of the row the build has
  const order = [...(force ? [force] : []), ...(format.prefer[target] ? [format.prefer[target]] : []), ...format.kernels.map((kv) => kv.name)];
  for (const act of acts) {
    for (const v of order) {
      const e = kernelEntry(format, act, v);
      if (e && e.targets.includes(target) && has(e.exportName)) return e;
    }
  }
  throw new UserError(`format ${format.name} has no kernel in the ${target} build`, target === 'device'
    ? 'the device build (wasm3, boards) carries only the kernels a board needs (docs/formats.md lists each kernel\'s builds): run it on V8, or quantize to a format with a device kernel'
    : undefined);
}

function matrixPlan(name: string, t: Matrix, rows: number, cols: number, opts: PlanOptions): TensorPlan {
  let mt = t;
  if (mt.m % rowTileOf(mt.format) !== 0 || mt.k % mt.format.block !== 0 || mt.format.id === F32P8.id) mt = convert(t, rows, cols, F32);
  const want = opts.act === 'a4.8' ? (/\.(wo|w2)$/.test(name) || !name.startsWith('layers.') ? 'i8' : 'i4') : opts.act ?? 'i8';
  const form = (f: WeightFormat, data: Uint8Array): RowForm => ({ format: f, data, kernel: chooseKernel(f, want, opts.target, opts.variant, opts.has) });
  const rowsForm = form(mt.format, mt.data);
  const forms = panelled(name, mt, opts) ? { rows: rowsForm, panels: form(F32P8, convert(mt, rows, cols, F32P8).data) } : undefined;
  const tp: TensorPlan = {
    name, kind: 'matrix', format: mt.format, kernel: rowsForm.kernel, act: rowsForm.kernel.act, m: mt.m, k: mt.k, scale: mt.scale,
    offset: 0, bytes: mt.data.byteLength, rowBytes: matrixBytes(mt.format, 1, mt.k), rowTile: 1, resident: true, data: mt.data, forms,
  };
  useForm(tp, forms ? forms.panels : rowsForm);
  return tp;
}

// A matrix's stored form and the kernel that reads it.
interface RowForm { format: WeightFormat; data: Uint8Array; kernel: KernelEntry }

function useForm(t: TensorPlan, f: RowForm): void {
  t.format = f.format; t.data = f.data; t.kernel = f.kernel; t.act = f.kernel.act;
  t.rowTile = streamTile(f.format);
}

// A resident f32 matrix is read in panels where the plan panels it; a streamed one in rows (one row of
// the staging buffer, not a panel of 8). A shared embedding follows its classifier (the same bytes).
function placeForm(plan: Plan, t: TensorPlan): void {
  if (!t.forms) return;
  const f = t.resident ? t.forms.panels : t.forms.rows;
  if (f.data === t.data) return;
  const emb = plan.tensors[0];
  const shared = emb.data === t.data;
  useForm(t, f);
  if (shared) { emb.format = f.format; emb.data = f.data; }
}

function vectorPlan(name: string, v: Float32Array): TensorPlan {
  return {
    name, kind: 'vector', format: F32, kernel: null, act: 'f32', m: 1, k: v.length, scale: 1, offset: 0, bytes: v.byteLength,
    rowBytes: v.byteLength, rowTile: 1, resident: true, data: new Uint8Array(v.buffer, v.byteOffset, v.byteLength),
  };
}

// With a memory limit, the prefill width halves until the plan fits (a board prefills token by token).
export function planModel(model: Model, opts: PlanOptions, heapBase: number): Plan {
  if (opts.memoryLimit === undefined) return planFor(model, opts, heapBase);
  for (let b = Math.max(1, Math.min(opts.batch ?? 16, model.config.seqLen)); ; b = Math.floor(b / 2)) {
    try {
      return planFor(model, { ...opts, batch: b }, heapBase);
    } catch (e) {
      if (b <= 1 || !(e instanceof UserError)) throw e;
    }
  }
}

function planFor(model: Model, opts: PlanOptions, heapBase: number): Plan {
  const c = model.config;
  const kv = opts.kv ?? KV_FORMATS[0];
  const hs = headDim(c), kvd = kvDim(c);
  if (hs % 4 !== 0) throw new UserError(`the runtime needs a head size (dim / n_heads) that is a multiple of 4; this model's is ${hs}`);
  if (kv.name === 'int4' && c.seqLen > 16384) throw new UserError(`--kv int4 supports a context of at most 16384 positions; this model's is ${c.seqLen}`);
  if (kv.name === 'int3' && hs % 8 !== 0) throw new UserError(`--kv int3 needs a head size that is a multiple of 8; this model's is ${hs}`);
  const batch = Math.max(1, Math.min(opts.batch ?? 16, c.seqLen));

  // embedding: one row per token, f32 or q8_0
  let emb = model.embedding;
  if (!emb.format.embedding || emb.k !== c.dim) emb = convert(emb, c.vocabSize, c.dim, F32);
  const embedding: TensorPlan = {
    name: 'embedding', kind: 'embedding', format: emb.format, kernel: null, act: 'f32', m: c.vocabSize, k: c.dim, scale: 1,
    offset: 0, bytes: emb.data.byteLength, rowBytes: matrixBytes(emb.format, 1, c.dim), rowTile: 1, resident: true, data: emb.data,
  };
  const classifier = matrixPlan('classifier', model.classifier ?? model.embedding, c.vocabSize, c.dim, opts);
  if (!model.classifier && emb === model.embedding && classifier.data !== emb.data && classifier.format.family === 'float' && emb.format.family === 'float') {
    // a shared classifier in the other row form (f32 <-> f32p8): the embedding reads the same bytes (one copy)
    embedding.format = classifier.format;
    embedding.data = classifier.data;
  }
  const tensors: TensorPlan[] = [embedding, vectorPlan('rms_final', model.rmsFinal), classifier];
  model.layers.forEach((l, i) => {
    const m = (n: (typeof MATRIX_NAMES)[number], rows: number, cols: number) => matrixPlan(`layers.${i}.${n}`, l[n], rows, cols, opts);
    tensors.push(
      vectorPlan(`layers.${i}.rms_att`, l.rmsAtt), m('wq', c.dim, c.dim), m('wk', kvd, c.dim), m('wv', kvd, c.dim), m('wo', c.dim, c.dim),
      vectorPlan(`layers.${i}.rms_ffn`, l.rmsFfn), m('w1', c.hiddenDim, c.dim), m('w2', c.dim, c.hiddenDim), m('w3', c.hiddenDim, c.dim),
    );
  });

  // a classifier shared with an embedding of the same bytes reads them (one resident copy)
  tensors.forEach((t, i) => (t.offset = t === classifier && classifier.data === embedding.data ? embedding.offset : i));
  const tokImage = opts.tokenizerImage ?? null;

  const layerMats = tensors.filter((t) => t.kind === 'matrix' && t !== classifier);
  const byName = (suffix: string) => layerMats.filter((t) => t.name.endsWith(suffix));
  const mx = (...v: number[]) => Math.max(...v);
  const round4 = (n: number) => Math.ceil(n / 4) * 4;
  const dimStride = round4(mx(c.dim, classifier.k, ...['.wq', '.wk', '.wv', '.w1', '.w3'].flatMap((s) => byName(s).map((t) => t.k)), ...['.wq', '.wo', '.w2'].flatMap((s) => byName(s).map((t) => t.m))));
  const kvStride = round4(mx(kvd, ...['.wk', '.wv'].flatMap((s) => byName(s).map((t) => t.m))));
  const hiddenStride = round4(mx(c.hiddenDim, ...['.w1', '.w3'].flatMap((s) => byName(s).map((t) => t.m)), ...byName('.w2').map((t) => t.k)));
  const maxK = mx(...tensors.filter((t) => t.kind === 'matrix').map((t) => t.k));
  const maxM = mx(...layerMats.map((t) => t.m));
  const scratch = mx(0, ...tensors.filter((t) => t.kernel).map((t) => t.kernel!.scratch(t.k, t === classifier ? 1 : batch, t.kernel!.act)));
  const sampler = opts.sampler ?? true;
  const textBytes = tokImage ? opts.textBytes ?? 1024 : 0;

  const topk = opts.topk ?? (opts.act === 'a4.8' ? A48_TOPK : 1);
  if (!(topk > 0 && topk <= 1)) throw new UserError(`--topk ${topk}: expected a fraction in (0, 1]`);
  const plan: Plan = {
    config: c, target: opts.target, kv, act: opts.act ?? 'i8', keepWo: keepCount(c.dim, topk), keepW2: keepCount(c.hiddenDim, topk), batch, dimStride, kvStride, hiddenStride, maxK, maxM, logits: classifier.m, scratch,
    stageBytes: 0, textBytes, sampler, tokenizerImage: tokImage, tensors, memory: undefined as unknown as MemoryPlan,
  };
  plan.memory = memoryPlan(plan, heapBase);
  if (opts.memoryLimit !== undefined) fitMemory(plan, heapBase, opts.memoryLimit);
  return plan;
}

// The minimum staging buffer: one row tile of every streamed matrix, one embedding row.
function minStage(plan: Plan): number {
  let s = 0;
  for (const t of plan.tensors) {
    if (t.resident) continue;
    if (t.kind === 'matrix') s = Math.max(s, t.rowBytes * t.rowTile);
    if (t.kind === 'embedding' && t.format.family !== 'float') s = Math.max(s, t.rowBytes);
  }
  return s;
}

// Chooses what stays resident so that the arena fits `limit`: vectors always; then matrices, largest
// first, while they fit; the rest streams through a staging buffer grown into what is left.
function fitMemory(plan: Plan, heapBase: number, limit: number): void {
  for (const t of plan.tensors) if (t.kind !== 'vector') t.resident = false;
  for (const t of plan.tensors) placeForm(plan, t);
  plan.stageBytes = 0;
  plan.stageBytes = minStage(plan);
  let m = memoryPlan(plan, heapBase);
  if (m.total > limit) {
    throw new UserError(`the model does not fit ${limit} bytes of linear memory even with every weight streamed: it needs ${m.total} (KV cache ${m.kvCache}, activations ${m.activations})`, 'try --kv int4, a smaller context or a larger limit');
  }
  const candidates = plan.tensors.filter((t) => t.kind === 'matrix').sort((a, b) => b.bytes - a.bytes);
  for (const t of candidates) {
    t.resident = true;
    placeForm(plan, t);
    const s = plan.stageBytes;
    plan.stageBytes = minStage(plan);
    m = memoryPlan(plan, heapBase);
    if (m.total > limit) {
      t.resident = false;
      placeForm(plan, t);
      plan.stageBytes = s;
    }
  }
  // the embedding too, when all of it fits (a shared classifier then reads the same copy)
  const emb = plan.tensors[0];
  emb.resident = true;
  if (memoryPlan(plan, heapBase).total > limit) emb.resident = false;
  // grow the staging buffer into what is left: fewer, larger reads
  const streamed = plan.tensors.filter((t) => !t.resident && t.kind === 'matrix');
  const want = Math.max(minStage(plan), ...streamed.map((t) => t.bytes), 0);
  const free = limit - memoryPlan(plan, heapBase).total;
  plan.stageBytes = Math.max(minStage(plan), Math.min(want, plan.stageBytes + Math.max(0, Math.floor((free - 32) / 16) * 16)));
  plan.memory = memoryPlan(plan, heapBase);
}

// Mirrors model_init's allocations, in order.
export function memoryPlan(plan: Plan, heapBase: number): MemoryPlan {
  const c = plan.config;
  const B = plan.batch, hs = headDim(c), kvd = kvDim(c);
  const descriptor = align16(descriptorWords(plan) * 4);
  let resident = 0;
  const seen: TensorPlan[] = [];
  for (const t of plan.tensors) {
    if (!t.resident) continue;
    if (!seen.some((u) => u.offset === t.offset && u.bytes === t.bytes)) resident += align16(t.bytes + 16);
    seen.push(t);
  }
  const a = (n: number) => align16(n);
  const activations = 4 * a(B * plan.dimStride * 4) + 2 * a(B * plan.kvStride * 4) + 2 * a(B * plan.hiddenStride * 4)
    + a((c.nHeads / c.nKvHeads) * c.seqLen * 4) + a(16) + a(plan.logits * 4) + a(B * plan.maxK + 16) + a(B * 4)
    + (B > 1 ? a(B * plan.maxK * 4) + a(B * plan.maxM * 4) : 0) + 2 * a(B * hs * 2) + a(B * 4)
    + (plan.keepWo > 0 || plan.keepW2 > 0 ? a(TOPK_HIST_BYTES) : 0);
  const stage = plan.stageBytes > 0 ? a(plan.stageBytes + 16) : 0;
  const kvs = kvScratchBytes(plan.kv, hs);
  const kvCache = a(kvCacheBytes(plan.kv, c.nLayers, c.seqLen, kvd, c.nKvHeads)) + (kvs > 0 ? a(kvs) : 0);
  const sampler = plan.sampler ? a(c.vocabSize * 8) : 0;
  const tokenizer = plan.tokenizerImage ? tokenizerBytes(plan) : 0;
  const scratch = plan.scratch > 0 ? a(plan.scratch) : 0;
  const total = heapBase + descriptor + resident + activations + stage + kvCache + sampler + tokenizer + scratch;
  let streamedPerToken = 0;
  for (const t of plan.tensors) {
    if (t.resident) continue;
    streamedPerToken += t.kind === 'embedding' ? t.rowBytes : t.bytes;
  }
  return { heapBase, descriptor, residentWeights: resident, activations, kvCache, stage, sampler, tokenizer, scratch, total, streamedPerToken };
}

// The device tokenizer (assembly/model/tokenizer.ts): its image, the prompt text, the tokens, one piece.
export function tokenizerBytes(plan: Plan): number {
  const img = plan.tokenizerImage;
  if (!img) return 0;
  const maxLen = new DataView(img.buffer, img.byteOffset).getUint32(12, true);
  return align16(img.byteLength) + align16(plan.textBytes + 1) + align16((plan.textBytes + 3) * 4) + align16(maxLen + 1);
}

export function descriptorWords(plan: Plan): number {
  return D.D_TENSORS + plan.tensors.length * D.T_WORDS;
}

const f32bits = (v: number) => new Int32Array(new Float32Array([v]).buffer)[0];

// The descriptor words of a plan, before the image places them (host/image/write.ts placeDescriptor).
export function writeDescriptor(plan: Plan, ropeTheta: number, normEps: number): Int32Array {
  const c = plan.config;
  const w = new Int32Array(descriptorWords(plan));
  w[D.D_MAGIC] = D.DESC_MAGIC; w[D.D_VERSION] = D.DESC_VERSION;
  w[D.D_DIM] = c.dim; w[D.D_HIDDEN] = c.hiddenDim; w[D.D_LAYERS] = c.nLayers; w[D.D_HEADS] = c.nHeads; w[D.D_KV_HEADS] = c.nKvHeads;
  w[D.D_VOCAB] = c.vocabSize; w[D.D_SEQ] = c.seqLen; w[D.D_KV_FORMAT] = plan.kv.id; w[D.D_BATCH] = plan.batch;
  w[D.D_STAGE] = plan.stageBytes; w[D.D_ROPE_THETA] = f32bits(ropeTheta); w[D.D_NORM_EPS] = f32bits(normEps);
  w[D.D_DIM_STRIDE] = plan.dimStride; w[D.D_KV_STRIDE] = plan.kvStride; w[D.D_HIDDEN_STRIDE] = plan.hiddenStride;
  w[D.D_MAX_K] = plan.maxK; w[D.D_MAX_M] = plan.maxM; w[D.D_SCRATCH] = plan.scratch; w[D.D_LOGITS] = plan.logits;
  // offsets (each tensor's and the tokenizer's) are the image's: host/image/write.ts placeDescriptor
  w[D.D_TOK_OFFSET] = 0; w[D.D_TOK_BYTES] = plan.tokenizerImage?.byteLength ?? 0; w[D.D_TEXT_BYTES] = plan.textBytes;
  w[D.D_SAMPLER] = plan.sampler ? 1 : 0; w[D.D_N_TENSORS] = plan.tensors.length;
  w[D.D_KEEP_WO] = plan.keepWo; w[D.D_KEEP_W2] = plan.keepW2;
  plan.tensors.forEach((t, i) => {
    const at = D.D_TENSORS + i * D.T_WORDS;
    w[at + D.T_FORMAT] = t.format.id; w[at + D.T_KERNEL] = t.kernel ? t.kernel.id : -1;
    w[at + D.T_QMAX] = actFormat(t.act).qmax;
    w[at + D.T_M] = t.m; w[at + D.T_K] = t.k; w[at + D.T_OFFSET] = t.offset; w[at + D.T_BYTES] = t.bytes;
    w[at + D.T_RESIDENT] = t.resident ? 1 : 0; w[at + D.T_SCALE] = f32bits(t.scale);
    w[at + D.T_ROW_BYTES] = t.rowBytes; w[at + D.T_ROW_TILE] = t.rowTile;
  });
  return w;
}

// One line per tensor group for --verbose: where each tensor lives and what it costs.
export function describePlan(plan: Plan): string[] {
  const m = plan.memory;
  const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
  const lines = [
    `plan: ${plan.target} build, kv ${plan.kv.name}, batch ${plan.batch}${plan.keepWo || plan.keepW2 ? `, top-K keeps ${plan.keepWo || plan.config.dim} of wo's ${plan.config.dim} inputs and ${plan.keepW2 || plan.config.hiddenDim} of w2's ${plan.config.hiddenDim}` : ''}, linear memory ${kib(m.total)} (${m.total} bytes): ` +
      `heap base ${kib(m.heapBase)}, resident weights ${kib(m.residentWeights)}, KV cache ${kib(m.kvCache)}, activations ${kib(m.activations)}, ` +
      `staging ${kib(m.stage)}, scratch ${kib(m.scratch)}, sampler ${kib(m.sampler)}, tokenizer ${kib(m.tokenizer)}, descriptor ${kib(m.descriptor)}`,
  ];
  const groups = new Map<string, TensorPlan[]>();
  for (const t of plan.tensors) {
    const key = `${t.name.replace(/^layers\.\d+\./, 'layers.*.')}`;
    (groups.get(key) ?? groups.set(key, []).get(key)!).push(t);
  }
  for (const [name, ts] of groups) {
    const t = ts[0];
    const res = ts.filter((u) => u.resident).length;
    const where = res === ts.length ? 'resident' : res === 0 ? 'streamed' : `resident in ${res} of ${ts.length}, streamed in the rest`;
    lines.push(`plan:   ${name.padEnd(18)} ${t.format.name.padEnd(6)} ${t.kernel ? `${t.kernel.variant}/${t.act}`.padEnd(14) : ''.padEnd(14)} (${t.m}x${t.k}) x${ts.length}  ${kib(ts.reduce((s, u) => s + u.bytes, 0)).padStart(10)}  ${where}`);
  }
  if (m.streamedPerToken > 0) lines.push(`plan: ${kib(m.streamedPerToken)} of weights stream through a ${kib(plan.stageBytes)} staging buffer every token`);
  return lines;
}
