// Model decode benchmark (`edge-flash bench --model ...`): decode tokens per second of the WASM
// runtime on V8 and wasm3 against llama2.c's run.c (float32), run on the same model in the same run.
//
// run.c is not part of this project: pass a binary you built (`--runc PATH`, docs/model-runtime.md says how). For a
// shape, a random-weight float32 llama2.c checkpoint is written (the embedding row of BOS is zero so
// that greedy decoding does not stop early); run.c decodes it greedily from BOS for `steps` positions
// and prints its tok/s (positions after the first over the time after the first, ms clock). The runtime
// decodes the same file from BOS for the same positions (ignoring BOS, timed the same way), with the
// weights, activations and KV cache of the row.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import { getEngine } from '../engine/index.ts';
import { compileOptimizedOnly } from '../engine/v8.ts';
import type { EngineName } from '../engine/types.ts';
import { loadModel } from '../formats/index.ts';
import { writeLlama2c } from '../formats/llama2c.ts';
import { writeTokenizerBin } from '../formats/tokenizer-bin.ts';
import type { ModelConfig } from '../model/config.ts';
import { kvFormat } from '../model/kv.ts';
import type { Model } from '../model/model.ts';
import { quantizeModel } from '../model/quantize.ts';
import { ModelRuntime } from '../model/runtime.ts';
import { randomWeights, trainTokenizer } from '../model/synthetic.ts';
import { aotTwin, appRunDecode, type Dump } from './aot.ts';
import { formatByName, ternaryFormat, type Target } from '../quant/formats.ts';
import { median } from './stats.ts';
import type { ActMode } from '../model/plan.ts';

// The issue's shapes: a plain ESP32 (260K class) and the llama2.c 15M shape (vocab 4096, as the
// project's KJV rpi model).
export const MODEL_SHAPES: Record<string, ModelConfig> = {
  '260k': { dim: 64, hiddenDim: 172, nLayers: 5, nHeads: 8, nKvHeads: 4, vocabSize: 512, seqLen: 512, sharedClassifier: true },
  // kjv-s3-3m's shape (models/kjv-s3-3m): the largest demo model an ESP32-C3 can hold (bench --isa)
  '3m': { dim: 256, hiddenDim: 512, nLayers: 4, nHeads: 8, nKvHeads: 4, vocabSize: 4096, seqLen: 256, sharedClassifier: true },
  '15m': { dim: 288, hiddenDim: 768, nLayers: 6, nHeads: 6, nKvHeads: 6, vocabSize: 4096, seqLen: 256, sharedClassifier: true },
};

export interface ModelBenchConfig {
  engine: EngineName;
  target: Target;
  weights: string;        // a format name, 'ternary' (tt4 on simd, tb1 on device) or 'f32'
  classifier?: string;    // classifier format; default: as loaded (f32)
  act: ActMode;
  topk?: number;          // a4.8's top-K fraction (host/model/plan.ts); default: the mode's
  kv: string;             // f32 | int8 | int4 | int3
  memoryLimit?: number;   // bytes: plan residency to fit (weights stream)
  models?: string[];      // only for these models (default: all)
}

export interface ModelBenchOptions {
  models: string[];       // shape names (MODEL_SHAPES) or llama2.c .bin paths
  configs: ModelBenchConfig[];
  steps: number;          // positions decoded from BOS (run.c's -n; default 256)
  repeat: number;
  runc?: string;          // a run.c binary (cc -O3 -march=native); absent: no ratio
  aot?: boolean;          // an `aot` row beside every wasm3 row: the same app ahead of time (host/bench/aot.ts)
}

export interface ModelBenchRow {
  model: string;
  engine: EngineName | 'run.c' | 'aot';
  target: Target | 'native';
  weights: string;
  classifier: string;
  act: string;
  kv: string;
  steps: number;
  tok_s: number;           // median over repeats
  min_tok_s: number;
  max_tok_s: number;
  runs: number[];          // tok/s of each repeat, in order (repeats interleave the rows: compare within one)
  memory_bytes: number | null; // the runtime's linear-memory high-water mark
  memory_limit: number | null; // the plan's limit (weights that do not fit stream), if any
  runc_tok_s: number | null;
  ratio_vs_runc: number | null; // median over repeats of tok_s / run.c's tok/s in the same repeat
  ratio_vs_wasm3: number | null; // aot rows: the same, against the wasm3 row of the same configuration
}

