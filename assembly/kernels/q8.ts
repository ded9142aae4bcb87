// Q8_0 kernels (as ggml's): blocks of 32 weights, f32 d then 32 x i8 q, w = d*q. The epilogue is the
// reference's (host/quant/ref/q8.ts), so both kernels are bit-exact:
//   per block: iq = sum q*x (exact i32); acc = acc + d*iq; y = acc * xs[t].

import { FMT_Q8_0_BLOCK, FMT_Q8_0_BLOCK_BYTES, FMT_Q8_0_Q } from './formats.gen';

const QK: i32 = FMT_Q8_0_BLOCK;
const BYTES: usize = <usize>FMT_Q8_0_BLOCK_BYTES;
const Q: usize = <usize>FMT_Q8_0_Q; // the codes follow the f32 scale

@inline function store_y(y: usize, xs: usize, m: i32, t: i32, r: i32, acc: f32): void {
  store<f32>(y + ((<usize>t * <usize>m + <usize>r) << 2), acc * load<f32>(xs + (<usize>t << 2)));
}

// Four products per step from one u32 of weights and one of activations (bytes sign-extended by shifts).
export function gemm_q8_0_i8_naive(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void {
  const nb = k / QK;
  for (let r = 0; r < m; r++) {
    for (let t = 0; t < n; t++) {
      let blk = w + <usize>r * <usize>nb * BYTES;
      let xb = x + <usize>t * <usize>k;
      let acc: f32 = 0;
      for (let b = 0; b < nb; b++) {
        let iq: i32 = 0;
        for (let i = 0; i < QK; i += 4) {
          const q = load<u32>(blk + Q + i), v = load<u32>(xb + i);
          iq += (<i32>(q << 24) >> 24) * (<i32>(v << 24) >> 24) + (<i32>(q << 16) >> 24) * (<i32>(v << 16) >> 24) +
            (<i32>(q << 8) >> 24) * (<i32>(v << 8) >> 24) + (<i32>q >> 24) * (<i32>v >> 24);
        }
        acc = acc + load<f32>(blk) * <f32>iq;
        blk += BYTES;
        xb += QK;
      }
      store_y(y, xs, m, t, r, acc);
    }
  }
}

// SIMD: 32 products per block by i16x8.extmul (|q*x| <= 127*127, so each pair is widened to i32 at once).
export function gemm_q8_0_i8_simd(w: usize, ws: f32, x: usize, xs: usize, y: usize, m: i32, k: i32, n: i32): void {
  if (ASC_FEATURE_SIMD) {
    const nb = k / QK;
    for (let r = 0; r < m; r++) {
      for (let t = 0; t < n; t++) {
        let blk = w + <usize>r * <usize>nb * BYTES;
        let xb = x + <usize>t * <usize>k;
        let acc: f32 = 0;
        for (let b = 0; b < nb; b++) {
          const w0 = v128.load(blk, FMT_Q8_0_Q), w1 = v128.load(blk, FMT_Q8_0_Q + 16);
          const x0 = v128.load(xb), x1 = v128.load(xb, 16);
          const v = i32x4.add(
            i32x4.add(i32x4.extadd_pairwise_i16x8_s(i16x8.extmul_low_i8x16_s(w0, x0)), i32x4.extadd_pairwise_i16x8_s(i16x8.extmul_high_i8x16_s(w0, x0))),
            i32x4.add(i32x4.extadd_pairwise_i16x8_s(i16x8.extmul_low_i8x16_s(w1, x1)), i32x4.extadd_pairwise_i16x8_s(i16x8.extmul_high_i8x16_s(w1, x1))));
          acc = acc + load<f32>(blk) * <f32>(i32x4.extract_lane(v, 0) + i32x4.extract_lane(v, 1) + i32x4.extract_lane(v, 2) + i32x4.extract_lane(v, 3));
          blk += BYTES;
          xb += QK;
        }
        store_y(y, xs, m, t, r, acc);
      }
    }
  } else {
    unreachable();
  }
}
