// The sampler of llama2.c's run.c, on the device (the board samples its own tokens): greedy argmax
// at temperature 0; otherwise logits / temperature, softmax, one f32 coin from the xorshift64*
// generator, then multinomial sampling, or top-p when 0 < topp < 1: candidates with probability >=
// (1 - topp) / (n - 1), sorted by descending probability (ties by index, as glibc's stable qsort),
// cut where the cumulative probability first exceeds topp. Host mirror: host/model/sampler.ts.
import { arena_alloc } from '../arena';
import { softmax } from './ops';

let rng: u64 = 0;
let temperature: f32 = 0;
let topp: f32 = 0;
let probIndex: usize = 0; // (vocab) of { f32 prob, i32 index }
let probCap: i32 = 0;

export function samplerReserve(vocab: i32, withTopp: bool): bool {
  probIndex = 0;
  probCap = 0;
  if (!withTopp) return true;
  probIndex = arena_alloc(<u32>vocab << 3);
  probCap = vocab;
  return probIndex != 0;
}

export function sampler_init(t: f32, p: f32, seed: u64): void {
  temperature = t;
  topp = p;
  rng = seed;
}

export function sampler_state(): u64 {
  return rng;
}

function randomU32(): u32 {
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  return <u32>((rng * 0x2545F4914F6CDD1D) >> 32);
}

function randomF32(): f32 {
  return <f32>(randomU32() >> 8) / <f32>16777216.0;
}

function argmax(p: usize, n: i32): i32 {
  let best = 0;
  let mx = load<f32>(p);
  for (let i = 1; i < n; i++) {
    const v = load<f32>(p + (<usize>i << 2));
    if (v > mx) { best = i; mx = v; }
  }
  return best;
}

function sampleMult(p: usize, n: i32, coin: f32): i32 {
  let cdf: f32 = 0;
  for (let i = 0; i < n; i++) {
    cdf += load<f32>(p + (<usize>i << 2));
    if (coin < cdf) return i;
  }
  return n - 1;
}

@inline function prob(i: i32): f32 { return load<f32>(probIndex + (<usize>i << 3)); }
@inline function index(i: i32): i32 { return load<i32>(probIndex + (<usize>i << 3), 4); }
// entry a sorts after entry b: lower probability, or equal and higher index
@inline function after(a: i32, b: i32): bool {
  const pa = prob(a), pb = prob(b);
  return pa < pb || (pa == pb && index(a) > index(b));
}
@inline function swap(a: i32, b: i32): void {
  const pa = probIndex + (<usize>a << 3), pb = probIndex + (<usize>b << 3);
  const t = load<u64>(pa);
  store<u64>(pa, load<u64>(pb));
  store<u64>(pb, t);
}

function siftDown(start: i32, end: i32): void {
  let root = start;
  for (;;) {
    let child = 2 * root + 1;
    if (child >= end) return;
    if (child + 1 < end && after(child + 1, child)) child++;
    if (!after(child, root)) return;
    swap(root, child);
    root = child;
  }
}

// heapsort into sorting order (the keys are unique, so the result equals a stable sort's)
function sortCandidates(n: i32): void {
  for (let i = (n >> 1) - 1; i >= 0; i--) siftDown(i, n);
  for (let end = n - 1; end > 0; end--) {
    swap(0, end);
    siftDown(0, end);
  }
}

function sampleTopp(p: usize, n: i32, coin: f32): i32 {
  let n0 = 0;
  const cutoff: f32 = (<f32>1.0 - topp) / <f32>(n - 1);
  for (let i = 0; i < n; i++) {
    const v = load<f32>(p + (<usize>i << 2));
    if (v >= cutoff) {
      store<f32>(probIndex + (<usize>n0 << 3), v);
      store<i32>(probIndex + (<usize>n0 << 3), i, 4);
      n0++;
    }
  }
  sortCandidates(n0);
  let cum: f32 = 0;
  let last = n0 - 1;
  for (let i = 0; i < n0; i++) {
    cum += prob(i);
    if (cum > topp) { last = i; break; }
  }
  const r = coin * cum;
  let cdf: f32 = 0;
  for (let i = 0; i <= last; i++) {
    cdf += prob(i);
    if (r < cdf) return index(i);
  }
  return index(last);
}

// Sample a token from n logits at p (overwritten, as in run.c). -1: top-p without its buffer.
export function sampler_sample(p: usize, n: i32): i32 {
  if (temperature == 0) return argmax(p, n);
  for (let i = 0; i < n; i++) store<f32>(p + (<usize>i << 2), load<f32>(p + (<usize>i << 2)) / temperature);
  softmax(p, n);
  const coin = randomF32();
  if (topp <= 0 || topp >= 1) return sampleMult(p, n, coin);
  if (probCap < n) return -1;
  return sampleTopp(p, n, coin);
}
