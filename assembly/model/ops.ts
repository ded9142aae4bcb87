// The small float operations of the forward pass, in f32 exactly as llama2.c's run.c writes them
// (same operation order, so greedy output matches run.c token for token).

// o (size) = weight * (x / rms(x)); run.c: ss = sum x^2; ss /= size; ss += eps; ss = 1 / sqrtf(ss)
export function rmsnorm(o: usize, x: usize, weight: usize, size: i32, eps: f32): void {
  let ss: f32 = 0;
  for (let j = 0; j < size; j++) {
    const v = load<f32>(x + (<usize>j << 2));
    ss += v * v;
  }
  ss /= <f32>size;
  ss += eps;
  ss = <f32>1.0 / Mathf.sqrt(ss);
  for (let j = 0; j < size; j++) {
    const at = <usize>j << 2;
    store<f32>(o + at, load<f32>(weight + at) * (ss * load<f32>(x + at)));
  }
}

// In-place softmax over x (size), as run.c (pointer loops: wasm3 runs every index computation).
export function softmax(x: usize, size: i32): void {
  const end = x + (<usize>size << 2);
  let mx = load<f32>(x);
  for (let p = x + 4; p < end; p += 4) mx = max(mx, load<f32>(p));
  let sum: f32 = 0;
  for (let p = x; p < end; p += 4) {
    const e = Mathf.exp(load<f32>(p) - mx);
    store<f32>(p, e);
    sum += e;
  }
  for (let p = x; p < end; p += 4) store<f32>(p, load<f32>(p) / sum);
}

// hb = silu(hb) * hb2 over size values (SwiGLU).
export function swiglu(hb: usize, hb2: usize, size: i32): void {
  for (let i = 0; i < size; i++) {
    const at = <usize>i << 2;
    let v = load<f32>(hb + at);
    v *= <f32>1.0 / (<f32>1.0 + Mathf.exp(-v));
    v *= load<f32>(hb2 + at);
    store<f32>(hb + at, v);
  }
}

// SwiGLU before a down projection whose input is quantized anyway (int8 or int4 codes): silu in f64,
// e^-v = 2^(-v log2 e) by a degree-6 polynomial on |r| <= 1/2 (within 2e-7, under f32's rounding),
// no call and no f32 arithmetic (wasm3 converts its f64 register on every f32 operation). f32 models
// keep swiglu above, run.c's arithmetic.
export function swigluQuantized(hb: usize, hb2: usize, size: i32): void {
  for (let i = 0; i < size; i++) {
    const at = <usize>i << 2;
    const v = <f64>load<f32>(hb + at);
    const y = min(max(v * -Math.LOG2E, -1000.0), 1000.0);
    const n = Math.floor(y + 0.5);
    const r = y - n;
    let p = 1.5403530393381608e-4;
    p = p * r + 1.3333558146428443e-3;
    p = p * r + 9.6181291076284772e-3;
    p = p * r + 5.5504108664821580e-2;
    p = p * r + 2.4022650695910071e-1;
    p = p * r + 6.9314718055994531e-1;
    p = p * r + 1.0;
    const e = p * reinterpret<f64>((<i64>n + 1023) << 52);
    store<f32>(hb + at, <f32>(v / (1.0 + e) * <f64>load<f32>(hb2 + at)));
  }
}

// x += y over size values.
export function addInto(x: usize, y: usize, size: i32): void {
  for (let i = 0; i < size; i++) {
    const at = <usize>i << 2;
    store<f32>(x + at, load<f32>(x + at) + load<f32>(y + at));
  }
}

export function zero(p: usize, bytes: usize): void {
  let i: usize = 0;
  for (; i + 8 <= bytes; i += 8) store<u64>(p + i, 0);
  for (; i < bytes; i++) store<u8>(p + i, 0);
}

export function copy(dst: usize, src: usize, bytes: usize): void {
  let i: usize = 0;
  for (; i + 8 <= bytes; i += 8) store<u64>(dst + i, load<u64>(src + i));
  for (; i < bytes; i++) store<u8>(dst + i, load<u8>(src + i));
}

// RoPE tables for one position: cos and sin of pos * freq_j, freq_j = 1 / theta^(2j / head_size),
// j < head_size / 2, computed in f32 as run.c does for every pair.
export function ropeTables(cosOut: usize, sinOut: usize, pos: i32, headSize: i32, theta: f32): void {
  for (let i = 0; i < headSize; i += 2) {
    const freq: f32 = <f32>1.0 / Mathf.pow(theta, <f32>i / <f32>headSize);
    const val: f32 = <f32>pos * freq;
    store<f32>(cosOut + (<usize>(i >> 1) << 2), Mathf.cos(val));
    store<f32>(sinOut + (<usize>(i >> 1) << 2), Mathf.sin(val));
  }
}

// Rotate pairs (i, i+1) of vec (size values) by the tables; pair i uses entry (i % head_size) / 2.
export function rope(vec: usize, size: i32, headSize: i32, cosT: usize, sinT: usize): void {
  for (let i = 0; i < size; i += 2) {
    const j = <usize>((i % headSize) >> 1) << 2;
    const fcr = load<f32>(cosT + j), fci = load<f32>(sinT + j);
    const a = vec + (<usize>i << 2);
    const v0 = load<f32>(a), v1 = load<f32>(a, 4);
    store<f32>(a, v0 * fcr - v1 * fci);
    store<f32>(a, v0 * fci + v1 * fcr, 4);
  }
}
