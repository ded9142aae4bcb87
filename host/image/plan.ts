// The memory planner: what a model needs on a board (linear memory, wasm3's heap, flash) and whether
// it fits. planMemory() is plain arithmetic over the config, the formats and the board profile, so tests
// call it directly; `edge-flash plan` and `pack` print its table. Byte counts follow the device app's
// arena (assembly/arena.ts: 16-byte aligned bump allocations) and llama2.c's RunState.
import type { BoardProfile } from '../board/boards.ts';
import { UserError } from '../errors.ts';
import { headDim, kvDim, type ModelConfig } from '../model/config.ts';
import { FORMATS, formatByName, type WeightFormat } from '../quant/formats.ts';
import { REFS } from '../quant/ref/index.ts';
import { KV_CODES, alignUp, type ImageActName, type KvFormatName } from './format.ts';
import { layoutImage, modelTensors, paddedK, tensorBytes as matrixBytes, type TensorSpec } from './layout.ts';

// KV cache formats: bits per value, plus one f32 scale per position and KV head for quantized ones.
export const KV_FORMATS: Record<KvFormatName, { bits: number; scaled: boolean }> = {
  f32: { bits: 32, scaled: false },
  int8: { bits: 8, scaled: true },
  int4: { bits: 4, scaled: true },
  int3: { bits: 3, scaled: true },
};

// Bytes of K (or V) for one position of one layer.
export function kvBytesPerPosition(c: ModelConfig, kv: KvFormatName): number {
  const f = KV_FORMATS[kv];
  const hd = headDim(c);
  return c.nKvHeads * (Math.ceil((hd * f.bits) / 8) + (f.scaled ? 4 : 0));
}

export function kvProblem(c: ModelConfig, kv: string): string | undefined {
  if (!(KV_CODES as readonly string[]).includes(kv)) return `unknown KV format '${kv}': expected ${KV_CODES.join(', ')}`;
  if (kv === 'int3' && headDim(c) % 8 !== 0) return `--kv int3 packs 8 values in 3 bytes: the head size ${headDim(c)} is not a multiple of 8`;
  return undefined;
}

// Scratch a GEMV (one token) asks of the arena, for the largest of the format's device kernels
// (assembly/kernels: ternary lut k*16, tt4 lut 8k, bit-serial planes k, group sums 4*k/block).
export function kernelScratchBytes(f: WeightFormat, k: number): number {
  let worst = 0;
  for (const kv of f.kernels) {
    if (!kv.targets.includes('device')) continue;
    let s = 16;
    if (f.family === 'ternary' && kv.name === 'lut') s = f.name === 'tt4' ? (k / 4) * 32 : k * 16;
    else if (kv.name === 'bitserial') s = k;
    else if (f.family === 'lowbit' || f.family === 'bitmod' || f.family === 'int8') s = 4 * (k / f.block);
    else if (f.family === 'ternary') s = 4;
    worst = Math.max(worst, s);
  }
  return worst;
}

// Which format each tensor gets: norms stay f32; matrices take `quant` (or their source format);
// the token embedding and classifier take `embed`, by default q8_0 under any sub-8-bit format
// (as llama.cpp keeps them at higher precision) and the matrices' format otherwise.
export interface FormatChoice {
  quant?: WeightFormat;
  embed?: WeightFormat;
  source?: Map<string, WeightFormat>; // formats the model file already has
}

// K is padded to whole blocks (layout.ts); M must be a multiple of the row tile.
export function fits(f: WeightFormat, t: { m: number; k: number }): boolean {
  return t.m % (f.rowTile ?? 1) === 0;
}

export function defaultEmbedFormat(quant: WeightFormat): WeightFormat {
  if (quant.name === 'f32' || quant.name === 'q8_0') return quant;
  return formatByName('q8_0')!;
}

export function assignFormats(c: ModelConfig, choice: FormatChoice): Map<string, WeightFormat> {
  const f32 = formatByName('f32')!;
  const out = new Map<string, WeightFormat>();
  for (const t of modelTensors(c)) {
    let f: WeightFormat;
    if (t.role === 'norm') f = f32;
    else if (t.role === 'matrix') f = choice.quant ?? choice.source?.get(t.name) ?? f32;
    else f = choice.embed ?? (choice.quant ? defaultEmbedFormat(choice.quant) : choice.source?.get(t.name) ?? f32);
    if (!fits(f, t)) {
      if (t.role !== 'matrix' && fits(f32, t)) f = t.role === 'norm' || !fits(formatByName('q8_0')!, t) ? f32 : formatByName('q8_0')!;
      else throw new UserError(`format ${f.name} does not fit tensor ${t.name} (${t.m}x${t.k}): M=${t.m} is not a multiple of its row tile ${f.rowTile}`);
    }
    out.set(t.name, f);
  }
  return out;
}

