// Perplexity and KL divergence over a text, llama.cpp's `perplexity` method, on the WASM runtime
// (what a board runs). Windows of `ctx` tokens start every `stride` tokens of the token stream; the
// first token of each window is replaced by BOS; each window is evaluated from position 0, and only
// its second half is scored (predictions at positions ctx/2 .. ctx-2, of the window's own tokens) when
// stride = ctx, as llama.cpp does (n_ctx/2 - 1 tokens a window); with a stride below ctx, the last
// `stride` predictions of each window are scored, so consecutive windows score consecutive tokens.
// The text is tokenized one line at a time, each line starting with BOS: how the demo models' corpus
// was tokenized (tools/train/tokenizer.py).
import { UserError } from '../errors.ts';
import type { Progress } from '../log.ts';
import type { ModelRuntime } from '../model/runtime.ts';
import { TokenizerRef, type Tokenizer } from '../model/tokenizer.ts';
import { pushAll } from '../arrays.ts';
import { f32Matrix } from '../formats/llama2c.ts';
import { GGUF_MATRIX_NAMES } from '../formats/gguf.ts';
import { MATRIX_NAMES, matrixShape, type Matrix, type Model } from '../model/model.ts';
import { ReferenceModel } from '../model/reference.ts';

export interface EvalWindows {
  ctx: number;
  stride: number;
}

export function tokenizeText(text: string, tokenizer: Tokenizer): number[] {
  const tok = new TokenizerRef(tokenizer);
  const out: number[] = [];
  for (const line of text.split('\n')) {
    if (line.trim().length === 0) continue;
    pushAll(out, tok.encode(line, true, false));
  }
  return out;
}

// The positions of a window that are scored: [first, ctx - 1).
export function scoredFrom(w: EvalWindows): number {
  return w.stride >= w.ctx ? w.ctx >> 1 : Math.max(w.ctx - 1 - w.stride, 0);
}

export function windowCount(tokens: number, w: EvalWindows): number {
  return tokens < w.ctx ? 0 : Math.floor((tokens - w.ctx) / w.stride) + 1;
}

export function checkWindows(tokens: number, w: EvalWindows, modelCtx: number): void {
  if (!Number.isInteger(w.ctx) || w.ctx < 4) throw new UserError(`--ctx must be an integer of at least 4, got ${w.ctx}`);
  if (w.ctx > modelCtx) throw new UserError(`--ctx ${w.ctx} is larger than the model's context (${modelCtx})`);
  if (!Number.isInteger(w.stride) || w.stride < 1 || w.stride > w.ctx) throw new UserError(`--stride must be an integer in 1..${w.ctx} (the window), got ${w.stride}`);
  if (tokens === 0) throw new UserError('the text is empty: no tokens to evaluate');
  if (tokens < w.ctx) throw new UserError(`the text is ${tokens} tokens, shorter than one window of ${w.ctx}`, 'give a longer text or a smaller --ctx');
}

// log-softmax in float64
export function logSoftmax(logits: ArrayLike<number>): Float64Array {
  let mx = -Infinity;
  for (let i = 0; i < logits.length; i++) mx = Math.max(mx, logits[i]);
  let s = 0;
  for (let i = 0; i < logits.length; i++) s += Math.exp(logits[i] - mx);
  const lse = mx + Math.log(s);
  const out = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i++) out[i] = logits[i] - lse;
  return out;
}

function argmax(a: ArrayLike<number>): number {
  let b = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[b]) b = i;
  return b;
}

// Something that gives the logits of each position of a window: the runtime, or a reference.
export type LogitSource = (window: number[], first: number, each: (pos: number, logits: ArrayLike<number>) => void) => void;

// The runtime: the unscored prefix in one batched prefill, then one token a step (bit-identical to
// prefill, test/model.test.ts) to read each scored position's logits.
export function runtimeSource(rt: ModelRuntime): LogitSource {
  return (window, first, each) => {
    if (first > 0) rt.forward(window.slice(0, first), 0, false);
    for (let j = first; j < window.length - 1; j++) each(j, rt.forward([window[j]], j)!);
  };
}

export interface EvalResult {
  ppl: number;
  nll: number;           // mean negative log-likelihood (nats)
  tokens: number;        // scored tokens
  windows: number;
  ctx: number;
  stride: number;
  scoredPerWindow: number;
  ref?: {
    ppl: number;
    kld: { mean: number; median: number; p99: number; max: number };
    top1: number;          // fraction of positions where both argmaxes agree
    dpMean: number;        // mean of p_model(correct) - p_ref(correct)
    lnPplRatio: number;    // ln(ppl / ppl_ref)
  };
}

