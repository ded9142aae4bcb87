// The planner's choice of formats and context for a board when the user names none (or only some):
// quality first, then speed. The rule (docs/planner.md, with the measurements behind it):
//   1. Weights the model already has in a form the board runs exactly stay exact: ternary-trained
//      weights (every layer matrix holds 0 and +-one scale; TQ1_0/TQ2_0 GGUF tensors) go to tb1, the
//      ternary layout the device kernels read fastest, losslessly; an integer GGUF format is kept.
//   2. Otherwise each candidate (layer format, KV format) costs the sum of its measured quality costs
//      (QUALITY below: the log perplexity ratio `eval --ref` measured on a float model of the demo's
//      shape), costs under LOSSLESS counting as none. The cheapest candidate that fits at a usable
//      context (MIN_CTX, or the --ctx asked for) wins: KV precision is not traded for context, so int8
//      KV at a shorter context beats int4 at a longer one unless --ctx asks for the longer one.
//   3. Among equal costs: the larger context, then fewer bytes streamed a token, then the smaller image,
//      then the smaller linear memory (speed on a board is mostly memory and flash reads).
//   4. The context is the largest that fits (up to the model's seq_len), or the --ctx named. When no
//      candidate reaches MIN_CTX, the one reaching the longest context is taken, down to FLOOR_CTX;
//      below that nothing is chosen and pack refuses with the plan's table.
// A format or context the user names is kept; the rest is chosen around it.
import { headDim } from '../model/config.ts';
import { KV_FORMATS, type KvFormat } from '../model/kv.ts';
import { MATRIX_NAMES, matrixShape, type Matrix, type Model } from '../model/model.ts';
import { dequantize } from '../model/quantize.ts';
import { formatByName, runsOn, type WeightFormat } from '../quant/formats.ts';
import { REFS } from '../quant/ref/index.ts';
import type { ImageChoices } from './options.ts';
import { convertModel, deviceApp, planRequest } from './pack.ts';
import { largestContext, planBoard, reshapedModel, withContext, type BoardPlan, type BoardPlanRequest, type Engine } from './plan.ts';

// Measured quality cost, ln(PPL / PPL of the same model in f32 with f32 KV), `eval --ref` on the first
// 20,000 bytes of the demo corpus' validation split (tools/eval/texts.sh) at ctx 512, on
// models/kjv-esp32-260k-fp (the demo's float twin: the stories260K shape, dim 64, 5 layers, trained in
// float32), the case of a bring-your-own float model. The commands are in docs/planner.md.
export const QUALITY = {
  basis: 'eval --ref on models/kjv-esp32-260k-fp (a stories260K-shaped float32 model), val20k, ctx 512 (docs/planner.md)',
  refPpl: 10.517,
  weights: { f32: 0, q8_0: 0.0050, i4g32: 0.2500, i4g128: 0.3033, i3g32: 1.1853, i2g32: 4.9823, tb1: 6.9589 } as Record<string, number>,
  kv: { f32: 0, int8: 0.0022, int4: 1.1020, int3: 2.5158 } as Record<string, number>,
  // the same KV measurement on models/kjv-esp32-260k (ternary-trained, tb1; f32 KV PPL 12.41): a model
  // trained ternary loses far less to a low-bit KV cache than a float one (docs/planner.md)
  kvTernaryBasis: 'eval --ref on models/kjv-esp32-260k (ternary-trained, tb1), val20k, ctx 512 (docs/planner.md)',
  kvTernary: { f32: 0, int8: 0, int4: 0.0286, int3: 0.2021 } as Record<string, number>,
};
// Below this (1 % perplexity) a cost is counted as none: q8_0 weights and int8 KV measure 0.2-0.6 %
// at ctx 128 and 512, the next candidates 2.3 % (int4 KV of a ternary-trained model) and more.
export const LOSSLESS = 0.01;
// The shortest context the automatic choice settles for before it gives up precision: a prompt and a
// few sentences of reply (the demo's scripted reply is 96 positions).
export const MIN_CTX = 128;
// Below this no choice is made (a prompt alone needs more): the refusal lists what fits instead.
export const FLOOR_CTX = 32;

export interface Wanted {
  quant?: WeightFormat;
  kv?: KvFormat;
  ctx?: number;
}

export interface Choice {
  quant: WeightFormat;
  kv: KvFormat;
  ctx: number;
  cost: number;               // ln PPL ratio the rule counts (0: lossless)
  plan: BoardPlan;            // the plan of the choice (zero weights of the chosen formats: sizes only)
  reason: string;             // one line: what was chosen and why
  flags: string;              // the flags that reproduce it
  warnings: string[];         // where quality drops: the measured cost and the command that measures it
}