export interface AppFootprint {
  wasmBytes: number;   // the app module (stays in flash; wasm3 compiles it into its heap)
  staticBytes: number; // linear memory below the arena: data segments and the stack (__heap_base)
}

// A measurement of this machine, for the tok/s estimate (host/image/speed.ts).
export interface HostSpeed {
  secondsPerToken: number;  // the model's per-token kernels under wasm3 here
  fibRate: number;          // fib calls per second under wasm3 here
  detail: string;
}

export interface PlanRequest {
  config: ModelConfig;
  ctx: number;
  kv: KvFormatName;
  act: ImageActName;
  formats: Map<string, WeightFormat>;
  board: BoardProfile;
  app: AppFootprint;
  tokenizerBytes: number;
  metadataBytes: number | null;
  signed: boolean;
  speed?: HostSpeed;
}

export type Where = 'linear' | 'heap' | 'flash';
export interface PlanRow {
  item: string;
  where: Where;
  bytes: number;
  note: string;
}

export interface Residency {
  residentLayers: number;
  embedResident: boolean;
  classifierResident: boolean;  // the shared embedding counts as the classifier
}

export interface Plan {
  request: PlanRequest;
  rows: PlanRow[];
  residency: Residency;
  streamedBytesPerToken: number;
  linear: number;
  heap: number;
  image: number;
  limits: { linear: number; heap: number; image: number };
  fits: boolean;
  problems: string[];          // why it does not fit, one per exceeded limit
  tokPerSec?: { value: number; basis: string };
}

const a16 = (x: number) => alignUp(x, 16);

interface Parts {
  staticBytes: number;
  kv: number;
  act: number;
  scratch: number;
  tokIndex: number;
  norms: number;
  layers: number[];            // weight bytes per layer (norms excluded)
  embed: number;
  embedRow: number;
  classifier: number;          // 0 when shared
}

function parts(r: PlanRequest): Parts {
  const c = r.config;
  const specs = modelTensors(c);
  const bytes = (t: TensorSpec) => matrixBytes(r.formats.get(t.name)!, t.m, t.k);
  const kvd = kvDim(c);
  // llama2.c RunState in f32: x, xb, xb2, q (dim each), hb, hb2 (hidden), k, v (kv_dim), att (n_heads*ctx), logits (vocab).
  let act = [c.dim, c.dim, c.dim, c.dim, c.hiddenDim, c.hiddenDim, kvd, kvd, c.nHeads * r.ctx, c.vocabSize].reduce((s, n) => s + a16(4 * n), 0);
  // The quantized activation of one token (i8 or i4 in an i8 each) and its scale.
  if (r.act !== 'f32') act += a16(Math.max(c.dim, c.hiddenDim)) + 16;
  let scratch = 0;
  for (const t of specs) if (t.role !== 'norm') scratch = Math.max(scratch, kernelScratchBytes(r.formats.get(t.name)!, paddedK(r.formats.get(t.name)!, t.k)));
  const layers = new Array(c.nLayers).fill(0);
  let norms = 0, embed = 0, classifier = 0;
  for (const t of specs) {
    if (t.role === 'norm') norms += a16(bytes(t));
    else if (t.layer !== null) layers[t.layer] += a16(bytes(t));
    else if (t.role === 'embedding') embed = a16(bytes(t));
    else classifier = a16(bytes(t));
  }
  const ef = r.formats.get('token_embd')!;
  return {
    staticBytes: a16(r.app.staticBytes), kv: a16(2 * c.nLayers * r.ctx * kvBytesPerPosition(c, r.kv)), act, scratch: a16(scratch),
    tokIndex: a16(8 * c.vocabSize), norms, layers, embed, embedRow: a16(matrixBytes(ef, 1, c.dim)), classifier,
  };
}

function linearFor(p: Parts, c: ModelConfig, res: Residency): { total: number; buffer: number; resident: number } {
  const streamedLayers = p.layers.filter((_, i) => i >= res.residentLayers);
  const maxLayer = Math.max(0, ...p.layers);
  const shared = c.sharedClassifier;
  const clsBytes = shared ? p.embed : p.classifier;
  let buffer = Math.max(0, ...streamedLayers);
  if (!res.classifierResident) buffer = Math.max(buffer, Math.min(clsBytes, maxLayer || clsBytes)); // streamed in row chunks
  const embedNeeded = shared ? res.classifierResident : res.embedResident;
  let resident = p.norms + p.layers.slice(0, res.residentLayers).reduce((s, x) => s + x, 0);
  if (embedNeeded) resident += p.embed;
  if (!shared && res.classifierResident) resident += p.classifier;
  const row = embedNeeded ? 0 : p.embedRow;
  return { total: p.staticBytes + p.kv + p.act + p.scratch + p.tokIndex + resident + buffer + row, buffer, resident };
}