export function benchFile(name: string, dir: string): { path: string; tokenizer: string; label: string } {
  const c = MODEL_SHAPES[name];
  if (!c) {
    if (!existsSync(name)) throw new UserError(`unknown model '${name}': expected ${Object.keys(MODEL_SHAPES).join(', ')} or a llama2.c .bin`);
    return { path: name, tokenizer: join(name, '..', 'tokenizer.bin'), label: name };
  }
  const w = randomWeights(c, 7);
  w.tok.fill(0, 1 * c.dim, 2 * c.dim); // BOS never wins the argmax: both sides decode all `steps`
  const path = join(dir, `${name}.bin`), tokenizer = join(dir, `${name}-tokenizer.bin`);
  writeFileSync(path, writeLlama2c(w, 0));
  writeFileSync(tokenizer, writeTokenizerBin(trainTokenizer(c.vocabSize)));
  const label = `${name} (dim ${c.dim}, hidden ${c.hiddenDim}, ${c.nLayers} layers, ${c.nHeads} heads, ${c.nKvHeads} kv, vocab ${c.vocabSize}, ctx ${c.seqLen})`;
  return { path, tokenizer, label };
}

export function runcTokS(binary: string, model: string, tokenizer: string, steps: number): number {
  const r = spawnSync(binary, [model, '-z', tokenizer, '-t', '0', '-n', String(steps)], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.error || r.status !== 0) throw new UserError(`run.c (${binary}) failed: ${r.error?.message ?? (r.stderr || `exit ${r.status}`).split('\n')[0]}`);
  const m = /achieved tok\/s: ([\d.]+)/.exec(r.stderr);
  if (!m) throw new UserError(`run.c (${binary}) printed no "achieved tok/s" line`);
  return Number(m[1]);
}

// Decode `steps` positions from BOS; tok/s as run.c counts it.
export function decodeTokS(rt: ModelRuntime, steps: number): number {
  let tok = 1;
  let t1 = 0;
  for (let pos = 0; pos < steps; pos++) {
    tok = rt.step(tok, pos);
    if (pos === 0) t1 = performance.now();
  }
  const s = (performance.now() - t1) / 1000;
  return (steps - 1) / s;
}

export function prepare(model: Model, cfg: ModelBenchConfig): Model {
  const layers = cfg.weights === 'f32' ? null : (cfg.weights === 'ternary' ? ternaryFormat(cfg.target) : formatByName(cfg.weights));
  if (layers === undefined) throw new UserError(`unknown weight format '${cfg.weights}'`);
  const cls = cfg.classifier && cfg.classifier !== 'f32' ? (cfg.classifier === 'ternary' ? ternaryFormat(cfg.target) : formatByName(cfg.classifier)) : null;
  if (cls === undefined) throw new UserError(`unknown classifier format '${cfg.classifier}'`);
  return quantizeModel(model, { layers, classifier: cls });
}

