// Where int4 KV loses on a model: perplexity of the float64 reference (host/model/reference.ts) over
// eval's windows with the KV cache as the runtime keeps it (int4 codes, integer attention) and with
// the same quantize -> dequantize under float64 attention, K and V separately, and K with its
// largest channels kept exact; plus each layer's per-channel K and V magnitudes (RMS over the text).
//   npx tsx tools/eval/kv-probe.ts MODEL.bin TEXT [windows] [--json]
// The figures of docs/quantization.md's "int4 KV" finding: models/kjv-esp32-260k-fp/model.bin data/eval/val20k.txt.
import { readFileSync } from 'node:fs';
import { loadModel } from '../../host/formats/index.ts';
import { headDim } from '../../host/model/config.ts';
import { kvFormat, kvRoundTrip } from '../../host/model/kv.ts';
import { ReferenceModel, type ReferenceOptions } from '../../host/model/reference.ts';
import { evaluate, tokenizeText, type LogitSource } from '../../host/quant/eval.ts';

const args = process.argv.slice(2).filter((a) => a !== '--json');
const [modelPath, textPath, winArg] = args;
if (!modelPath || !textPath) {
  process.stderr.write('usage: npx tsx tools/eval/kv-probe.ts MODEL.bin TEXT [windows] [--json]\n');
  process.exit(2);
}
const model = loadModel(modelPath);
const c = model.config, hs = headDim(c);
const tokens = tokenizeText(readFileSync(textPath, 'utf8'), model.tokenizer!);
const ctx = c.seqLen, nWin = Math.min(Number(winArg ?? Infinity), Math.floor(tokens.length / ctx));
const used = tokens.slice(0, nWin * ctx);
const int4 = kvFormat('int4')!;

const source = (opts: ReferenceOptions): LogitSource => (window, first, each) => {
  const ref = new ReferenceModel(model, opts);
  for (let j = 0; j < window.length - 1; j++) {
    const logits = ref.forward(window[j], j);
    if (j >= first) each(j, logits);
  }
};

// per (layer, isV, kv head, channel): sum of squares, and rows seen
const sq = new Float64Array(c.nLayers * 2 * c.nKvHeads * hs);
const rows = new Float64Array(c.nLayers * 2);
const heads = new Map<string, number>();
const collect: ReferenceOptions['kvTransform'] = (v, isV, l) => {
  // called once per KV head in order: the head index cycles 0 .. nKvHeads-1 per (layer, K|V)
  const key = `${l}${isV}`;
  const h = heads.get(key) ?? 0;
  heads.set(key, (h + 1) % c.nKvHeads);
  const base = ((l * 2 + (isV ? 1 : 0)) * c.nKvHeads + h) * hs;
  for (let i = 0; i < hs; i++) sq[base + i] += v[i] * v[i];
  if (h === 0) rows[l * 2 + (isV ? 1 : 0)]++;
  return v;
};

// K with its `keep` largest-magnitude channels of each row exact, the others int4 on the rest's absmax
const keepTop = (keep: number) => (v: Float64Array) => {
  const order = Array.from(v, (x, i) => [Math.abs(x), i]).sort((a, b) => b[0] - a[0]).map((p) => p[1]);
  const rest = Float64Array.from(v);
  for (const i of order.slice(0, keep)) rest[i] = 0;
  const q = kvRoundTrip(rest, int4);
  const out = Float64Array.from(q);
  for (const i of order.slice(0, keep)) out[i] = v[i];
  return out;
};

const variants: Array<[string, ReferenceOptions]> = [
  ['f32 (and per-channel statistics)', { kvTransform: collect }],
  ['int4 as the runtime: codes + integer attention', { kv: int4 }],
  ['int4 K and V, float64 attention', { kvTransform: (v) => kvRoundTrip(v, int4) }],
  ['int4 K only (V f32), float64 attention', { kvTransform: (v, isV) => (isV ? v : kvRoundTrip(v, int4)) }],
  ['int4 V only (K f32), float64 attention', { kvTransform: (v, isV) => (isV ? kvRoundTrip(v, int4) : v) }],
  ['int4 K with its largest channel exact, V int4', { kvTransform: (v, isV) => (isV ? kvRoundTrip(v, int4) : keepTop(1)(v)) }],
  ['int4 K with its 2 largest channels exact, V int4', { kvTransform: (v, isV) => (isV ? kvRoundTrip(v, int4) : keepTop(2)(v)) }],
];

