// The scalar reference for activation quantization (the spec of assembly/kernels/act.ts):
// per token, q = clamp(nearest_even(x * f32(qmax / absmax)), -qmax, qmax), scale = f32(absmax / qmax),
// every step rounded to f32 as WebAssembly does.
import { ACT_FORMATS, type ActFormatName } from '../formats.ts';
import type { ActTensor } from '../tensor.ts';

const f = Math.fround;

export function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export function quantizeAct(x: Float32Array, n: number, k: number, format: ActFormatName): ActTensor {
  if (format === 'f32') return { format, n, k, q: x, scales: new Float32Array(n).fill(1) };
  const qmax = ACT_FORMATS.find((a) => a.name === format)!.qmax;
  const q = new Int8Array(n * k);
  const scales = new Float32Array(n);
  for (let t = 0; t < n; t++) {
    let amax = 0;
    for (let i = 0; i < k; i++) amax = Math.max(amax, Math.abs(x[t * k + i]));
    if (amax === 0) continue;
    const iscale = f(qmax / amax);
    for (let i = 0; i < k; i++) {
      const v = roundHalfEven(f(x[t * k + i] * iscale));
      q[t * k + i] = Math.min(Math.max(v, -qmax), qmax);
    }
    scales[t] = f(amax / qmax);
  }
  return { format, n, k, q, scales };
}

// Top-K sparsification (BitNet a4.8's intermediate states; the spec of assembly/kernels/act.ts
// sparsify_topk): per token, the `keep` values of largest magnitude stay (ties at the keep-th
// magnitude go to the lower index), the others become +0; keep 0 (or >= k) keeps all. Magnitudes
// are the f32 bits without the sign, compared as integers (the order of |x|). Written as a sort, not
// the app's radix select.
export function sparsifyTopK(x: Float32Array, n: number, k: number, keep: number): Float32Array {
  const out = Float32Array.from(x);
  if (keep >= k || keep <= 0) return out;
  const bits = new Uint32Array(out.buffer);
  for (let t = 0; t < n; t++) {
    const order = Array.from({ length: k }, (_, i) => t * k + i);
    order.sort((a, b) => (bits[b] & 0x7fffffff) - (bits[a] & 0x7fffffff) || a - b);
    for (const i of order.slice(keep)) out[i] = 0;
  }
  return out;
}
