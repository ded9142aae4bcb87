// `edge-flash quantize` as a library: a float model in, GGUF bytes and a summary out.
// Options -> a scheme per matrix (rtn.ts, bitmod.ts, ternary.ts) -> the method's codes (rtn, or gptq
// block by block over calibration windows, with each block's inputs from the already quantized
// blocks before it) -> GGUF (standard ggml types where the result is one, else extension types).
import cliProgress from 'cli-progress';
import { UserError } from '../errors.ts';
import { f16ToF32, f32ToF16 } from '../formats/bytes.ts';
import { EF_TYPE_BASE, GGML, GGUF_MATRIX_NAMES, quantizeGgml, writeGgufTensors, type GgufTensor } from '../formats/gguf.ts';
import { MATRIX_NAMES, matrixShape, type Model } from '../model/model.ts';
import { dequantize } from '../model/quantize.ts';
import { bitmodScheme } from './bitmod.ts';
import { blockForward, calibWindows, hessian, type DenseBlock, type Stage } from './calib.ts';
import { gptq } from './gptq.ts';
import { intScheme, q4_0Scheme, q8_0Scheme, rtn } from './rtn.ts';
import { dequantResult, type QuantResult, type Scheme } from './scheme.ts';
import { BlockPool, defaultThreads } from './block-pool.ts';
import { tesseraqBlock, type TesseraqOptions, type WName } from './tesseraq.ts';
import { ternaryScheme, TERNARY_NAMES } from './ternary.ts';

export const METHODS = ['ternary', 'rtn', 'bitmod', 'gptq', 'tesseraq'] as const;
export type Method = (typeof METHODS)[number];

export interface QuantizeOptions {
  method: Method; bits?: number; group?: number; sym?: boolean; format?: string;
  calib?: string; calibTokens?: number; window?: number; seed?: number; actOrder?: boolean; damp?: number;
  keep?: string[]; // tensor groups kept in f32 (default: embedding, classifier)
  init?: 'rtn' | 'gptq'; tesseraq?: TesseraqOptions; // tesseraq's initialisation and its schedule
  threads?: number; // tesseraq: threads over the calibration windows (default: the cores, at most one per window)
}

export interface GroupSummary { group: string; format: string; tensors: number; params: number; bits_per_weight: number; rel_error: number }
export interface BlockLoss { block: number; init_loss: number; loss: number; kept_init: boolean }
// A tensor that the ggml format cannot hold (its rows are not a multiple of the block), stored as F16
// instead, as llama.cpp's quantize falls back: named in the summary and, by the CLI, in a warning.
export interface Fallback { tensor: string; cols: number; format: string; block: number; type: 'F16' }
export interface QuantizeSummary { method: string; format: string; calibration: string | null; groups: GroupSummary[]; bytes: number; seconds: number; blocks?: BlockLoss[]; fallbacks: Fallback[] }

// The target of a method, as a factory (ternary scales are per tensor, so a scheme is made per matrix).
type SchemeFor = (w: Float32Array, k: number) => Scheme;

