#!/usr/bin/env node
// docs/quantization.md's "a4.8 vs b1.58 activations" perplexity table: for a ternary QAT model (`--quant tb1`),
// b1.58's int8 activations against BitNet a4.8 (int4 projection inputs, top-K sparsified int8
// intermediate states, 3-bit KV) and a4.8 without each of its parts, every row one `edge-flash eval`
// against the model in f32, the commands printed as they run. Texts: tools/eval/texts.sh.
//   node tools/eval/a48-table.mjs [MODEL_DIR ...] > table.md     (default models/kjv-esp32-260k)
import { cli } from './cli.mjs';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const VAL = 'data/eval/val20k.txt';
const ROWS = [
  ['b1.58: int8 / f32 KV', ['--act', 'i8', '--kv', 'f32']],
  ['b1.58: int8 / int8 KV', ['--act', 'i8', '--kv', 'int8']],
  ['b1.58: int8 / int4 KV', ['--act', 'i8', '--kv', 'int4']],
  ['b1.58: int8 / int3 KV', ['--act', 'i8', '--kv', 'int3']],
  ['a4.8 (int4 inputs, top-K 50 % int8 intermediates, int3 KV)', ['--act', 'a4.8']],
  ['a4.8 without top-K (--topk 1)', ['--act', 'a4.8', '--topk', '1']],
  ['a4.8 with int4 KV', ['--act', 'a4.8', '--kv', 'int4']],
  ['a4.8 with f32 KV', ['--act', 'a4.8', '--kv', 'f32']],
  ['a4.8 without top-K, f32 KV (the hybrid alone)', ['--act', 'a4.8', '--topk', '1', '--kv', 'f32']],
  ['a4.8 keeping 70 %, f32 KV', ['--act', 'a4.8', '--topk', '0.7', '--kv', 'f32']],
  ['a4.8 keeping 30 %, f32 KV', ['--act', 'a4.8', '--topk', '0.3', '--kv', 'f32']],
  ['int8 + top-K 50 % alone, f32 KV', ['--act', 'i8', '--topk', '0.5', '--kv', 'f32']],
  ['int4 everywhere / f32 KV', ['--act', 'i4', '--kv', 'f32']],
];

if (!existsSync(VAL)) {
  process.stderr.write(`a48-table: ${VAL} is missing: run sh tools/eval/texts.sh\n`);
  process.exit(2);
}
const models = process.argv.slice(2).length ? process.argv.slice(2) : ['models/kjv-esp32-260k'];


process.stdout.write('| model | activations / KV | PPL | vs b1.58 (int8, f32 KV) | KLD mean | top-1 % | kept of wo / w2 inputs |\n');
process.stdout.write('| --- | --- | --- | --- | --- | --- | --- |\n');
for (const dir of models) {
  const bin = join(dir, 'model.bin');
  const results = ROWS.map(([label, args]) => [label, cli(['eval', bin, '--quant', 'tb1', ...args, '--ref', bin, '--text', VAL, '--json'])]);
  const base = results[0][1].ppl; // b1.58: int8 / f32 KV
  for (const [label, e] of results) {
    const kept = e.keep_wo || e.keep_w2 ? `${e.keep_wo} / ${e.keep_w2}` : 'all';
    const rel = ((e.ppl / base - 1) * 100).toFixed(1);
    process.stdout.write(`| ${dir.split('/').pop()} | ${label} | ${e.ppl.toFixed(3)} | ${rel.startsWith('-') ? rel : `+${rel}`} % | ${e.kld.toFixed(4)} | ${(100 * e.top1).toFixed(1)} | ${kept} |\n`);
  }
}