// How the model's layer weights are held: ternary-valued (0 and +-one scale per tensor), all in one
// integer format, or float.
export type Native = { kind: 'ternary'; from: string } | { kind: 'integer'; format: WeightFormat } | { kind: 'float' };

function ternaryValued(t: Matrix, rows: number, cols: number): boolean {
  if (t.format.family === 'ternary') return true;
  const w = dequantize(t, rows, cols);   // an integer format can hold ternary weights exactly too (llama2.c's q8_0 export)
  let s = 0;
  for (let i = 0; i < w.length; i++) s = Math.max(s, Math.abs(w[i]));
  if (s === 0) return false;
  const tol = s * 1e-6;
  let zeros = 0;
  for (let i = 0; i < w.length; i++) {
    const a = Math.abs(w[i]);
    if (a <= tol) zeros++;
    else if (Math.abs(a - s) > tol) return false;
  }
  return zeros < w.length;
}

export function nativeFormat(m: Model): Native {
  const mats = m.layers.flatMap((l) => MATRIX_NAMES.map((n) => ({ t: l[n], shape: matrixShape(m.config, n) })));
  if (mats.every(({ t, shape }) => ternaryValued(t, shape[0], shape[1]))) {
    const fams = new Set(mats.map(({ t }) => t.format.name));
    return { kind: 'ternary', from: fams.size === 1 && mats[0].t.format.family === 'ternary' ? mats[0].t.format.name : 'ternary-trained float weights' };
  }
  const f = mats[0].t.format;
  if (f.family !== 'float' && mats.every(({ t }) => t.format === f) && REFS[f.name] && runsOn(f, 'device')) return { kind: 'integer', format: f };
  return { kind: 'float' };
}

const TB1 = formatByName('tb1')!;

// The layer formats to consider and what each costs for this model.
function weightCandidates(native: Native): { f: WeightFormat; cost: number; why: string }[] {
  if (native.kind === 'ternary') return [{ f: TB1, cost: 0, why: `${native.from === 'ternary-trained float weights' ? native.from : `ternary ${native.from} weights`} kept exactly in tb1` }];
  const table = Object.entries(QUALITY.weights).map(([name, c]) => ({ f: formatByName(name)!, cost: c < LOSSLESS ? 0 : c, why: name === 'f32' ? 'float weights kept' : `float weights in ${name}` }));
  // the model's own integer format costs nothing; another one at least what it costs a float model
  if (native.kind === 'integer') return [{ f: native.format, cost: 0, why: `the model's own ${native.format.name} weights kept` }, ...table.filter((x) => x.f !== native.format).map((x) => ({ ...x, why: `${native.format.name} weights in ${x.f.name}` }))];
  return table;
}

function kvCandidates(m: Model): KvFormat[] {
  return KV_FORMATS.filter((k) => k.name !== 'int3' || headDim(m.config) % 8 === 0);
}

const pct = (c: number) => `+${((Math.exp(c) - 1) * 100).toFixed(c < 0.05 ? 1 : 0)} %`;

export interface ChooseOptions {
  engine?: Engine;
  act?: ImageChoices['act'];
  topk?: number;
  progress?: (line: string) => void;
}

