// A measurement, not part of the app: does a GEMV over the kept inputs only (BitNet a4.8's top-K
// intermediate states) beat tb1's dense bit-serial GEMV? Built as build/sparse-gemv.wasm by
// tools/eval/sparse-gemv.ts with the device target's features, beside the app's own tb1 kernels.
export { arena_reset, arena_top, arena_alloc } from '../arena';
export { gemm_tb1_i8_bitserial, gemm_tb1_i8_naive } from '../kernels/ternary';

const TB1_BYTES: usize = 16; // per 64 weights: u64 plus mask, u64 minus mask

// y (m) = wscale * xs * sum over the nk kept inputs idx[j] of w[r, idx[j]] * x[idx[j]] (tb1 rows of k).
export function gemv_tb1_i8_kept(w: usize, wscale: f32, x: usize, xs: usize, idx: usize, nk: i32, y: usize, m: i32, k: i32): void {
  const rowBytes = <usize>(k >> 6) * TB1_BYTES;
  const s = wscale * load<f32>(xs);
  const end = idx + (<usize>nk << 2);
  for (let r = 0; r < m; r++) {
    const row = w + <usize>r * rowBytes;
    let acc: i32 = 0;
    for (let p = idx; p < end; p += 4) {
      const i = load<u32>(p);
      const blk = row + (<usize>(i >> 6) << 4);
      const bit = <u64>(i & 63);
      const wi = <i32>((load<u64>(blk) >> bit) & 1) - <i32>((load<u64>(blk, 8) >> bit) & 1);
      acc += wi * <i32>load<i8>(x + <usize>i);
    }
    store<f32>(y + (<usize>r << 2), <f32>acc * s);
  }
}
