// f32 GEMM: y (n, m) = x (n, k) * w (m, k)^T, unquantized. Same signature as every kernel (wscale and xs
// are ignored). Accumulation order differs between the scalar and SIMD kernels, so the reference
// (host/quant/ref/float.ts, float64) is matched within a tolerance, not bit for bit.

export function gemm_f32_f32_naive(w: usize, wscale: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void {
  for (let t = 0; t < n; t++) {
    const xt = x + ((<usize>t * <usize>k) << 2);
    for (let r = 0; r < m; r++) {
      const row = w + ((<usize>r * <usize>k) << 2);
      let acc: f32 = 0;
      for (let i = 0; i < k; i++) acc += load<f32>(row + (<usize>i << 2)) * load<f32>(xt + (<usize>i << 2));
      store<f32>(y + ((<usize>t * <usize>m + <usize>r) << 2), acc);
    }
  }
}

export function gemm_f32_f32_simd(w: usize, wscale: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void {
  if (ASC_FEATURE_SIMD) {
    const k4 = k & ~3;
    for (let t = 0; t < n; t++) {
      const xt = x + ((<usize>t * <usize>k) << 2);
      for (let r = 0; r < m; r++) {
        const row = w + ((<usize>r * <usize>k) << 2);
        let a = f32x4.splat(0);
        let i = 0;
        for (; i < k4; i += 4) a = f32x4.add(a, f32x4.mul(v128.load(row + (<usize>i << 2)), v128.load(xt + (<usize>i << 2))));
        let acc: f32 = f32x4.extract_lane(a, 0) + f32x4.extract_lane(a, 1) + f32x4.extract_lane(a, 2) + f32x4.extract_lane(a, 3);
        for (; i < k; i++) acc += load<f32>(row + (<usize>i << 2)) * load<f32>(xt + (<usize>i << 2));
        store<f32>(y + ((<usize>t * <usize>m + <usize>r) << 2), acc);
      }
    }
  } else {
    unreachable();
  }
}