// The choice for `source` on `ch.board`, keeping what `want` names; null when nothing fits one position.
export function chooseFormats(source: Model, ch: ImageChoices, want: Wanted, o: ChooseOptions = {}): Choice | null {
  const native = nativeFormat(source);
  const ws = want.quant ? [{ f: want.quant, cost: 0, why: `--quant ${want.quant.name} as named` }] : weightCandidates(native);
  const kvs = want.kv ? [want.kv] : kvCandidates(source);
  const seqLen = source.config.seqLen;
  const minCtx = want.ctx ?? Math.min(seqLen, MIN_CTX);
  // one request per layer format: the embedding as pack converts it, the layers as zero weights of the format
  const base = new Map<string, BoardPlanRequest>();
  const reqFor = (f: WeightFormat, kv: KvFormat): BoardPlanRequest => {
    let r = base.get(f.name);
    if (!r) {
      const emb = convertModel({ ...source, layers: source.layers.slice(0, 0) as Model['layers'], config: { ...source.config, nLayers: 0 } }, { quant: f }).model;
      const shaped = reshapedModel({ ...source, embedding: emb.embedding, classifier: emb.classifier }, f);
      r = planRequest(shaped, { board: ch.board, kv, act: o.act, topk: o.topk, app: deviceApp(), engine: o.engine }, 4096);
      base.set(f.name, r);
    }
    return { ...r, kv };
  };
  const combos = ws.flatMap((w) => kvs.map((kv) => ({ w, kv, cost: w.cost + (want.kv ? 0 : QUALITY.kv[kv.name] < LOSSLESS ? 0 : QUALITY.kv[kv.name]) })));
  combos.sort((a, b) => a.cost - b.cost);
  o.progress?.(`choosing among ${combos.length} layer and KV formats for ${ch.board.name}`);
  type Found = { c: (typeof combos)[number]; ctx: number; plan: BoardPlan };
  let best: Found | null = null;
  let longest: Found | null = null;
  const better = (a: Found, b: Found) =>
    a.c.cost !== b.c.cost ? a.c.cost < b.c.cost
      : a.ctx !== b.ctx ? a.ctx > b.ctx
        : a.plan.streamedBytesPerToken !== b.plan.streamedBytesPerToken ? a.plan.streamedBytesPerToken < b.plan.streamedBytesPerToken
          : a.plan.image !== b.plan.image ? a.plan.image < b.plan.image
            : a.plan.linear < b.plan.linear;
  for (const c of combos) {
    if (best && c.cost > best.c.cost) break;   // sorted by cost: nothing later can win
    const r = reqFor(c.w.f, c.kv);
    const ctx = want.ctx !== undefined ? (planBoard({ ...r, model: withContext(r.model, want.ctx), quick: true }).fits ? want.ctx : 0) : largestContext(r, seqLen);
    if (ctx === 0) continue;
    const f: Found = { c, ctx, plan: planBoard({ ...r, model: withContext(r.model, ctx) }) };
    if (ctx >= minCtx && (!best || better(f, best))) best = f;
    if (!longest || f.ctx > longest.ctx || (f.ctx === longest.ctx && better(f, longest))) longest = f;
  }
  const pick = best ?? (longest && longest.ctx >= Math.min(FLOOR_CTX, minCtx) ? longest : null);
  if (!pick) return null;
  const { w, kv } = pick.c;
  const warnings: string[] = [];
  const measure = (flags: string) => `edge-flash eval MODEL ${flags} --ref MODEL --text TEXT`;
  // the KV cost measured on a model like this one: ternary-trained, or float
  const ternary = native.kind === 'ternary';
  const kvCost = ternary ? QUALITY.kvTernary[kv.name] : QUALITY.kv[kv.name];
  const kvOn = ternary ? 'the ternary-trained demo model' : 'a stories260K-shaped float model';
  if (!want.kv && QUALITY.kv[kv.name] >= LOSSLESS) {
    warnings.push(`KV ${kv.name} is below int8: measured ${pct(kvCost)} perplexity on ${kvOn} (${ternary ? QUALITY.kvTernaryBasis : QUALITY.basis}); measure yours: ${measure(`--kv ${kv.name}`)}`);
  } else if (want.kv && (kv.name === 'int4' || kv.name === 'int3')) {
    warnings.push(`KV ${kv.name} is below int8: measured ${pct(kvCost)} perplexity on ${kvOn}; measure yours: ${measure(`--kv ${kv.name}`)}`);
  }
  if (native.kind === 'float' && w.f.family === 'ternary') {
    warnings.push(`${w.f.name} of float weights is post-training ternary: measured ${pct(QUALITY.weights.tb1)} perplexity on a stories260K-shaped float model (train ternary instead: tools/train); measure yours: ${measure(`--quant ${w.f.name}`)}`);
  }
  const ctxWhy = want.ctx !== undefined ? `--ctx ${want.ctx} as named` : pick.ctx === seqLen ? `the model's whole context ${seqLen}` : `context ${pick.ctx}, the largest that fits${pick.ctx < minCtx ? ` (below ${minCtx}: nothing more precise fits)` : ''}`;
  const kvWhy = want.kv ? `--kv ${kv.name} as named` : kvCost < LOSSLESS ? `${kv.name} KV (within ${(LOSSLESS * 100).toFixed(0)} % of f32 perplexity)` : `${kv.name} KV (the most precise that fits)`;
  const flags = `--quant ${w.f.name} --kv ${kv.name} --ctx ${pick.ctx}`;
  return {
    quant: w.f, kv, ctx: pick.ctx, cost: pick.c.cost, plan: pick.plan, warnings, flags,
    reason: `${w.why}, ${kvWhy}, ${ctxWhy}`,
  };
}
