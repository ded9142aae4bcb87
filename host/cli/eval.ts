// `edge-flash eval`: perplexity over a text and, with --ref, KL divergence from a reference model's
// next-token distributions (llama.cpp's perplexity and --kl-divergence), both on the WASM runtime.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { UserError } from '../errors.ts';
import { engineOrFallback } from '../engine/index.ts';
import { loadModel } from '../formats/index.ts';
import { log, progress, warn } from '../log.ts';
import { kvFormat, KV_FORMATS } from '../model/kv.ts';
import type { Model } from '../model/model.ts';
import { quantizeModel } from '../model/quantize.ts';
import { ModelRuntime } from '../model/runtime.ts';
import type { Target } from '../quant/formats.ts';
import { checkWindows, evaluate, runtimeSource, tokenizeText, windowCount, scoredFrom } from '../quant/eval.ts';
import { actFlag, parseNumber, topkFlag } from './flags.ts';
import { defaultKv } from '../model/plan.ts';
import { quantFormat } from './run.ts';

const intOpt = (v: string | undefined, flag: string): number | undefined =>
  v === undefined ? undefined : parseNumber(flag, v, { integer: true, min: 0 });

export function registerEval(program: Command): void {
  program
    .command('eval')
    .description('perplexity over a text, and KL divergence from a reference model (llama.cpp perplexity / --kl-divergence) on the WASM runtime')
    .argument('<model>', 'llama2.c .bin, GGUF or safetensors (+ config.json)')
    .option('-z <path>', 'tokenizer.bin (default: the model\'s own, or tokenizer.bin beside it or here)')
    .requiredOption('--text <file>', 'plain text, tokenized one line at a time, each line starting with BOS')
    .option('--ref <model>', 'reference model (same vocabulary), run in f32 with f32 KV: KL divergence, top-1 agreement, mean delta p')
    .option('--ctx <n>', 'window in tokens (default: the model\'s context)')
    .option('--stride <n>', 'tokens between window starts (default: the window)')
    .option('--engine <name>', 'v8 | wasm3', 'v8')
    .option('--quant <format>', 'quantize the layer matrices on load (as run --quant): ternary, tb1, i4g32, ...')
    .option('--act <format>', 'activations before quantized matmuls: i8 (b1.58) | i4 | a4.8 (i4 into wq, wk, wv, w1, w3; the inputs of wo and w2 top-K sparsified, then i8)', actFlag('--act'), 'i8')
    .option('--topk <fraction>', 'fraction of the wo and w2 inputs kept (top-K by magnitude), in (0, 1]; 1: none dropped; default 0.5 under --act a4.8, else 1', topkFlag('--topk'))
    .option('--kv <format>', 'KV cache: f32 | int8 | int4 | int3 (default f32, int3 under --act a4.8)')
    .option('--json', 'print one JSON object { ppl, kld, top1, tokens, ... }')
    .addHelpText('after', `
Windows (llama.cpp's perplexity): each window holds --ctx tokens of the token stream and starts with
BOS (its first token replaced), evaluated from position 0. With --stride equal to the window (the
default) windows do not overlap and only the second half is scored: the predictions at positions
ctx/2 .. ctx-2, ctx/2 - 1 tokens a window, each with at least ctx/2 tokens of context. With a
--stride S below the window, windows overlap and the last S predictions of each are scored, so
consecutive windows score consecutive tokens (S <= ctx/2 keeps at least ctx/2 tokens of context).

With --ref, for each scored position: KL(p_ref || p_model) in nats (mean, median, 99th percentile),
whether both argmaxes agree (top-1), and p_model - p_ref of the correct token (mean delta p).

Examples:
  edge-flash eval models/kjv-esp32-260k/model.bin --text val.txt --kv int4
  edge-flash eval models/kjv-s3-3m/model.bin --quant i4g32 --ref models/kjv-s3-3m/model.bin --text val.txt --json`)
    .action(async (modelPath: string, o) => {
      const kv = kvFormat(o.kv ?? defaultKv(o.act));
      if (!kv) throw new UserError(`unknown --kv '${o.kv}': expected ${KV_FORMATS.map((k) => k.name).join(', ')}`);
      let text: string;
      try {
        text = readFileSync(o.text, 'utf8');
      } catch (e) {
        throw new UserError(`cannot read --text ${o.text}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
      const engine = await engineOrFallback(o.engine, warn);
      const target: Target = engine.name === 'v8' ? 'simd' : 'device';
      let model: Model = loadModel(modelPath, { tokenizer: o.z });
      const ctx = intOpt(o.ctx, '--ctx') ?? model.config.seqLen;
      const w = { ctx, stride: intOpt(o.stride, '--stride') ?? ctx };
      if (!model.tokenizer) throw new UserError(`${modelPath}: no tokenizer`, 'give one with -z tokenizer.bin');
      const bos = model.tokenizer.bos;
      const tokens = tokenizeText(text, model.tokenizer);
      checkWindows(tokens.length, w, model.config.seqLen);
      let refModel: Model | undefined;
      if (o.ref !== undefined) {
        refModel = loadModel(o.ref, { tokenizer: o.z });
        if (refModel.config.vocabSize !== model.config.vocabSize) {
          throw new UserError(`--ref ${o.ref}: vocabulary ${refModel.config.vocabSize}, the model's is ${model.config.vocabSize}`);
        }
        if (w.ctx > refModel.config.seqLen) throw new UserError(`--ctx ${w.ctx} is larger than the reference model's context (${refModel.config.seqLen})`);
      }
      if (o.quant) model = quantizeModel(model, { layers: quantFormat(o.quant, target), classifier: null });
      const rt = ModelRuntime.create(model, engine, { target, kv, act: o.act, topk: o.topk, batch: 16 });
      const rr = refModel ? ModelRuntime.create(refModel, engine, { target, kv: KV_FORMATS[0], batch: 16 }) : undefined;
      const nWin = windowCount(tokens.length, w);
      log(`eval: ${tokens.length} tokens, ${nWin} windows of ${w.ctx} (stride ${w.stride}), scoring positions ${scoredFrom(w)}..${w.ctx - 2} of each; ${engine.name}, ${target} build, KV ${kv.name}`);
      const bar = progress(nWin, 'eval');
      const t0 = performance.now();
      let r;
      try {
        r = evaluate(tokens, bos, w, runtimeSource(rt), rr && runtimeSource(rr), bar);
      } finally {
        bar.done();
        rt.close();
        rr?.close();
      }
      const seconds = (performance.now() - t0) / 1000;
      if (o.json) {
        process.stdout.write(JSON.stringify({
          ppl: r.ppl, kld: r.ref?.kld.mean ?? null, top1: r.ref?.top1 ?? null, tokens: r.tokens,
          nll: r.nll, windows: r.windows, ctx: r.ctx, stride: r.stride, scored_per_window: r.scoredPerWindow,
          kld_median: r.ref?.kld.median ?? null, kld_p99: r.ref?.kld.p99 ?? null, kld_max: r.ref?.kld.max ?? null,
          delta_p_mean: r.ref?.dpMean ?? null, ppl_ref: r.ref?.ppl ?? null, ln_ppl_ratio: r.ref?.lnPplRatio ?? null,
          engine: engine.name, target, kv: kv.name, act: o.act, keep_wo: rt.plan.keepWo, keep_w2: rt.plan.keepW2, quant: o.quant ?? null, seconds,
        }) + '\n');
        return;
      }
      const lines = [
        `perplexity: ${r.ppl.toFixed(4)} (mean NLL ${r.nll.toFixed(5)} nats) over ${r.tokens} tokens, ${r.windows} windows of ${r.ctx}, stride ${r.stride}, ${r.scoredPerWindow} scored a window`,
      ];
      if (r.ref) {
        lines.push(
          `reference perplexity: ${r.ref.ppl.toFixed(4)}; ln(PPL/PPL_ref): ${r.ref.lnPplRatio.toFixed(6)}`,
          `KL divergence: mean ${r.ref.kld.mean.toFixed(6)}, median ${r.ref.kld.median.toFixed(6)}, 99th percentile ${r.ref.kld.p99.toFixed(6)}, max ${r.ref.kld.max.toFixed(6)}`,
          `top-1 agreement: ${(100 * r.ref.top1).toFixed(3)} %`,
          `mean delta p (correct token): ${(100 * r.ref.dpMean).toFixed(4)} %`,
        );
      }
      process.stdout.write(lines.join('\n') + '\n');
    });
}
