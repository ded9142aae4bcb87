#!/usr/bin/env node
// docs/quantization.md's results table ("Evaluation"): every row is one `edge-flash quantize` and
// one `edge-flash eval` against the full-precision model, run here one after the other, with the
// commands printed as they run. Texts: tools/eval/texts.sh (data/eval/val20k.txt, train40k.txt).
//   node tools/eval/quant-table.mjs [--model DIR] [ROW_PREFIX ...] > table.md     (progress on stderr; JSON lines in data/eval/rows.jsonl)
// DIR: a float model's folder (model.bin or model.gguf, and tokenizer.bin), default models/kjv-esp32-260k-fp.
// A row prefix (e.g. `bitmod`, `tesseraq`) runs only the rows whose label starts with it.
import { cli } from './cli.mjs';
import { appendFileSync, existsSync, mkdirSync } from 'node:fs';
import { basename, join } from 'node:path';

const argv = process.argv.slice(2);
const at = argv.indexOf('--model');
const MODEL = at >= 0 ? argv.splice(at, 2)[1] : 'models/kjv-esp32-260k-fp';
const WEIGHTS = ['model.bin', 'model.gguf'].map((f) => join(MODEL ?? '', f)).find((f) => existsSync(f));
if (!WEIGHTS) {
  process.stderr.write(`quant-table: --model ${MODEL}: expected a folder with model.bin or model.gguf\n`);
  process.exit(2);
}
const VAL = 'data/eval/val20k.txt', CALIB = 'data/eval/train40k.txt';
const OUT = join('data/eval/q', basename(MODEL));
const calib = ['--calib', CALIB, '--seed', '1'];
const ROWS = [
  ['fp', null],
  ['ternary (absmean)', ['--method', 'ternary']],
  ...[2, 3, 4].flatMap((b) => [
    [`rtn ${b} asym g32`, ['--method', 'rtn', '--bits', `${b}`, '--group', '32']],
    [`rtn ${b} sym g32`, ['--method', 'rtn', '--bits', `${b}`, '--group', '32', '--sym']],
    [`rtn ${b} asym g64`, ['--method', 'rtn', '--bits', `${b}`, '--group', '64']],
  ]),
  ...[3, 4].flatMap((b) => [32, 64].map((g) => [`bitmod ${b} g${g}`, ['--method', 'bitmod', '--bits', `${b}`, '--group', `${g}`]])),
  ...[2, 3, 4].map((b) => [`gptq ${b} asym g32`, ['--method', 'gptq', '--bits', `${b}`, '--group', '32', ...calib]]),
  ...[3, 4].map((b) => [`gptq bmd${b}g32`, ['--method', 'gptq', '--format', `bmd${b}g32`, ...calib]]),
  ['gptq tq2 (ternary)', ['--method', 'gptq', '--format', 'tq2', ...calib]],
  ['tesseraq 2 asym g32 init rtn', ['--method', 'tesseraq', '--bits', '2', '--group', '32', '--init', 'rtn', ...calib]],
  ['tesseraq 2 asym g32 init gptq', ['--method', 'tesseraq', '--bits', '2', '--group', '32', '--init', 'gptq', ...calib]],
  ['tesseraq 3 asym g32 init rtn', ['--method', 'tesseraq', '--bits', '3', '--group', '32', '--init', 'rtn', ...calib]],
  ['tesseraq 3 asym g32 init gptq', ['--method', 'tesseraq', '--bits', '3', '--group', '32', '--init', 'gptq', ...calib]],
  ['tesseraq 4 asym g32 init rtn', ['--method', 'tesseraq', '--bits', '4', '--group', '32', '--init', 'rtn', ...calib]],
];

const only = argv;
if (!existsSync(VAL) || !existsSync(CALIB)) {
  process.stderr.write(`quant-table: ${VAL} or ${CALIB} is missing: run sh tools/eval/texts.sh\n`);
  process.exit(2);
}
mkdirSync(OUT, { recursive: true });


process.stdout.write('| method | format | bits/weight (layers) | file bytes | quantize s | PPL | KLD mean | KLD p99 | top-1 % | mean Δp % |\n');
process.stdout.write('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n');
for (const [label, qargs] of ROWS) {
  if (only.length && !only.some((p) => label.startsWith(p))) continue;
  let model = WEIGHTS, q = null;
  if (qargs) {
    model = join(OUT, `${label.replace(/[^a-z0-9]+/gi, '-')}.gguf`);
    q = cli(['quantize', WEIGHTS, '-o', model, '--force', '--json', ...qargs]);
  }
  const e = cli(['eval', model, '-z', join(MODEL, 'tokenizer.bin'), '--text', VAL, '--json', ...(q ? ['--ref', WEIGHTS] : [])]);
  const layers = q ? q.groups.filter((g) => ['wq', 'wk', 'wv', 'wo', 'w1', 'w2', 'w3'].includes(g.group)) : [];
  const params = layers.reduce((a, g) => a + g.params, 0);
  const bpw = q ? layers.reduce((a, g) => a + g.bits_per_weight * g.params, 0) / params : 32;
  const row = { model: basename(MODEL), label, args: qargs, format: q?.format ?? 'f32', bpw, bytes: q?.bytes ?? null, quantize_seconds: q?.seconds ?? null, blocks: q?.blocks, eval: e };
  appendFileSync('data/eval/rows.jsonl', JSON.stringify(row) + '\n');
  const f = (v, d) => (v === undefined || v === null ? '-' : v.toFixed(d));
  process.stdout.write(`| ${label} | ${row.format} | ${bpw.toFixed(3)} | ${row.bytes ?? '-'} | ${f(row.quantize_seconds, 1)} | ${e.ppl.toFixed(3)} | ${f(e.kld, 4)} | ${f(e.kld_p99, 3)} | ${q ? (100 * e.top1).toFixed(1) : '-'} | ${q ? (100 * e.delta_p_mean).toFixed(2) : '-'} |\n`);
}