function quantile(sorted: Float64Array, q: number): number {
  // linear interpolation between closest ranks
  const x = q * (sorted.length - 1), i = Math.floor(x), f = x - i;
  return i + 1 < sorted.length ? sorted[i] * (1 - f) + sorted[i + 1] * f : sorted[i];
}

export function evaluate(tokens: number[], bos: number, w: EvalWindows, model: LogitSource, ref?: LogitSource, bar?: Progress): EvalResult {
  const nWin = windowCount(tokens.length, w);
  const first = scoredFrom(w);
  let nll = 0, nllRef = 0, n = 0, agree = 0, dp = 0;
  const klds: number[] = [];
  for (let k = 0; k < nWin; k++) {
    const s = k * w.stride;
    const window = tokens.slice(s, s + w.ctx);
    window[0] = bos;
    const mine: Float64Array[] = [];
    model(window, first, (j, logits) => {
      const lp = logSoftmax(logits);
      nll -= lp[window[j + 1]];
      n++;
      if (ref) mine[j] = lp;
    });
    if (ref) {
      ref(window, first, (j, logits) => {
        const lr = logSoftmax(logits), lp = mine[j], t = window[j + 1];
        nllRef -= lr[t];
        let kl = 0;
        for (let i = 0; i < lr.length; i++) {
          const p = Math.exp(lr[i]);
          if (p > 0) kl += p * (lr[i] - lp[i]);
        }
        klds.push(kl);
        if (argmax(lr) === argmax(lp)) agree++;
        dp += Math.exp(lp[t]) - Math.exp(lr[t]);
      });
    }
    bar?.tick(1);
  }
  const out: EvalResult = { ppl: Math.exp(nll / n), nll: nll / n, tokens: n, windows: nWin, ctx: w.ctx, stride: w.stride, scoredPerWindow: w.ctx - 1 - first };
  if (ref) {
    const sorted = Float64Array.from(klds).sort();
    const mean = klds.reduce((a, b) => a + b, 0) / klds.length;
    out.ref = {
      ppl: Math.exp(nllRef / n),
      kld: { mean, median: quantile(sorted, 0.5), p99: quantile(sorted, 0.99), max: sorted[sorted.length - 1] },
      top1: agree / n,
      dpMean: dp / n,
      lnPplRatio: nll / n - nllRef / n,
    };
  }
  return out;
}

// ---- quantize's check: does the quantized model still predict what the float one does? ----------

// The quantized model as a float model: every matrix quantize produced (values, by GGUF tensor name)
// in place of the float one.
export function withValues(model: Model, values: Map<string, Float64Array>): Model {
  const c = model.config;
  const swap = (name: string, t: Matrix, rows: number, cols: number): Matrix => {
    const v = values.get(name);
    return v ? f32Matrix(Float32Array.from(v), rows, cols) : t;
  };
  return {
    ...model,
    embedding: swap('token_embd.weight', model.embedding, c.vocabSize, c.dim),
    classifier: model.classifier && swap('output.weight', model.classifier, c.vocabSize, c.dim),
    layers: model.layers.map((l, i) => {
      const out = { ...l };
      for (const n of MATRIX_NAMES) out[n] = swap(`blk.${i}.${GGUF_MATRIX_NAMES[n]}.weight`, l[n], ...matrixShape(c, n));
      return out;
    }),
  };
}

// Top-1 agreement over `positions` of the float model's own text (sampled at temperature 1 from BOS
// with a fixed seed, so that no text file is needed): the share of positions where both models' most
// likely next token is the same. The host reference forward (f64), so any model size runs.
export function selfAgreement(float: Model, quant: Model, positions = 64, seed = 1): { top1: number; positions: number } {
  const a = new ReferenceModel(float), b = new ReferenceModel(quant);
  const n = Math.min(positions, float.config.seqLen);
  let s = seed >>> 0 || 1;
  const rand = () => ((s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0) / 2 ** 32);
  let token = float.tokenizer?.bos ?? 1, agree = 0;
  for (let pos = 0; pos < n; pos++) {
    const la = a.forward(token, pos), lb = b.forward(token, pos);
    if (argmax(la) === argmax(lb)) agree++;
    const p = Float64Array.from(logSoftmax(la), Math.exp);
    let r = rand(), next = p.length - 1;
    for (let i = 0; i < p.length; i++) if ((r -= p[i]) <= 0) { next = i; break; }
    token = next;
  }
  return { top1: agree / n, positions: n };
}