// The residency with the most resident weight bytes that fits linear memory (everything, if it fits).
export function chooseResidency(r: PlanRequest, p: Parts = parts(r)): Residency {
  const c = r.config;
  const all: Residency = { residentLayers: c.nLayers, embedResident: true, classifierResident: true };
  const limit = r.board.memory.linearMemoryMax;
  if (linearFor(p, c, all).total <= limit) return all;
  let best: Residency = { residentLayers: 0, embedResident: false, classifierResident: false };
  let bestResident = -1;
  for (let l = c.nLayers; l >= 0; l--) {
    for (const cls of [true, false]) {
      const res: Residency = { residentLayers: l, embedResident: c.sharedClassifier ? cls : false, classifierResident: cls };
      const f = linearFor(p, c, res);
      if (f.total <= limit && f.resident > bestResident) {
        best = res;
        bestResident = f.resident;
      }
    }
  }
  return best;
}

export function planMemory(r: PlanRequest, residency?: Residency): Plan {
  const c = r.config;
  const p = parts(r);
  const res = residency ?? chooseResidency(r, p);
  const lin = linearFor(p, c, res);
  const shared = c.sharedClassifier;
  const rows: PlanRow[] = [];
  const row = (item: string, where: Where, bytes: number, note: string) => rows.push({ item, where, bytes, note });

  row('app static data', 'linear', p.staticBytes, 'data segments below the arena (__heap_base)');
  const embedNeeded = shared ? res.classifierResident : res.embedResident;
  row('token embedding', embedNeeded ? 'linear' : 'flash', embedNeeded ? p.embed : p.embedRow,
    `${r.formats.get('token_embd')!.name} ${c.vocabSize}x${c.dim}` + (embedNeeded ? ', resident' : ', in flash: one row read per token') + (shared ? ', shared with the classifier' : ''));
  row('norm weights', 'linear', p.norms, `f32, ${2 * c.nLayers + 1} vectors of ${c.dim}`);
  let streamed = 0;
  for (let l = 0; l < c.nLayers; l++) {
    const fmts = [...new Set(modelTensors(c).filter((t) => t.layer === l && t.role === 'matrix').map((t) => r.formats.get(t.name)!.name))].join('+');
    const resident = l < res.residentLayers;
    if (!resident) streamed += p.layers[l];
    row(`layer ${l} weights`, resident ? 'linear' : 'flash', p.layers[l], `${fmts}, ${resident ? 'resident' : 'streamed from flash each token'}`);
  }
  if (!shared) {
    row('classifier', res.classifierResident ? 'linear' : 'flash', p.classifier,
      `${r.formats.get('output')!.name} ${c.vocabSize}x${c.dim}, ${res.classifierResident ? 'resident' : 'streamed from flash each token'}`);
    if (!res.classifierResident) streamed += p.classifier;
  } else if (!res.classifierResident) {
    streamed += p.embed;
  }
  if (!embedNeeded) streamed += p.embedRow;
  if (lin.buffer > 0) row('stream buffer', 'linear', lin.buffer, 'holds one streamed layer (or a chunk of the classifier)');
  row('KV cache', 'linear', p.kv, `${r.kv}, ${c.nLayers} layers x ${r.ctx} positions x ${kvDim(c)} x 2 (K, V)${KV_FORMATS[r.kv].scaled ? ', f32 scale per head' : ''}`);
  row('activations', 'linear', p.act, `f32 run state (x, xb, xb2, q, hb, hb2, k, v, att ${c.nHeads}x${r.ctx}, logits ${c.vocabSize})${r.act !== 'f32' ? ` + ${r.act} copy` : ''}`);
  row('kernel scratch', 'linear', p.scratch, 'the largest GEMV scratch of the formats used');
  row('tokenizer index', 'linear', p.tokIndex, `${c.vocabSize} x (offset, sorted id); strings and scores stay in flash`);
  const code = Math.round(r.board.wasm3.codePerWasmByte * r.app.wasmBytes);
  row('wasm3 runtime + code', 'heap', r.board.wasm3.runtime + code, `${r.app.wasmBytes} B module compiled at ~${r.board.wasm3.codePerWasmByte}x`);
  row('wasm3 stack', 'heap', r.board.wasm3.stack, 'the interpreter value stack');
  row('native stack', 'heap', r.board.wasm3.nativeStack, 'the task running wasm3');

  const specs = modelTensors(c);
  const layout = layoutImage({
    app: r.app.wasmBytes, tokenizer: r.tokenizerBytes,
    tensors: specs.map((t) => matrixBytes(r.formats.get(t.name)!, t.m, t.k)), metadata: r.metadataBytes, signed: r.signed,
  });
  const heap = rows.filter((x) => x.where === 'heap').reduce((s, x) => s + x.bytes, 0);
  const limits = { linear: r.board.memory.linearMemoryMax, heap: r.board.memory.otherHeap, image: r.board.imageCapacity };
  const problems: string[] = [];
  if (lin.total > limits.linear) problems.push(`linear memory ${fmtBytes(lin.total)} > ${fmtBytes(limits.linear)} (the largest block ${r.board.name} can give wasm3)`);
  if (heap > limits.heap) problems.push(`wasm3 heap ${fmtBytes(heap)} > ${fmtBytes(limits.heap)} left beside linear memory on ${r.board.name}`);
  if (layout.totalSize > limits.image) problems.push(`image ${fmtBytes(layout.totalSize)} > ${fmtBytes(limits.image)} (${r.board.flash.imagePartition ? `partition '${r.board.flash.imagePartition}'` : 'the image size limit'})`);
  const plan: Plan = {
    request: r, rows, residency: res, streamedBytesPerToken: streamed, linear: lin.total, heap, image: layout.totalSize, limits,
    fits: problems.length === 0, problems,
  };
  if (r.speed) plan.tokPerSec = estimateTokPerSec(plan, r.speed);
  return plan;
}

