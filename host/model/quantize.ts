// Weight matrices between formats of the table: dequantize to logical f32, quantize with padding to
// the format's block (columns) and row tile (rows), and `--quant` over a whole model.
import { UserError } from '../errors.ts';
import { formatByName, type WeightFormat } from '../quant/formats.ts';
import { REFS } from '../quant/ref/index.ts';
import { absmeanTernary, packTrits } from '../quant/ref/ternary.ts';
import { MATRIX_NAMES, matrixShape, type Matrix, type Model } from './model.ts';

export const roundUp = (v: number, m: number) => Math.ceil(v / m) * m;

export function rowTileOf(format: WeightFormat): number {
  return Math.max(format.rowTile ?? 1, ...format.kernels.map((k) => k.rowTile));
}

// The logical (rows, cols) f32 values of a matrix, padding cropped.
export function dequantize(t: Matrix, rows: number, cols: number): Float32Array {
  const ref = REFS[t.format.name];
  if (!ref) throw new UserError(`format ${t.format.name} has no reference to dequantize it`);
  const full = ref.dequantize(t);
  if (t.m === rows && t.k === cols) return full;
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) out.set(full.subarray(r * t.k, r * t.k + cols), r * cols);
  return out;
}

// Ternary weights already of the form scale * {-1, 0, +1} (a QAT export): their own scale, exactly.
// absmean would find mean|w| = scale * (fraction of non-zeros) and lose them.
export function exactTernary(w: Float32Array): { trits: Int8Array; scale: number } | null {
  let s = 0;
  for (let i = 0; i < w.length; i++) {
    const a = Math.abs(w[i]);
    if (a === 0) continue;
    if (s === 0) s = a;
    else if (a !== s) return null;
  }
  if (s === 0) return null;
  return { trits: Int8Array.from(w, (v) => Math.sign(v)), scale: s };
}

// Quantize logical (rows, cols) f32 weights into `format`, zero-padded to its block and row tile.
export function quantize(w: Float32Array, rows: number, cols: number, format: WeightFormat): Matrix {
  const ref = REFS[format.name];
  if (!ref) throw new UserError(`format ${format.name} has no reference quantizer`);
  const m = roundUp(rows, rowTileOf(format)), k = roundUp(cols, format.block);
  let padded = w;
  if (m !== rows || k !== cols) {
    padded = new Float32Array(m * k);
    for (let r = 0; r < rows; r++) padded.set(w.subarray(r * cols, (r + 1) * cols), r * k);
  }
  if (format.family === 'ternary') {
    const exact = exactTernary(w);
    const { trits, scale } = exact ?? absmeanTernary(w);
    let t = trits;
    if (m !== rows || k !== cols) {
      t = new Int8Array(m * k);
      for (let r = 0; r < rows; r++) t.set(trits.subarray(r * cols, (r + 1) * cols), r * k);
    }
    return packTrits(format, t, m, k, scale);
  }
  return ref.quantize(padded, m, k);
}

export function convert(t: Matrix, rows: number, cols: number, format: WeightFormat): Matrix {
  if (t.format.id === format.id) return t;
  return quantize(dequantize(t, rows, cols), rows, cols, format);
}

export interface QuantChoice {
  layers: WeightFormat | null;     // the seven layer matrices; null: keep
  classifier: WeightFormat | null; // the classifier (unshared, or split from a shared embedding)
}

// `--quant FORMAT`: the layer matrices in FORMAT. The embedding stays as loaded (the runtime reads
// one row a token, in f32 or q8_0; other formats become f32). The classifier follows `classifier`.
export function quantizeModel(model: Model, q: QuantChoice): Model {
  const c = model.config;
  const layers = model.layers.map((l) => {
    const out = { ...l };
    if (q.layers) for (const n of MATRIX_NAMES) {
      const [rows, cols] = matrixShape(c, n);
      out[n] = convert(l[n], rows, cols, q.layers);
    }
    return out;
  });
  let embedding = model.embedding;
  if (!embedding.format.embedding) {
    embedding = convert(embedding, c.vocabSize, c.dim, formatByName('f32')!);
  }
  let classifier = model.classifier;
  const clsFormat = q.classifier;
  if (clsFormat) {
    const src = classifier ?? model.embedding;
    const conv = convert(src, c.vocabSize, c.dim, clsFormat);
    classifier = conv === model.embedding ? null : conv;
  } else if (!classifier && embedding !== model.embedding) {
    classifier = model.embedding; // the embedding changed format; the classifier keeps the original
  }
  return { ...model, layers, embedding, classifier };
}
