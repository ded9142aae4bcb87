// f32 GEMM: y (n, m) = x (n, k) * w (m, k)^T, unquantized. Same signature as every kernel (wscale and xs
// are ignored). Accumulation order differs between the scalar and SIMD kernels, so the reference
// (host/quant/ref/float.ts, float64) is matched within a tolerance, not bit for bit.
//
// The scalar kernel sums every row in llama2.c run.c's order (acc += w[i] * x[i], i ascending, in
// f32), so f32 models decode run.c's tokens bit for bit. Its shape is for wasm3, which runs one
// operation per wasm instruction with a single float register: eight rows at a time share each loaded
// x (one load into a local serves eight multiply-adds), each row walks its own pointer with constant
// load offsets (no index arithmetic per element), four x per loop turn, the test at the bottom. Under
// wasm3 that is ~4.7 operations per multiply-add against ~14 for an indexed one-row loop and ~10 for
// clang -O3's code of run.c's matmul (measured with wasm3's op profiler).

export function gemm_f32_f32_naive(w: usize, wscale: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void {
  const kb = <usize>k << 2;
  for (let t = 0; t < n; t++) gemvF32(w, x + <usize>t * kb, y + ((<usize>t * <usize>m) << 2), m, kb);
}

// y (m) = w (m rows of kb bytes) * x (kb bytes), each row summed in order.
function gemvF32(w: usize, x: usize, y: usize, m: i32, kb: usize): void {
  const end4 = x + (kb & ~(<usize>15)), end = x + kb;
  let p0 = w;
  let r = 0;
  for (; r + 8 <= m; r += 8) {
    let p1 = p0 + kb, p2 = p1 + kb, p3 = p2 + kb, p4 = p3 + kb, p5 = p4 + kb, p6 = p5 + kb, p7 = p6 + kb;
    let a0: f32 = 0, a1: f32 = 0, a2: f32 = 0, a3: f32 = 0, a4: f32 = 0, a5: f32 = 0, a6: f32 = 0, a7: f32 = 0;
    let q = x;
    if (q < end4) {
      do {
        let v = load<f32>(q);
        a0 += load<f32>(p0) * v; a1 += load<f32>(p1) * v; a2 += load<f32>(p2) * v; a3 += load<f32>(p3) * v;
        a4 += load<f32>(p4) * v; a5 += load<f32>(p5) * v; a6 += load<f32>(p6) * v; a7 += load<f32>(p7) * v;
        v = load<f32>(q, 4);
        a0 += load<f32>(p0, 4) * v; a1 += load<f32>(p1, 4) * v; a2 += load<f32>(p2, 4) * v; a3 += load<f32>(p3, 4) * v;
        a4 += load<f32>(p4, 4) * v; a5 += load<f32>(p5, 4) * v; a6 += load<f32>(p6, 4) * v; a7 += load<f32>(p7, 4) * v;
        v = load<f32>(q, 8);
        a0 += load<f32>(p0, 8) * v; a1 += load<f32>(p1, 8) * v; a2 += load<f32>(p2, 8) * v; a3 += load<f32>(p3, 8) * v;
        a4 += load<f32>(p4, 8) * v; a5 += load<f32>(p5, 8) * v; a6 += load<f32>(p6, 8) * v; a7 += load<f32>(p7, 8) * v;
        v = load<f32>(q, 12);
        a0 += load<f32>(p0, 12) * v; a1 += load<f32>(p1, 12) * v; a2 += load<f32>(p2, 12) * v; a3 += load<f32>(p3, 12) * v;
        a4 += load<f32>(p4, 12) * v; a5 += load<f32>(p5, 12) * v; a6 += load<f32>(p6, 12) * v; a7 += load<f32>(p7, 12) * v;
        p0 += 16; p1 += 16; p2 += 16; p3 += 16; p4 += 16; p5 += 16; p6 += 16; p7 += 16;
        q += 16;
      } while (q < end4);
    }
    while (q < end) {
      const v = load<f32>(q);
      a0 += load<f32>(p0) * v; a1 += load<f32>(p1) * v; a2 += load<f32>(p2) * v; a3 += load<f32>(p3) * v;
      a4 += load<f32>(p4) * v; a5 += load<f32>(p5) * v; a6 += load<f32>(p6) * v; a7 += load<f32>(p7) * v;
      p0 += 4; p1 += 4; p2 += 4; p3 += 4; p4 += 4; p5 += 4; p6 += 4; p7 += 4;
      q += 4;
    }
    store<f32>(y, a0); store<f32>(y, a1, 4); store<f32>(y, a2, 8); store<f32>(y, a3, 12);
    store<f32>(y, a4, 16); store<f32>(y, a5, 20); store<f32>(y, a6, 24); store<f32>(y, a7, 28);
    y += 32;
    p0 = p7; // the end of row r+7 is the start of row r+8
  }
  for (; r < m; r++) {
    let acc: f32 = 0;
    let q = x;
    if (q < end4) {
      do {
        acc += load<f32>(p0) * load<f32>(q);
        acc += load<f32>(p0, 4) * load<f32>(q, 4);
        acc += load<f32>(p0, 8) * load<f32>(q, 8);
        acc += load<f32>(p0, 12) * load<f32>(q, 12);
        p0 += 16;
        q += 16;
      } while (q < end4);
    }
    while (q < end) {
      acc += load<f32>(p0) * load<f32>(q);
      p0 += 4;
      q += 4;
    }
    store<f32>(y, acc);
    y += 4;
  }
}

// f32p8 (docs/formats.md): the same product with w in panels of 8 rows, [row / 8][k][8], the last
// m mod 8 rows row by row. Each row is summed in run.c's order, as gemm_f32_f32_naive sums it (the
// same bits). Per x one pointer and eight consecutive floats: constant load offsets under wasm3, and
// after wasm2c eight independent sums over adjacent loads that a C compiler's SLP vectorizer turns
// into one 256-bit multiply and add per x, with no reassociation (each lane is one row's chain).
export function gemm_f32p8_f32_naive(w: usize, wscale: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void {
  const kb = <usize>k << 2;
  for (let t = 0; t < n; t++) gemvF32P8(w, x + <usize>t * kb, y + ((<usize>t * <usize>m) << 2), m, kb);
}

// Inlined: after wasm2c, boards/runtime/aot-gen.sh gives the exported kernel one range check per call
// (its loops then load with no check of their own, which lets a C compiler vectorize them).
@inline
function gemvF32P8(w: usize, x: usize, y: usize, m: i32, kb: usize): void {
  const end = x + kb;
  let p = w;
  let r = 0;
  for (; r + 8 <= m; r += 8) {
    let a0: f32 = 0, a1: f32 = 0, a2: f32 = 0, a3: f32 = 0, a4: f32 = 0, a5: f32 = 0, a6: f32 = 0, a7: f32 = 0;
    let q = x;
    if (q < end) {
      do {
        const v = load<f32>(q);
        a0 += load<f32>(p) * v; a1 += load<f32>(p, 4) * v; a2 += load<f32>(p, 8) * v; a3 += load<f32>(p, 12) * v;
        a4 += load<f32>(p, 16) * v; a5 += load<f32>(p, 20) * v; a6 += load<f32>(p, 24) * v; a7 += load<f32>(p, 28) * v;
        p += 32;
        q += 4;
      } while (q < end);
    }
    store<f32>(y, a0); store<f32>(y, a1, 4); store<f32>(y, a2, 8); store<f32>(y, a3, 12);
    store<f32>(y, a4, 16); store<f32>(y, a5, 20); store<f32>(y, a6, 24); store<f32>(y, a7, 28);
    y += 32;
  }
  // the last m mod 8 rows, row by row
  for (; r < m; r++) {
    let acc: f32 = 0;
    let q = x;
    while (q < end) {
      acc += load<f32>(p) * load<f32>(q);
      p += 4;
      q += 4;
    }
    store<f32>(y, acc);
    y += 4;
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