// fib(n) makes 2*fib(n+1)-1 calls.
export function fibCalls(n: number): number {
  let a = 0, b = 1;
  for (let i = 0; i < n + 1; i++) [a, b] = [b, a + b];
  return 2 * a - 1;
}

// Board time per token = this machine's wasm3 time x (this machine's fib rate / the board's), plus
// the streamed bytes over the board's flash read rate. An estimate: fib is call-bound, the kernels
// are loop-bound, and PSRAM or flash caches are not modelled.
export function estimateTokPerSec(plan: Plan, s: HostSpeed): { value: number; basis: string } {
  const b = plan.request.board;
  const sp = b.speed;
  let ratio = 1;
  let basis = `measured under wasm3 on this machine (${s.detail})`;
  if (sp.fibN > 0) {
    const boardRate = fibCalls(sp.fibN) / sp.fibSeconds;
    ratio = s.fibRate / boardRate;
    basis = `estimate: wasm3 time of this model's kernels here (${s.detail}) x ${ratio.toFixed(1)}, the ratio of wasm3 fib(n) call rates here and on ${b.name} (${sp.basis})`;
  }
  const compute = s.secondsPerToken * ratio;
  const stream = plan.streamedBytesPerToken / b.flash.readBytesPerSecond;
  if (plan.streamedBytesPerToken > 0) basis += `; plus ${fmtBytes(plan.streamedBytesPerToken)} a token from flash at ${(b.flash.readBytesPerSecond / 1e6).toFixed(0)} MB/s (${b.flash.readBasis})`;
  return { value: 1 / (compute + stream), basis };
}

