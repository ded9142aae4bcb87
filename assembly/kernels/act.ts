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

// Top-K sparsification (BitNet a4.8's intermediate states), in place, per token: of the k values of a
// row, the `keep` largest magnitudes stay and the rest become 0 (ties at the k-th magnitude go to the
// lower index); keep 0 (or >= k) keeps all. Magnitudes compare as integers: the f32 bits without the sign order like |x|, so the
// selection is exact and the same on every engine. The threshold (the keep-th largest) comes from a
// radix select, one 256-bin histogram (`hist`, 1 KiB of the caller's) per byte of the magnitude from
// the top: 5 passes over the row, no sort. The scalar reference is host/quant/ref/act.ts sparsifyTopK.
export const TOPK_HIST_BYTES: i32 = 256 * 4;

export function sparsify_topk(x: usize, n: i32, k: i32, stride: i32, keep: i32, hist: usize): void {
  if (keep >= k || keep <= 0) return;
  for (let t = 0; t < n; t++) {
    const row = x + (<usize>t * <usize>stride << 2);
    const end = row + (<usize>k << 2);
    let prefix: u32 = 0, mask: u32 = 0, need = keep;
    for (let shift: i32 = 24; shift >= 0; shift -= 8) {
      for (let b: usize = 0; b < 256 * 4; b += 8) store<u64>(hist + b, 0);
      for (let p = row; p < end; p += 4) {
        const m = load<u32>(p) & 0x7fffffff;
        if ((m & mask) == prefix) {
          const h = hist + (<usize>((m >> shift) & 255) << 2);
          store<i32>(h, load<i32>(h) + 1);
        }
      }
      // the digit of the keep-th largest among the candidates, counting down from 255
      let d: i32 = 255;
      for (; d > 0; d--) {
        const c = load<i32>(hist + (<usize>d << 2));
        if (c >= need) break;
        need -= c;
      }
      prefix |= <u32>d << shift;
      mask |= <u32>255 << shift;
    }
    // prefix is the keep-th largest magnitude; `need` of the values equal to it stay, lowest index first
    for (let p = row; p < end; p += 4) {
      const m = load<u32>(p) & 0x7fffffff;
      if (m > prefix) continue;
      if (m == prefix && need > 0) {
        need--;
        continue;
      }
      store<u32>(p, 0);
    }
  }
}