export function targetScheme(o: QuantizeOptions): { name: string; make: SchemeFor; group: number } {
  const bits = o.bits, fmt = o.format?.toLowerCase();
  if (o.method === 'ternary' || (fmt && (TERNARY_NAMES as readonly string[]).includes(fmt))) {
    if (o.method !== 'ternary' && o.method !== 'gptq') throw new UserError(`--format ${fmt} is ternary: use --method ternary or gptq (tesseraq tunes i<b>g<G>)`);
    if (bits !== undefined) throw new UserError(`--bits does not apply to ternary (1.58 bits)`);
    const name = fmt ?? 'tq2';
    if (!(TERNARY_NAMES as readonly string[]).includes(name)) throw new UserError(`--method ternary writes ${TERNARY_NAMES.join(', ')}, not ${name}`);
    const group = name.endsWith('_0') ? 256 : 64;
    return { name, group, make: (w, k) => ternaryScheme(name, w, k) };
  }
  if (fmt === 'q4_0' || fmt === 'q8_0') {
    const b = fmt === 'q4_0' ? 4 : 8;
    if (o.method !== 'rtn' && o.method !== 'gptq') throw new UserError(`--format ${fmt} is an integer format: use --method rtn or gptq (tesseraq tunes i<b>g<G>)`);
    if ((bits !== undefined && bits !== b) || (o.group !== undefined && o.group !== 32)) throw new UserError(`--format ${fmt} is ${b}-bit in groups of 32`);
    const s = fmt === 'q4_0' ? q4_0Scheme() : q8_0Scheme();
    return { name: fmt, group: 32, make: () => s };
  }
  const bitmod = o.method === 'bitmod' || fmt?.startsWith('bmd');
  const m = fmt ? /^(i|bmd)(\d)g(\d+)$/.exec(fmt) : null;
  if (fmt && !m) throw new UserError(`unknown --format ${fmt}: expected i<bits>g<group>, bmd<bits>g<group>, q4_0, q8_0, ${TERNARY_NAMES.join(', ')}`);
  if (m && (bits !== undefined && Number(m[2]) !== bits || o.group !== undefined && Number(m[3]) !== o.group)) throw new UserError(`--format ${fmt} disagrees with --bits / --group`);
  const b = m ? Number(m[2]) : bits ?? (bitmod ? 4 : 4);
  const group = m ? Number(m[3]) : o.group ?? (bitmod ? 128 : 32);
  if (bitmod) {
    if (o.method === 'tesseraq') throw new UserError(`--method tesseraq tunes integer groups (i<b>g<G>), not ${fmt}`);
    if (o.method !== 'bitmod' && o.method !== 'gptq') throw new UserError(`--format ${fmt} is BitMoD: use --method bitmod or gptq (tesseraq tunes i<b>g<G>)`);
    if (b !== 3 && b !== 4) throw new UserError(`BitMoD has 3- and 4-bit datatypes, not ${b}`);
    if (![32, 64, 128].includes(group)) throw new UserError(`BitMoD groups of ${group}: expected 32, 64 or 128`);
    if (o.sym) throw new UserError(`--sym does not apply to BitMoD`);
    const s = bitmodScheme(b, group);
    return { name: s.name, group, make: () => s };
  }
  if (o.method !== 'rtn' && o.method !== 'gptq' && o.method !== 'tesseraq') throw new UserError(`--method ${o.method} does not write ${fmt}`);
  if (![2, 3, 4].includes(b)) throw new UserError(`--bits ${b}: integer groups are 2, 3 or 4 bits (8: --format q8_0)`);
  if (![32, 64, 128].includes(group)) throw new UserError(`--group ${group}: expected 32, 64 or 128`);
  const s = intScheme(b, group, !!o.sym);
  if (o.method === 'tesseraq' && o.init && o.init !== 'rtn' && o.init !== 'gptq') throw new UserError(`--init ${o.init}: expected rtn or gptq`);
  return { name: s.name + (o.sym ? ' sym' : ''), group, make: () => s };
}

// What --group would divide every quantized row (of widths `cols`), for the error that says it does not.
function groupHint(o: QuantizeOptions, cols: number[]): string {
  const narrowest = cols.reduce((a, b) => Math.min(a, b), Infinity);
  const fits = [128, 64, 32].filter((g) => g <= narrowest);
  if (o.format) {
    const m = /^(i|bmd)(\d)g\d+$/.exec(o.format.toLowerCase());
    if (m && fits.length) return `the narrowest row is ${narrowest} weights: --format ${m[1]}${m[2]}g${fits[0]} fits`;
  }
  return fits.length ? `the narrowest row is ${narrowest} weights: --group ${fits[0]}${fits.length > 1 ? ` (or ${fits.slice(1).join(', ')})` : ''} fits` : `the narrowest row is ${narrowest} weights, under the smallest group (32): keep that tensor in f32 with --keep`;
}

const isGgmlStandard = (s: Scheme) => ['q4_0', 'q8_0', 'tq2_0', 'tq1_0'].includes(s.name);

interface Job { key: string; group: string; gguf: string; rows: number; cols: number; w: Float32Array }