// The largest context that fits, or 0 when even one position does not.
export function largestContext(r: PlanRequest): number {
  const ok = (ctx: number) => planMemory({ ...r, ctx, speed: undefined }).fits;
  if (!ok(1)) return 0;
  let lo = 1, hi = r.config.seqLen;
  if (ok(hi)) return hi;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (ok(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}

export interface Alternative {
  quant: string;
  kv: KvFormatName;
  linear: number;
  image: number;
}

// Matrix formats (with a reference quantizer, so pack can produce them) and KV formats that would fit.
export function alternativesThatFit(r: PlanRequest): Alternative[] {
  const out: Alternative[] = [];
  for (const f of FORMATS.filter((x) => !x.retired && REFS[x.name])) {
    for (const kv of KV_CODES) {
      if (kvProblem(r.config, kv)) continue;
      let formats: Map<string, WeightFormat>;
      try {
        formats = assignFormats(r.config, { quant: f });
      } catch {
        continue;
      }
      const p = planMemory({ ...r, kv, formats, speed: undefined });
      if (p.fits) out.push({ quant: f.name, kv, linear: p.linear, image: p.image });
    }
  }
  return out;
}

export function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(2)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

// The table `plan` and `pack` print (stdout), with totals against the limits and a verdict.
export function formatPlan(plan: Plan, extra: { largestCtx?: number; alternatives?: Alternative[] } = {}): string {
  const r = plan.request;
  const c = r.config;
  const lines: string[] = [];
  lines.push(`board ${r.board.name}: ${r.board.title}`);
  lines.push(`model dim ${c.dim}, hidden ${c.hiddenDim}, ${c.nLayers} layers, ${c.nHeads} heads (${c.nKvHeads} KV), vocab ${c.vocabSize}, ctx ${r.ctx} of ${c.seqLen}, KV ${r.kv}, activations ${r.act}`);
  lines.push('');
  const w = Math.max(...plan.rows.map((x) => x.item.length), 24);
  lines.push(`${'item'.padEnd(w)}  ${'where'.padEnd(6)}  ${'bytes'.padStart(11)}  note`);
  for (const x of plan.rows) lines.push(`${x.item.padEnd(w)}  ${x.where.padEnd(6)}  ${fmtBytes(x.bytes).padStart(11)}  ${x.note}`);
  lines.push('');
  const mark = (v: number, lim: number) => (v <= lim ? 'ok' : 'OVER');
  lines.push(`${'linear memory total'.padEnd(w)}  ${fmtBytes(plan.linear).padStart(19)} of ${fmtBytes(plan.limits.linear).padEnd(10)} ${mark(plan.linear, plan.limits.linear)}`);
  lines.push(`${'wasm3 heap total'.padEnd(w)}  ${fmtBytes(plan.heap).padStart(19)} of ${fmtBytes(plan.limits.heap).padEnd(10)} ${mark(plan.heap, plan.limits.heap)}`);
  lines.push(`${'image (flash)'.padEnd(w)}  ${fmtBytes(plan.image).padStart(19)} of ${fmtBytes(plan.limits.image).padEnd(10)} ${mark(plan.image, plan.limits.image)}`);
  lines.push(`${'streamed per token'.padEnd(w)}  ${fmtBytes(plan.streamedBytesPerToken).padStart(19)}`);
  lines.push('');
  if (plan.fits) {
    const res = plan.residency;
    const how = res.residentLayers === c.nLayers && res.classifierResident && (c.sharedClassifier || res.embedResident)
      ? 'all weights resident' : `${res.residentLayers} of ${c.nLayers} layers resident, the rest streamed from flash`;
    lines.push(`verdict: FITS on ${r.board.name} (${how})`);
  } else {
    lines.push(`verdict: DOES NOT FIT on ${r.board.name}: ${plan.problems.join('; ')}`);
    if (extra.largestCtx !== undefined) {
      lines.push(extra.largestCtx > 0 ? `  largest context that fits: ${extra.largestCtx} (--ctx ${extra.largestCtx})` : '  no context fits with these formats');
    }
    if (extra.alternatives) {
      if (extra.alternatives.length === 0) lines.push('  no weight format and KV format of the table fits at this context');
      else {
        const byQuant = new Map<string, string[]>();
        for (const a of extra.alternatives) byQuant.set(a.quant, [...(byQuant.get(a.quant) ?? []), a.kv]);
        lines.push(`  formats that fit at ctx ${r.ctx}: ${[...byQuant].map(([q, kvs]) => `--quant ${q} (--kv ${kvs.join('|')})`).join(', ')}`);
      }
    }
  }
  if (plan.tokPerSec) lines.push(`estimated speed: ~${fmtRate(plan.tokPerSec.value)} tok/s on ${r.board.name} (${plan.tokPerSec.basis})`);
  return lines.join('\n');
}

function fmtRate(x: number): string {
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toPrecision(2);
}

export function planJson(plan: Plan, extra: { largestCtx?: number; alternatives?: Alternative[] } = {}): Record<string, unknown> {
  const r = plan.request;
  return {
    board: r.board.name, ctx: r.ctx, kv: r.kv, act: r.act,
    config: r.config, formats: Object.fromEntries([...r.formats].map(([k, f]) => [k, f.name])),
    rows: plan.rows, residency: plan.residency, streamedBytesPerToken: plan.streamedBytesPerToken,
    totals: { linear: plan.linear, heap: plan.heap, image: plan.image }, limits: plan.limits,
    fits: plan.fits, problems: plan.problems, ...extra,
    tokPerSec: plan.tokPerSec ? { estimate: plan.tokPerSec.value, basis: plan.tokPerSec.basis } : null,
  };
}
