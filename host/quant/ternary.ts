// BitNet b1.58's absmean ternary quantizer, post-training: one scale per tensor, s = mean |W|
// (host/quant/ref/ternary.ts absmeanTernary), w = s * clamp(round(W / s), -1, 1). Written as the
// table's tq2 / tq1 / tb1 (extension types, scale in metadata) or ggml's TQ2_0 / TQ1_0 (per 256-block
// f16 d, all equal to the f16-rounded tensor scale, so the GGUF reader recovers the tensor scale).
import { f16ToF32, f32ToF16 } from '../formats/bytes.ts';
import { EF_TYPE_BASE, GGML, quantizeGgml } from '../formats/gguf.ts';
import { formatByName } from './formats.ts';
import { absmeanTernary, packTrits } from './ref/ternary.ts';
import type { Scheme } from './scheme.ts';

const f = Math.fround;
export const TERNARY_NAMES = ['tq2', 'tq1', 'tb1', 'tq2_0', 'tq1_0'] as const;

// The scheme for one tensor w (its scale is the tensor's absmean); codes are trit + 1.
export function ternaryScheme(name: string, w: Float32Array, k: number): Scheme {
  const ggml = name === 'tq2_0' ? GGML.TQ2_0 : name === 'tq1_0' ? GGML.TQ1_0 : undefined;
  const format = ggml === undefined ? formatByName(name) : undefined;
  if (ggml === undefined && (!format || format.family !== 'ternary' || (format.rowTile ?? 1) > 1)) throw new Error(`no ternary format ${name}`);
  let scale = absmeanTernary(w).scale;
  if (ggml !== undefined) scale = f16ToF32(f32ToF16(scale));
  const p = { d: scale, m: 0, sel: 0 };
  return {
    name, group: k, bitsPerWeight: ggml === GGML.TQ2_0 ? 66 * 8 / 256 : ggml === GGML.TQ1_0 ? 54 * 8 / 256 : (format!.blockBytes * 8) / format!.block,
    fit: () => p,
    code: (v) => 1 + Math.max(-1, Math.min(1, Math.round(v / scale))),
    value: (q) => f((q - 1) * scale),
    encode(codes, _params, rows, kk) {
      if (ggml !== undefined) {
        const vals = Float32Array.from(codes, (q) => f((q - 1) * scale));
        return { type: ggml, bytes: quantizeGgml(ggml, vals), k: kk };
      }
      const t = packTrits(format!, Int8Array.from(codes, (q) => q - 1), rows, kk, scale);
      return { type: EF_TYPE_BASE + format!.id, bytes: t.data, k: kk, format, scale };
    },
  };
}