// values: every quantized matrix's (rows, cols) values as the scheme decodes them, by GGUF name.
// onBlock: blocks done (fractional inside a TesseraQ block, after each hardening step).
export function quantizeModel(model: Model, o: QuantizeOptions, onBlock?: (done: number, total: number) => void): { bytes: Uint8Array; summary: QuantizeSummary; values: Map<string, Float64Array> } {
  const t0 = performance.now();
  const c = model.config;
  if (!(METHODS as readonly string[]).includes(o.method)) throw new UserError(`unknown --method ${o.method}: expected ${METHODS.join(', ')}`);
  const tgt = targetScheme(o);
  const all = [['embedding', model.embedding, c.vocabSize, c.dim], ...(model.classifier ? [['classifier', model.classifier, c.vocabSize, c.dim]] : []),
    ...model.layers.flatMap((l, i) => MATRIX_NAMES.map((n) => [`layers.${i}.${n}`, l[n], ...matrixShape(c, n)]))] as Array<[string, Model['embedding'], number, number]>;
  const quantized = all.find(([n, t]) => t.format.name !== 'f32' && (n.startsWith('layers') || !(o.keep ?? ['embedding', 'classifier']).includes(n)));
  if (quantized) throw new UserError(`${model.path} is already quantized (${quantized[0]} is ${quantized[1].format.name}): quantize a float model`);
  // the writer's llama.* values are llama2.c's (f32 metadata: a GGUF input's eps reads back as
  // fround(1e-5), which is what the writer writes); say so before any work rather than write a different model
  if (model.ropeTheta !== 10000 || Math.fround(model.normEps) !== Math.fround(1e-5)) {
    throw new UserError(`${model.path}: rope theta ${model.ropeTheta} / norm eps ${model.normEps}: the GGUF writer writes llama2.c's 10000 / 1e-5 only`);
  }
  const keep = new Set(o.keep ?? ['embedding', 'classifier']);
  const kept = (key: string) => keep.has(key) || keep.has(key.replace(/^layers\.\d+\./, ''));
  const jobs: Job[] = [];
  const f32 = (name: string, t: Model['embedding'], rows: number, cols: number) => dequantize(t, rows, cols);
  jobs.push({ key: 'embedding', group: 'embedding', gguf: 'token_embd.weight', rows: c.vocabSize, cols: c.dim, w: f32('embedding', model.embedding, c.vocabSize, c.dim) });
  model.layers.forEach((l, i) => MATRIX_NAMES.forEach((n) => {
    const [rows, cols] = matrixShape(c, n);
    jobs.push({ key: `layers.${i}.${n}`, group: n, gguf: `blk.${i}.${GGUF_MATRIX_NAMES[n]}.weight`, rows, cols, w: f32(n, l[n], rows, cols) });
  }));
  if (model.classifier) jobs.push({ key: 'classifier', group: 'classifier', gguf: 'output.weight', rows: c.vocabSize, cols: c.dim, w: f32('classifier', model.classifier, c.vocabSize, c.dim) });
  const fallbacks: Fallback[] = [];
  const fallback = new Set<string>();
  for (const j of jobs) {
    if (kept(j.key)) continue;
    const s = tgt.make(j.w, j.cols);
    if (isGgmlStandard(s) && j.cols % tgt.group !== 0) {
      fallback.add(j.key);
      fallbacks.push({ tensor: j.gguf, cols: j.cols, format: tgt.name, block: tgt.group, type: 'F16' });
    } else if (!isGgmlStandard(s) && tgt.group > j.cols && s.group !== j.cols) {
      throw new UserError(`${tgt.name}: groups of ${tgt.group} do not divide the rows of ${j.key} (${j.cols} weights)`, groupHint(o, jobs.filter((x) => !kept(x.key)).map((x) => x.cols)));
    }
  }
  const padded = (j: Job, g: number) => {
    const k = Math.ceil(j.cols / g) * g;
    if (k === j.cols) return { w: j.w, k };
    const w = new Float32Array(j.rows * k);
    for (let r = 0; r < j.rows; r++) w.set(j.w.subarray(r * j.cols, (r + 1) * j.cols), r * k);
    return { w, k };
  };
  const results = new Map<string, { s: Scheme; r: QuantResult }>();
  const quantOne = (j: Job, H?: Float64Array) => {
    if (fallback.has(j.key)) return Float64Array.from(j.w, (x) => f16ToF32(f32ToF16(x)));
    const s0 = tgt.make(j.w, j.cols);
    const block = s0.group === j.cols ? (tgt.group) : s0.group; // per-tensor schemes pad to the format's block
    const { w, k } = padded(j, block);
    const s = s0.group === j.cols ? tgt.make(j.w, k) : s0;
    let r: QuantResult;
    if (H) {
      let Hk = H;
      if (k !== j.cols) { // padded columns: zero inputs
        Hk = new Float64Array(k * k);
        for (let a = 0; a < j.cols; a++) for (let b = 0; b < j.cols; b++) Hk[a * k + b] = H[a * j.cols + b];
      }
      r = gptq(s, w, j.rows, k, Hk, { actOrder: o.actOrder, damp: o.damp });
    } else r = rtn(s, w, j.rows, k);
    results.set(j.key, { s, r });
    return dequantResult(s, r, j.rows, j.cols);
  };
  let calibration: string | null = null;
  const total = c.nLayers;
  const blocks: BlockLoss[] = [];
  if (o.method === 'gptq' || o.method === 'tesseraq') {
    const window = Math.min(o.window ?? 128, c.seqLen);
    const { windows, source } = calibWindows(model, { file: o.calib, tokens: o.calibTokens ?? (o.method === 'tesseraq' ? 256 : 1024), window, seed: o.seed ?? 1 });
    calibration = `${windows.length} x ${window} tokens, ${source}`;
    const emb = jobs[0].w;
    const hs = windows.map((win) => { const h = new Float64Array(win.length * c.dim); win.forEach((t, i) => { for (let d = 0; d < c.dim; d++) h[i * c.dim + d] = emb[t * c.dim + d]; }); return h; });
    const pool = o.method === 'tesseraq' ? new BlockPool(o.threads ?? defaultThreads(windows.length)) : null;
    try {
      for (let l = 0; l < c.nLayers; l++) {
        const job = (n: string) => jobs.find((j) => j.key === `layers.${l}.${n}`)!;
        const B = { rmsAtt: Float64Array.from(model.layers[l].rmsAtt), rmsFfn: Float64Array.from(model.layers[l].rmsFfn) } as DenseBlock;
        for (const n of MATRIX_NAMES) B[n] = Float64Array.from(job(n).w);
        const stages: Record<Stage, Array<(typeof MATRIX_NAMES)[number]>> = { qkv: ['wq', 'wk', 'wv'], wo: ['wo'], w13: ['w1', 'w3'], w2: ['w2'] };
        const gptqInit = o.method === 'gptq' || (o.init ?? 'rtn') === 'gptq';
        if (o.method === 'tesseraq') {
          // targets: the float block on the same (quantized-path) inputs; then the init; then reconstruction
          const fp = { ...B };
          const xs = hs.map((h) => Float64Array.from(h));
          const ys = hs.map((h) => Float64Array.from(h));
          blockForward(model, fp, ys);
          const Bi = { ...B };
          blockForward(model, Bi, hs.map((h) => Float64Array.from(h)), (stage, xin) => {
            const names = stages[stage].filter((n) => !kept(`layers.${l}.${n}`));
            if (!names.length) return;
            const H = gptqInit ? hessian(xin, job(names[0]).cols) : undefined;
            for (const n of names) Bi[n] = quantOne(job(n), H);
          });
          const W = {} as Record<WName, { w: Float32Array; rows: number; cols: number }>;
          const init = new Map<WName, { s: Scheme; r: QuantResult }>();
          for (const n of MATRIX_NAMES) {
            const j = job(n);
            W[n] = { w: j.w, rows: j.rows, cols: j.cols };
            const res = results.get(j.key);
            if (res) init.set(n, res);
          }
          const out = tesseraqBlock({ c, eps: model.normEps, theta: model.ropeTheta }, { ...B }, W, init, xs, ys, { ...o.tesseraq, pool: pool!, onProgress: (f) => onBlock?.(l + f, total) });
          for (const [n, res] of out.results) { results.set(job(n).key, res); B[n] = dequantResult(res.s, res.r, job(n).rows, job(n).cols); }
          blocks.push({ block: l, init_loss: out.initLoss, loss: out.loss, kept_init: out.kept });
          blockForward(model, B, hs);
        } else {
          blockForward(model, B, hs, (stage, xs) => {
            const names = stages[stage].filter((n) => !kept(`layers.${l}.${n}`));
            if (!names.length) return;
            const H = hessian(xs, job(names[0]).cols);
            for (const n of names) B[n] = quantOne(job(n), H);
          });
        }
        onBlock?.(l + 1, total);
      }
    } finally {
      pool?.close();
    }
  } else {
    for (let l = 0; l < c.nLayers; l++) {
      for (const n of MATRIX_NAMES) if (!kept(`layers.${l}.${n}`)) quantOne(jobs.find((j) => j.key === `layers.${l}.${n}`)!);
      onBlock?.(l + 1, total);
    }
  }
  for (const j of jobs) if (!j.key.startsWith('layers') && !kept(j.key)) quantOne(j); // embedding / classifier: round to nearest
  // tensors, in writeGguf's order, and the summary
  const tensors: GgufTensor[] = [];
  const extraMeta: Array<[string, number, string | number]> = [
    ['edge_flash.quantize.method', 8, o.method], ['edge_flash.quantize.format', 8, tgt.name], ['edge_flash.type_base', 4, EF_TYPE_BASE],
  ];
  const groups = new Map<string, { format: string; tensors: number; params: number; bytes: number; se: number; ss: number }>();
  const vec = (name: string, v: Float32Array) => tensors.push({ name, ne: [v.length], type: GGML.F32, bytes: new Uint8Array(Float32Array.from(v).buffer) });
  const addGroup = (g: string, format: string, params: number, bytes: number, se: number, ss: number) => {
    const e = groups.get(g) ?? { format, tensors: 0, params: 0, bytes: 0, se: 0, ss: 0 };
    e.tensors++; e.params += params; e.bytes += bytes; e.se += se; e.ss += ss;
    groups.set(g, e);
  };
  const values = new Map<string, Float64Array>();
  const mat = (j: Job) => {
    const res = results.get(j.key);
    if (fallback.has(j.key)) {
      const bytes = quantizeGgml(GGML.F16, j.w);
      tensors.push({ name: j.gguf, ne: [j.cols, j.rows], type: GGML.F16, bytes });
      let se = 0, ss = 0;
      for (let i = 0; i < j.w.length; i++) { se += (f16ToF32(f32ToF16(j.w[i])) - j.w[i]) ** 2; ss += j.w[i] ** 2; }
      addGroup(j.group, 'f16', j.w.length, bytes.length, se, ss);
      return;
    }
    if (!res) {
      tensors.push({ name: j.gguf, ne: [j.cols, j.rows], type: GGML.F32, bytes: new Uint8Array(Float32Array.from(j.w).buffer) });
      addGroup(j.group, 'f32', j.w.length, j.w.length * 4, 0, 1);
      return;
    }
    const enc = res.s.encode(res.r.codes, res.r.params, j.rows, res.r.k);
    tensors.push({ name: j.gguf, ne: [enc.k, j.rows], type: enc.type, bytes: enc.bytes });
    if (enc.format) extraMeta.push([`edge_flash.tensor.${j.gguf}.format`, 8, enc.format.name]);
    if (enc.scale !== undefined) extraMeta.push([`edge_flash.tensor.${j.gguf}.scale`, 6, enc.scale]);
    const dq = dequantResult(res.s, res.r, j.rows, j.cols);
    values.set(j.gguf, dq);
    let se = 0, ss = 0;
    for (let i = 0; i < dq.length; i++) { se += (dq[i] - j.w[i]) ** 2; ss += j.w[i] ** 2; }
    addGroup(j.group, res.s.name, j.w.length, enc.bytes.length, se, ss);
  };
  mat(jobs[0]);
  model.layers.forEach((l, i) => {
    vec(`blk.${i}.attn_norm.weight`, l.rmsAtt);
    vec(`blk.${i}.ffn_norm.weight`, l.rmsFfn);
    for (const n of MATRIX_NAMES) mat(jobs.find((j) => j.key === `layers.${i}.${n}`)!);
  });
  vec('output_norm.weight', model.rmsFinal);
  addGroup('norms', 'f32', c.dim * (2 * c.nLayers + 1), 4 * c.dim * (2 * c.nLayers + 1), 0, 1);
  if (model.classifier) mat(jobs[jobs.length - 1]);
  const bytes = writeGgufTensors(c, tensors, { tokenizer: model.tokenizer, extraMeta: extraMeta as never });
  const summary: QuantizeSummary = {
    method: o.method, format: tgt.name, calibration,
    groups: [...groups].map(([g, e]) => ({ group: g, format: e.format, tensors: e.tensors, params: e.params, bits_per_weight: (e.bytes * 8) / e.params, rel_error: Math.sqrt(e.se / e.ss) })),
    bytes: bytes.length, seconds: (performance.now() - t0) / 1000,
    ...(o.method === 'tesseraq' ? { blocks } : {}),
    fallbacks,
  };
  return { bytes, summary, values };
}

// A progress bar over blocks with an ETA (stderr, terminals only); done may be fractional.
export function blockBar(total: number, title: string, enabled = process.stderr.isTTY): { tick(done: number): void; done(): void } {
  if (!enabled) return { tick() {}, done() {} };
  const SUB = 100; // bar units per block; shown as the block under way
  const formatValue = (v: number, _o: unknown, type: string) => String(type === 'total' ? v / SUB : type === 'value' ? Math.min(total, Math.floor(v / SUB) + 1) : v);
  const bar = new cliProgress.SingleBar({ stream: process.stderr, format: `${title} [{bar}] block {value}/{total} ETA {eta_formatted}`, formatValue, hideCursor: true, clearOnComplete: true, etaBuffer: 8 }, cliProgress.Presets.shades_classic);
  bar.start(total * SUB, 0);
  return { tick: (d) => bar.update(Math.round(d * SUB)), done: () => bar.stop() };
}
