// The sampler of llama2.c's run.c, on the host: the reference for the WASM sampler
// (assembly/model/sampler.ts), which is what runs (on a board the board samples). Same f32
// arithmetic, same xorshift64* generator, same top-p cutoff and sort (descending probability; ties
// keep index order, as glibc's merge-sort qsort does), so the same seed picks the same tokens.

const f = Math.fround;
const MASK64 = (1n << 64n) - 1n;

export interface SamplerSettings {
  temperature: number; // 0: greedy argmax
  topp: number;        // in (0, 1): nucleus sampling; otherwise plain multinomial
  seed: bigint;        // u64 state; run.c's CLI turns 0 into time(NULL)
}

// run.c's CLI handling of -t, -p, -s: negative temperature becomes 0, top-p outside [0, 1] becomes
// 0.9, seed (atoi, then to unsigned long long) 0 becomes the time in seconds.
export function samplerFromCli(temperature: number, topp: number, seed: number, now = Date.now()): SamplerSettings {
  let t = f(temperature), p = f(topp);
  if (t < 0) t = 0;
  if (p < 0 || p > 1) p = f(0.9);
  let s = BigInt.asUintN(64, BigInt(seed | 0));
  if (s === 0n) s = BigInt(Math.floor(now / 1000) >>> 0);
  return { temperature: t, topp: p, seed: s };
}

export class SamplerRef {
  state: bigint;

  constructor(readonly s: SamplerSettings) {
    this.state = s.seed & MASK64;
  }

  randomU32(): number {
    let x = this.state;
    x ^= x >> 12n;
    x ^= (x << 25n) & MASK64;
    x ^= x >> 27n;
    this.state = x;
    return Number(((x * 0x2545f4914f6cdd1dn) & MASK64) >> 32n);
  }

  randomF32(): number {
    return f((this.randomU32() >>> 8) / 16777216);
  }

  // Samples from (and overwrites, like run.c) f32 logits.
  sample(logits: Float32Array): number {
    const n = logits.length;
    if (this.s.temperature === 0) return argmax(logits);
    for (let i = 0; i < n; i++) logits[i] = f(logits[i] / this.s.temperature);
    softmax(logits, n);
    const coin = this.randomF32();
    if (this.s.topp <= 0 || this.s.topp >= 1) return sampleMult(logits, coin);
    return sampleTopp(logits, this.s.topp, coin);
  }
}

export function argmax(p: ArrayLike<number>): number {
  let best = 0, max = p[0];
  for (let i = 1; i < p.length; i++) if (p[i] > max) { best = i; max = p[i]; }
  return best;
}

// run.c's softmax in f32 (expf is rounded to f32 like the WASM Mathf.exp).
export function softmax(x: Float32Array, size: number): void {
  let max = x[0];
  for (let i = 1; i < size; i++) if (x[i] > max) max = x[i];
  let sum = 0;
  for (let i = 0; i < size; i++) {
    x[i] = f(Math.exp(f(x[i] - max)));
    sum = f(sum + x[i]);
  }
  for (let i = 0; i < size; i++) x[i] = f(x[i] / sum);
}

export function sampleMult(p: Float32Array, coin: number): number {
  let cdf = 0;
  for (let i = 0; i < p.length; i++) {
    cdf = f(cdf + p[i]);
    if (coin < cdf) return i;
  }
  return p.length - 1;
}

export function sampleTopp(p: Float32Array, topp: number, coin: number): number {
  const n = p.length;
  const cutoff = f(f(1 - topp) / (n - 1));
  const idx: number[] = [];
  for (let i = 0; i < n; i++) if (p[i] >= cutoff) idx.push(i);
  idx.sort((a, b) => p[b] - p[a] || a - b);
  let cum = 0, last = idx.length - 1;
  for (let i = 0; i < idx.length; i++) {
    cum = f(cum + p[idx[i]]);
    if (cum > topp) { last = i; break; }
  }
  const r = f(coin * cum);
  let cdf = 0;
  for (let i = 0; i <= last; i++) {
    cdf = f(cdf + p[idx[i]]);
    if (r < cdf) return idx[i];
  }
  return idx[last];
}