export async function benchModelDecode(opts: ModelBenchOptions, tick: (label: string) => void = () => {}): Promise<ModelBenchRow[]> {
  compileOptimizedOnly();
  const dir = mkdtempSync(join(tmpdir(), 'edge-flash-model-bench-'));
  const rows: ModelBenchRow[] = [];
  try {
    for (const name of opts.models) {
      const f = benchFile(name, dir);
      const model = loadModel(f.path, { tokenizer: f.tokenizer });
      const steps = Math.min(opts.steps, model.config.seqLen);
      const runs: Array<{ cfg: ModelBenchConfig; rt: ModelRuntime; tokS: number[]; aot?: { dump: Dump; tokS: number[] } }> = [];
      try {
        for (const cfg of opts.configs) {
          if (cfg.models && !cfg.models.includes(name)) continue;
          tick(`${name} ${cfg.engine}/${cfg.target} ${cfg.weights} ${cfg.kv}: load and warm up`);
          const engine = await getEngine(cfg.engine);
          const kv = kvFormat(cfg.kv);
          if (!kv) throw new UserError(`unknown KV format '${cfg.kv}'`);
          const rt = ModelRuntime.create(prepare(model, cfg), engine, { target: cfg.target, kv, act: cfg.act, topk: cfg.topk, batch: 1, sampler: false, memoryLimit: cfg.memoryLimit, capMemory: cfg.memoryLimit !== undefined });
          const run: (typeof runs)[number] = { cfg, rt, tokS: [] };
          runs.push(run);
          if (opts.aot && cfg.engine === 'wasm3') run.aot = { dump: aotTwin(rt, join(dir, `aot-${runs.length}`), Math.min(steps, 32)), tokS: [] };
          rt.setSampler({ temperature: 0, topp: 0.9, seed: 1n });
          decodeTokS(rt, steps); // warm-up: caches, branch predictors
        }
        // Repeats interleave run.c and every row, so that the machine's drift (a third over minutes on
        // shared hosts) hits both sides of each ratio alike; a row's ratio is the median of its
        // per-repeat ratios.
        const runc: number[] = [];
        for (let r = 0; r < opts.repeat; r++) {
          tick(`${name} repeat ${r + 1}/${opts.repeat}`);
          if (opts.runc) runc.push(runcTokS(opts.runc, f.path, f.tokenizer, steps));
          for (const run of runs) {
            run.tokS.push(decodeTokS(run.rt, steps));
            if (run.aot) run.aot.tokS.push(appRunDecode('aot', run.aot.dump, steps).tokS);
          }
        }
        const runcMedian = opts.runc ? median(runc) : null;
        if (opts.runc) {
          rows.push({ model: f.label, engine: 'run.c', target: 'native', weights: 'f32', classifier: 'f32', act: 'f32', kv: 'f32', steps, tok_s: runcMedian!, min_tok_s: Math.min(...runc), max_tok_s: Math.max(...runc), runs: runc, memory_bytes: null, memory_limit: null, runc_tok_s: runcMedian, ratio_vs_runc: 1, ratio_vs_wasm3: null });
        }
        for (const { cfg, rt, tokS, aot } of runs) {
          const row = (engine: ModelBenchRow['engine'], t: number[]): ModelBenchRow => ({
            model: f.label, engine, target: cfg.target, weights: cfg.weights, classifier: cfg.classifier ?? 'f32', act: cfg.weights === 'f32' ? 'f32' : actLabel(rt), kv: cfg.kv, steps,
            tok_s: median(t), min_tok_s: Math.min(...t), max_tok_s: Math.max(...t), runs: t, memory_bytes: rt.memoryBytes(), memory_limit: cfg.memoryLimit ?? null,
            runc_tok_s: runcMedian, ratio_vs_runc: opts.runc ? median(t.map((x, i) => x / runc[i])) : null,
            ratio_vs_wasm3: engine === 'aot' ? median(t.map((x, i) => x / tokS[i])) : null,
          });
          rows.push(row(cfg.engine, tokS));
          if (aot) rows.push(row('aot', aot.tokS));
        }
      } finally {
        for (const { rt } of runs) rt.close();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

// a4.8 rows say how much of the intermediate states they keep
function actLabel(rt: ModelRuntime): string {
  const p = rt.plan;
  return p.keepWo || p.keepW2 ? `${p.act} top-K ${p.keepWo || p.config.dim}/${p.keepW2 || p.config.hiddenDim}` : p.act;
}

// `--act` rows (bench --model --act i8,a4.8): ternary layer weights (tb1 on wasm3, tt4 on V8), an f32
// classifier, each activation mode with each KV format (default: int4 for i8 and i4, a4.8's int3),
// a4.8 with each top-K fraction (default its own), on each engine; repeats interleave every row.
export function actModelConfigs(engines: EngineName[], acts: ActMode[], kvs: string[] | null, topks: number[] | null): ModelBenchConfig[] {
  const out: ModelBenchConfig[] = [];
  for (const engine of engines) {
    for (const act of acts) {
      for (const kv of kvs ?? [act === 'a4.8' ? 'int3' : 'int4']) {
        for (const topk of act === 'a4.8' ? topks ?? [undefined] : [undefined]) {
          out.push({ engine, target: engine === 'v8' ? 'simd' : 'device', weights: 'ternary', act, topk, kv });
        }
      }
    }
  }
  return out;
}

// The default rows: float32 on each engine for reference; then the issue's configuration (ternary layer
// weights, int8 activations, int4 KV) with a float32 classifier and with a ternary one, on each
// engine; and the ESP32 plan within 160 KiB of linear memory under wasm3 (weights streamed). With
// `aot`, every wasm3 row has an AOT twin.
export function defaultModelConfigs(engines: EngineName[]): ModelBenchConfig[] {
  const out: ModelBenchConfig[] = [];
  const q = { weights: 'ternary', act: 'i8', kv: 'int4' } as const;
  if (engines.includes('v8')) {
    out.push({ engine: 'v8', target: 'simd', weights: 'f32', act: 'i8', kv: 'f32' });
    out.push({ engine: 'v8', target: 'simd', ...q });
    out.push({ engine: 'v8', target: 'simd', ...q, classifier: 'ternary' });
  }
  if (engines.includes('wasm3')) {
    out.push({ engine: 'wasm3', target: 'device', weights: 'f32', act: 'i8', kv: 'f32' });
    out.push({ engine: 'wasm3', target: 'device', ...q });
    out.push({ engine: 'wasm3', target: 'device', ...q, classifier: 'ternary' });
    out.push({ engine: 'wasm3', target: 'device', ...q, classifier: 'ternary', memoryLimit: 160 * 1024, models: ['260k'] });
  }
  return out;
}

// The table, its columns only where a row has a figure in them (x run.c needs --runc, x wasm3 the aot
// rows), and a legend of what the ratios divide.
export function formatModelTable(rows: ModelBenchRow[]): string {
  const cols: Array<[string, (r: ModelBenchRow) => string, boolean]> = [
    ['model', (r) => r.model.split(' ')[0], false], ['engine', (r) => r.engine, false], ['target', (r) => r.target, false], ['weights', (r) => r.weights, false],
    ['classifier', (r) => r.classifier, false], ['act', (r) => r.act, false], ['kv', (r) => r.kv, false],
    ['limit', (r) => (r.memory_limit ? `${r.memory_limit / 1024} KiB` : '-'), false], ['steps', (r) => String(r.steps), false],
    ['tok/s', (r) => r.tok_s.toFixed(1), true], ['min', (r) => r.min_tok_s.toFixed(1), true],
    ...(rows.some((r) => r.ratio_vs_runc !== null) ? [['x run.c', (r: ModelBenchRow) => (r.ratio_vs_runc === null ? '-' : r.ratio_vs_runc.toFixed(2)), true] as [string, (r: ModelBenchRow) => string, boolean]] : []),
    ...(rows.some((r) => r.ratio_vs_wasm3 !== null) ? [['x wasm3', (r: ModelBenchRow) => (r.ratio_vs_wasm3 === null ? '-' : r.ratio_vs_wasm3.toFixed(2)), true] as [string, (r: ModelBenchRow) => string, boolean]] : []),
    ['memory', (r) => (r.memory_bytes === null ? '-' : `${(r.memory_bytes / 1024).toFixed(1)} KiB`), true],
  ];
  const head = cols.map((c) => c[0]);
  const body = rows.map((r) => cols.map((c) => c[1](r)));
  const widths = head.map((h, i) => body.reduce((w, b) => Math.max(w, b[i].length), h.length));
  const line = (cells: string[]) => cells.map((c, i) => (cols[i][2] ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ');
  const legend = [
    'tok/s: decode tokens per second, median of the repeats (min: the slowest); memory: the linear memory the model used',
    ...(head.includes('x run.c') ? ['x run.c: tok/s over llama2.c run.c\'s (--runc) in the same repeat, median; above 1 is faster'] : []),
    ...(head.includes('x wasm3') ? ['x wasm3: an aot row\'s tok/s over the wasm3 row of the same configuration'] : []),
  ];
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line), '', ...legend].join('\n');
}
