// Float64 dense kernels of the calibration forward and TesseraQ's block backward: one product,
// C = A B^T with both operands row-major and K contiguous, in 2 x 4 register tiles (six loads feed
// eight multiply-adds, against two loads per one in a plain dot product), and a transpose, so every
// other product (dY W, dY^T X) is this one on transposed operands. The summation order is fixed
// (k ascending per output), so results are reproducible run to run.

// C (na, nb) = A (na, K) B (nb, K)^T, or C += that with `accumulate`.
export function matmulABt(A: Float64Array, B: Float64Array, na: number, nb: number, K: number, C: Float64Array, accumulate = false): Float64Array {
  let a = 0;
  for (; a + 1 < na; a += 2) {
    const a0 = a * K, a1 = a0 + K, c0 = a * nb, c1 = c0 + nb;
    let b = 0;
    for (; b + 3 < nb; b += 4) {
      const b0 = b * K, b1 = b0 + K, b2 = b1 + K, b3 = b2 + K;
      let s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
      for (let k = 0; k < K; k++) {
        const x0 = A[a0 + k], x1 = A[a1 + k];
        const w0 = B[b0 + k], w1 = B[b1 + k], w2 = B[b2 + k], w3 = B[b3 + k];
        s00 += x0 * w0; s01 += x0 * w1; s02 += x0 * w2; s03 += x0 * w3;
        s10 += x1 * w0; s11 += x1 * w1; s12 += x1 * w2; s13 += x1 * w3;
      }
      if (accumulate) {
        C[c0 + b] += s00; C[c0 + b + 1] += s01; C[c0 + b + 2] += s02; C[c0 + b + 3] += s03;
        C[c1 + b] += s10; C[c1 + b + 1] += s11; C[c1 + b + 2] += s12; C[c1 + b + 3] += s13;
      } else {
        C[c0 + b] = s00; C[c0 + b + 1] = s01; C[c0 + b + 2] = s02; C[c0 + b + 3] = s03;
        C[c1 + b] = s10; C[c1 + b + 1] = s11; C[c1 + b + 2] = s12; C[c1 + b + 3] = s13;
      }
    }
    for (; b < nb; b++) {
      const b0 = b * K;
      let s0 = 0, s1 = 0;
      for (let k = 0; k < K; k++) { const w = B[b0 + k]; s0 += A[a0 + k] * w; s1 += A[a1 + k] * w; }
      if (accumulate) { C[c0 + b] += s0; C[c1 + b] += s1; } else { C[c0 + b] = s0; C[c1 + b] = s1; }
    }
  }
  if (a < na) {
    const a0 = a * K, c0 = a * nb;
    for (let b = 0; b < nb; b++) {
      const b0 = b * K;
      let s = 0;
      for (let k = 0; k < K; k++) s += A[a0 + k] * B[b0 + k];
      if (accumulate) C[c0 + b] += s; else C[c0 + b] = s;
    }
  }
  return C;
}

// out (cols, rows) = x (rows, cols)^T, in 16 x 16 tiles (a third faster than row by row at 256 x 172)
export function transpose(x: Float64Array, rows: number, cols: number, out = new Float64Array(rows * cols)): Float64Array {
  const S = 16;
  for (let r0 = 0; r0 < rows; r0 += S) {
    const r1 = Math.min(rows, r0 + S);
    for (let c0 = 0; c0 < cols; c0 += S) {
      const c1 = Math.min(cols, c0 + S);
      for (let r = r0; r < r1; r++) {
        const o = r * cols;
        for (let c = c0; c < c1; c++) out[c * rows + r] = x[o + c];
      }
    }
  }
  return out;
}