const results: Array<{ variant: string; ppl: number; kld: number; top1: number; seconds: number }> = [];
// the f32 reference's logits, computed once for every variant's KL divergence
const refCache = new Map<string, ArrayLike<number>[]>();
const refSource: LogitSource = (window, first, each) => {
  const key = window.join(',');
  if (!refCache.has(key)) {
    const got: ArrayLike<number>[] = [];
    source({})(window, first, (j, logits) => { got[j] = logits; });
    refCache.set(key, got);
  }
  const got = refCache.get(key)!;
  for (let j = first; j < window.length - 1; j++) each(j, got[j]);
};
for (const [name, opts] of variants) {
  const t0 = performance.now();
  const r = evaluate(used, model.tokenizer!.bos, { ctx, stride: ctx }, source(opts), name.startsWith('f32') ? undefined : refSource);
  const row = { variant: name, ppl: r.ppl, kld: r.ref?.kld.mean ?? 0, top1: r.ref?.top1 ?? 1, seconds: (performance.now() - t0) / 1000 };
  results.push(row);
  process.stderr.write(`kv-probe: ${name}: PPL ${r.ppl.toFixed(3)} KLD ${row.kld.toFixed(4)} top-1 ${(100 * row.top1).toFixed(1)} % (${row.seconds.toFixed(0)} s)\n`);
}

// per-channel RMS: for each layer, K and V, the largest channel RMS over the median channel's (per
// KV head, the worst head), and which channels of head 0 are the top two
const stats = [];
for (let l = 0; l < c.nLayers; l++) {
  for (const isV of [false, true]) {
    let worst = 0, top = '';
    for (let h = 0; h < c.nKvHeads; h++) {
      const base = ((l * 2 + (isV ? 1 : 0)) * c.nKvHeads + h) * hs;
      const rms = Array.from({ length: hs }, (_, i) => Math.sqrt(sq[base + i] / rows[l * 2 + (isV ? 1 : 0)]));
      const sorted = [...rms].sort((a, b) => a - b);
      const ratio = sorted[hs - 1] / sorted[hs >> 1];
      if (ratio > worst) {
        worst = ratio;
        const idx = rms.map((v, i) => [v, i]).sort((a, b) => b[0] - a[0]);
        top = `head ${h}: channels ${idx[0][1]} (${idx[0][0].toFixed(2)}), ${idx[1][1]} (${idx[1][0].toFixed(2)}); median ${sorted[hs >> 1].toFixed(2)}`;
      }
    }
    stats.push({ layer: l, tensor: isV ? 'V' : 'K', max_over_median_rms: worst, top });
  }
}
if (process.argv.includes('--json')) process.stdout.write(JSON.stringify({ model: modelPath, windows: nWin, tokens: used.length, results, stats }, null, 1) + '\n');
else {
  process.stdout.write(`${modelPath}: ${nWin} windows of ${ctx}\n| KV | PPL | KLD mean | top-1 % |\n| --- | --- | --- | --- |\n`);
  for (const r of results) process.stdout.write(`| ${r.variant} | ${r.ppl.toFixed(3)} | ${r.kld.toFixed(4)} | ${(100 * r.top1).toFixed(1)} |\n`);
  process.stdout.write('\n| layer | K/V | largest channel RMS / median (worst KV head) | where |\n| --- | --- | --- | --- |\n');
  for (const s of stats) process.stdout.write(`| ${s.layer} | ${s.tensor} | ${s.max_over_median_rms.toFixed(1)} | ${s.top} |\n`);
}
