// Activation quantization, per token: symmetric absmax to int8 (BitNet b1.58) or int4 (BitNet a4.8).
// q = clamp(nearest_even(x * (qmax / absmax)), -qmax, qmax) in f32 arithmetic; scale = absmax / qmax.
// The scalar reference is host/quant/ref/act.ts; both must agree bit for bit.

// x: (n, k) f32 -> q: (n, k) i8, scales: (n) f32
export function quantize_act(x: usize, q: usize, scales: usize, n: i32, k: i32, qmax: i32): void {
  const fq = <f32>qmax;
  for (let t = 0; t < n; t++) {
    const row = x + (<usize>t * <usize>k << 2);
    let amax: f32 = 0;
    for (let i = 0; i < k; i++) amax = max(amax, abs(load<f32>(row + (<usize>i << 2))));
    const out = q + <usize>t * <usize>k;
    if (amax == 0) {
      for (let i = 0; i < k; i++) store<i8>(out + i, 0);
      store<f32>(scales + (<usize>t << 2), 0);
      continue;
    }
    const iscale: f32 = fq / amax;
    for (let i = 0; i < k; i++) {
      let v = nearest<f32>(load<f32>(row + (<usize>i << 2)) * iscale);
      v = min(max(v, -fq), fq);
      store<i8>(out + i, <i8>(<i32>v));
    }
    store<f32>(scales + (<usize>t << 2), amax / fq);
  }
}
