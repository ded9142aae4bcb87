// `edge-flash quantize`: a float model into a quantized GGUF with one of the seeds' methods.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { UserError } from '../errors.ts';
import { loadModel } from '../formats/index.ts';
import { writeAtomic } from '../image/source.ts';
import { fmtBytes } from '../image/plan.ts';
import { log } from '../log.ts';
import { parseNumber } from './flags.ts';
import { blockBar, METHODS, quantizeModel, type Method } from '../quant/quantize.ts';
import { selfAgreement, withValues } from '../quant/eval.ts';

// Ternary and 2-bit formats: applied to a float model after training, they keep little of it.
const isLowBit = (format: string) => /^(tq\d|tq\d_0|tb1|i2g\d+)( sym)?$/.test(format);
// Below this top-1 agreement with the float model, quantize warns (measured: the ternary-trained 260K
// demo keeps 58 % under tq2 and 59 % under i2g32; the same model trained in float 5 % and 20 %).
const LOW_AGREEMENT = 0.35;

const intOpt = (v: string | undefined, flag: string, min = 1): number | undefined =>
  v === undefined ? undefined : parseNumber(flag, v, { integer: true, min });

export function registerQuantize(program: Command): void {
  program
    .command('quantize')
    .description('quantize a float model into a GGUF file (ternary, RTN, BitMoD, GPTQ, TesseraQ)')
    .argument('<model>', 'a float model (llama2.c .bin, GGUF, safetensors)')
    .requiredOption('-o, --output <file.gguf>', 'the GGUF file to write')
    .requiredOption('--method <m>', `quantization method: ${METHODS.join(', ')}`)
    .option('--bits <n>', 'bits per weight of integer / BitMoD formats: 2, 3, 4')
    .option('--group <n>', 'weights per group along a row: 32, 64, 128 (default 32; BitMoD 128)')
    .option('--sym', 'symmetric integers (default: asymmetric min-max)')
    .option('--format <name>', 'target format: i<b>g<G>, bmd<b>g<G>, tq2, tq1, tb1, or ggml\'s q4_0, q8_0, tq2_0, tq1_0')
    .option('--calib <file>', 'calibration text (gptq, tesseraq; default: windows sampled from the model itself)')
    .option('--calib-tokens <n>', 'calibration tokens (default: gptq 1024, tesseraq 256)')
    .option('--window <n>', 'calibration window in tokens (gptq)', '128')
    .option('--seed <n>', 'seed of the calibration windows', '1')
    .option('--act-order', 'gptq: quantize columns in decreasing order of their Hessian diagonal')
    .option('--init <m>', 'tesseraq: the initialisation, rtn or gptq', 'rtn')
    .option('--iters <n>', 'tesseraq: Adam steps per hardening step (7 steps: 30 % .. 100 % hard)', '4')
    .option('--threads <n>', 'tesseraq: threads over the calibration windows (default: the cores, at most one per window; the result does not depend on it)')
    .option('--damp <f>', 'gptq: dampening, a fraction of the mean Hessian diagonal', '0.01')
    .option('--keep <tensors>', 'comma-separated tensor groups kept in f32 (embedding, classifier, wq ... w3, layers.N.wq; "none")', 'embedding,classifier')
    .option('-z <path>', 'tokenizer.bin (default: the model\'s own, or tokenizer.bin beside it)')
    .option('--force', 'replace an existing output file')
    .option('--json', 'print the summary as JSON')
    .addHelpText('after', `
Norms always stay f32; the embedding and an unshared classifier unless --keep leaves them out
(they are then rounded to nearest in the target format). GPTQ goes block by block, each block's
inputs computed with the blocks before it already quantized. Standard ggml types (q4_0, q8_0,
tq2_0, tq1_0) use ggml's block layout; other formats are extension types (docs/formats.md).

Examples:
  edge-flash quantize models/kjv-esp32-260k-fp/model.bin --method gptq --bits 3 -o kjv-gptq3.gguf
  edge-flash quantize models/kjv-s3-3m/model.bin --method rtn --format q4_0 -o kjv-q4_0.gguf`)
    .action((modelPath: string, o) => {
      const method = String(o.method) as Method;
      if (!(METHODS as readonly string[]).includes(method)) throw new UserError(`unknown --method ${method}: expected ${METHODS.join(', ')}`);
      if (existsSync(o.output) && !o.force) throw new UserError(`${o.output} exists`, 'pass --force to replace it');
      const damp = Number(o.damp);
      if (!(damp > 0 && damp < 10)) throw new UserError(`--damp ${o.damp}: expected a number in (0, 10)`);
      const keep = String(o.keep).split(',').map((s) => s.trim()).filter((s) => s && s !== 'none');
      const model = loadModel(modelPath, { tokenizer: o.z, needTokenizer: false });
      const bar = blockBar(model.config.nLayers, `quantize ${method}`);
      const { bytes, summary, values } = quantizeModel(model, {
        method, bits: intOpt(o.bits, '--bits'), group: intOpt(o.group, '--group'), sym: !!o.sym, format: o.format,
        calib: o.calib, calibTokens: intOpt(o.calibTokens, '--calib-tokens'), window: intOpt(o.window, '--window', 2), seed: intOpt(o.seed, '--seed', 0),
        actOrder: !!o.actOrder, damp, keep, init: o.init, tesseraq: { iters: intOpt(o.iters, '--iters') }, threads: intOpt(o.threads, '--threads'),
      }, (d) => bar.tick(d));
      bar.done();
      writeAtomic(o.output, bytes, { force: o.force });
      if (summary.calibration) log(`quantize: calibration ${summary.calibration}`);
      // as llama.cpp's quantize: a tensor the ggml type cannot hold is stored in another type, and named
      for (const f of summary.fallbacks) log(`quantize: warning: ${f.tensor}: rows of ${f.cols} weights are not a multiple of ${f.format}'s block of ${f.block}: stored as ${f.type}`);
      // ternary and 2-bit after training: what is left of the model, measured, and how to measure it on text
      let agreement: ReturnType<typeof selfAgreement> | null = null;
      if (isLowBit(summary.format)) {
        agreement = selfAgreement(model, withValues(model, values));
        const pct = `${(100 * agreement.top1).toFixed(1)} %`;
        const evalCmd = `edge-flash eval ${o.output} --ref ${modelPath} --text <file>`;
        if (agreement.top1 < LOW_AGREEMENT) {
          log(`quantize: warning: ${summary.format} applied after training keeps the float model's next token at ${pct} of ${agreement.positions} positions of its own text: ` +
            `a model not trained for ${summary.format.startsWith('i2') ? '2-bit' : 'ternary'} weights (quantization-aware, as BitNet b1.58 is) loses most of what it learned; measure it on text with \`${evalCmd}\``);
        } else log(`quantize: the quantized model keeps the float model's next token at ${pct} of ${agreement.positions} positions of its own text (on text: \`${evalCmd}\`)`);
      }
      for (const b of summary.blocks ?? []) log(`quantize: block ${b.block}: output error ${b.init_loss.toExponential(3)} (${o.init}) -> ${b.loss.toExponential(3)}${b.kept_init ? ' (not better: the init is kept)' : ''}`);
      if (o.json) {
        process.stdout.write(JSON.stringify({ output: o.output, ...summary, self_top1: agreement?.top1 ?? null }) + '\n');
        return;
      }
      const rows = summary.groups.map((g) => `  ${g.group.padEnd(10)} ${g.format.padEnd(10)} ${String(g.tensors).padStart(3)} tensors ${g.bits_per_weight.toFixed(3).padStart(7)} bits/weight  rel. error ${g.rel_error.toExponential(3)}`);
      process.stdout.write(`wrote ${resolve(o.output)}: ${fmtBytes(summary.bytes)}, ${summary.method} ${summary.format}, ${summary.seconds.toFixed(1)} s\n${rows.join('\n')}\n` +
        `rel. error is the weights' error (|w - w'| / |w| per group), not the model's: methods that fit the outputs (gptq, tesseraq) may have more of it and predict better; ` +
        `\`edge-flash eval ${o.output} --ref ${modelPath} --text <file>\` measures the model (perplexity, KL divergence, top-1 agreement)\n`);
    });
}
