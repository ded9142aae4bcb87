// f32 GEMM: y (n, m) = x (n, k) * w (m, k)^T, unquantized. Same signature as every kernel (wscale and xs
// are ignored). Accumulation order differs between the scalar and SIMD kernels, so the reference
// (host/quant/ref/float.ts, float64) is matched within a tolerance, not bit for bit.

// The scalar kernel sums in the SIMD kernel's order, to the bit: four lanes over i = 0, 4, 8, ... (lane
// j: w[i + j] * x[i + j]), then ((a0 + a1) + a2) + a3 and the tail in order, so both builds give the
// same tokens. Four independent chains instead of one (a compiler overlaps them once the app is
// translated to C: the AOT build) and a quarter of the loop's work per multiply-add (an interpreter
// runs fewer instructions per weight: pointers step by 16 bytes, the loads take immediate offsets).
export function gemm_f32_f32_naive(w: usize, wscale: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void {
  const k4 = k & ~3;
  for (let t = 0; t < n; t++) {
    const xt = x + ((<usize>t * <usize>k) << 2);
    const x4 = xt + (<usize>k4 << 2), xe = xt + (<usize>k << 2);
    for (let r = 0; r < m; r++) {
      let p = w + ((<usize>r * <usize>k) << 2);
      let q = xt;
      let a0: f32 = 0, a1: f32 = 0, a2: f32 = 0, a3: f32 = 0;
      while (q < x4) {
        a0 += load<f32>(p) * load<f32>(q);
        a1 += load<f32>(p, 4) * load<f32>(q, 4);
        a2 += load<f32>(p, 8) * load<f32>(q, 8);
        a3 += load<f32>(p, 12) * load<f32>(q, 12);
        p += 16;
        q += 16;
      }
      let acc: f32 = a0 + a1 + a2 + a3;
      while (q < xe) {
        acc += load<f32>(p) * load<f32>(q);
        p += 4;
        q += 4;
      }
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
