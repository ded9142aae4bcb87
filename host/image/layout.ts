// Which tensors an image holds, in which order, and how the image is laid out: shared by the writer,
// the reader and the memory planner, so the planner's image size is the writer's to the byte.
import type { ModelConfig } from '../model/config.ts';
import { headDim, kvDim } from '../model/config.ts';
import { rowTileOf } from '../model/quantize.ts';
import { matrixBytes, type WeightFormat } from '../quant/formats.ts';
import * as D from '../model/desc.ts';
import {
  CONFIG_BYTES, DIGEST_BYTES, HEADER_BYTES, KIND, SECTION_ENTRY_BYTES, SIGNATURE_TRAILER_BYTES, TENSOR_ALIGN,
  TENSOR_ENTRY_BYTES, WEIGHTS_HEADER_BYTES, alignUp, sectionKind, type ImageActName, type KvFormatName,
} from './format.ts';

// A matrix is stored as the runtime's kernels read it (host/model/model.ts Matrix): columns padded
// with zero weights to whole blocks (the 260K model's ffn_down has K = 172) and rows padded with zero
// rows to the format's row tile (tt4: 16). The directory keeps the model's (rows, cols).
export function paddedK(f: WeightFormat, k: number): number {
  return Math.ceil(k / f.block) * f.block;
}

export function paddedM(f: WeightFormat, m: number): number {
  const t = rowTileOf(f);
  return Math.ceil(m / t) * t;
}

export function tensorBytes(f: WeightFormat, m: number, k: number): number {
  return matrixBytes(f, paddedM(f, m), paddedK(f, k));
}

// The model configuration as an image carries it: llama2.c's header plus what the board runs with.
export interface ImageConfig extends ModelConfig {
  ctx: number;                 // KV cache length the image is planned for (<= seqLen)
  kv: KvFormatName;
  act: ImageActName;
  normEps: number;
  ropeTheta: number;
  plannedLinear: number;       // the plan's arena high-water mark (0: not planned)
  linearLimit: number;         // the linear memory it was planned to fit (0: no limit)
  batch: number;               // the prefill width planned (0: not planned)
  textBytes: number;           // the app's prompt buffer in bytes
}

export type TensorRole = 'embedding' | 'norm' | 'matrix' | 'classifier';

export interface TensorSpec {
  name: string;
  m: number;                   // rows (outputs)
  k: number;                   // columns (inputs)
  layer: number | null;
  role: TensorRole;
}

// The tensors of a llama model in image order (names as GGUF's, without '.weight'). Each layer's
// tensors are contiguous, so a board streams one layer with one flash read.
export function modelTensors(c: ModelConfig): TensorSpec[] {
  const kv = kvDim(c);
  const out: TensorSpec[] = [{ name: 'token_embd', m: c.vocabSize, k: c.dim, layer: null, role: 'embedding' }];
  for (let l = 0; l < c.nLayers; l++) {
    const t = (name: string, m: number, k: number, role: TensorRole = 'matrix') => out.push({ name: `blk.${l}.${name}`, m, k, layer: l, role });
    t('attn_norm', 1, c.dim, 'norm');       // (dim) RMSNorm weight before attention
    t('attn_q', c.dim, c.dim);              // (dim, dim)
    t('attn_k', kv, c.dim);                 // (kv_dim, dim)
    t('attn_v', kv, c.dim);                 // (kv_dim, dim)
    t('attn_output', c.dim, c.dim);         // (dim, dim)
    t('ffn_norm', 1, c.dim, 'norm');        // (dim)
    t('ffn_gate', c.hiddenDim, c.dim);      // w1 (hidden, dim)
    t('ffn_down', c.dim, c.hiddenDim);      // w2 (dim, hidden)
    t('ffn_up', c.hiddenDim, c.dim);        // w3 (hidden, dim)
  }
  out.push({ name: 'output_norm', m: 1, k: c.dim, layer: null, role: 'norm' });
  if (!c.sharedClassifier) out.push({ name: 'output', m: c.vocabSize, k: c.dim, layer: null, role: 'classifier' });
  return out;
}

// What is wrong with a configuration, or undefined. Bounds keep every size below 2^32.
export function configProblem(c: ImageConfig): string | undefined {
  const ints: Array<[string, number, number]> = [
    ['dim', c.dim, 1 << 16], ['hidden_dim', c.hiddenDim, 1 << 18], ['n_layers', c.nLayers, 1024], ['n_heads', c.nHeads, 1024],
    ['n_kv_heads', c.nKvHeads, 1024], ['vocab_size', c.vocabSize, 1 << 20], ['seq_len', c.seqLen, 1 << 20], ['ctx', c.ctx, 1 << 20],
  ];
  for (const [name, v, max] of ints) {
    if (!Number.isInteger(v) || v < 1 || v > max) return `${name} is ${v}, expected an integer in 1..${max}`;
  }
  if (c.dim % c.nHeads !== 0) return `dim ${c.dim} is not a multiple of n_heads ${c.nHeads}`;
  if (c.nHeads % c.nKvHeads !== 0) return `n_heads ${c.nHeads} is not a multiple of n_kv_heads ${c.nKvHeads}`;
  if (headDim(c) % 2 !== 0) return `head size ${headDim(c)} is odd (RoPE rotates pairs)`;
  if (c.ctx > c.seqLen) return `ctx ${c.ctx} is larger than the model's seq_len ${c.seqLen}`;
  if (!Number.isInteger(c.batch) || c.batch < 0 || c.batch > 65535) return `batch is ${c.batch}, expected 0..65535`;
  if (!Number.isInteger(c.textBytes) || c.textBytes < 1 || c.textBytes > 1 << 16) return `text_bytes is ${c.textBytes}, expected 1..65536`;
  if (c.linearLimit > 0 && c.plannedLinear > c.linearLimit) return `planned_linear ${c.plannedLinear} exceeds linear_limit ${c.linearLimit}`;
  if (!(c.normEps > 0 && c.normEps < 1)) return `norm_eps is ${c.normEps}, expected a number in (0, 1)`;
  if (!(c.ropeTheta >= 1 && Number.isFinite(c.ropeTheta))) return `rope_theta is ${c.ropeTheta}, expected a finite number >= 1`;
  return undefined;
}

// The descriptor section (kind 6): model_init's descriptor (host/model/desc-table.ts), one entry per
// runtime tensor: embedding, final norm, classifier, then 9 per layer.
export function descriptorTensorCount(c: Pick<ModelConfig, 'nLayers'>): number {
  return D.TENSOR_LAYER0 + D.PER_LAYER * c.nLayers;
}

export function descriptorBytes(c: Pick<ModelConfig, 'nLayers'>): number {
  return 4 * (D.D_TENSORS + D.T_WORDS * descriptorTensorCount(c));
}

// The image tensor (modelTensors index) whose bytes descriptor entry i reads. The layer entries are in
// the image's order (attn_norm, q, k, v, output, ffn_norm, gate = w1, down = w2, up = w3); a shared
// classifier reads the token embedding.
export function descriptorImageTensor(c: Pick<ModelConfig, 'nLayers' | 'sharedClassifier'>, i: number): number {
  const last = 1 + D.PER_LAYER * c.nLayers;
  if (i === D.TENSOR_EMBEDDING) return 0;
  if (i === D.TENSOR_RMS_FINAL) return last;
  if (i === D.TENSOR_CLASSIFIER) return c.sharedClassifier ? 0 : last + 1;
  return 1 + (i - D.TENSOR_LAYER0);
}

export interface SectionPlacement {
  kind: number;
  offset: number;
  size: number;
  align: number;
}

export interface ImageLayout {
  headerSize: number;
  sections: SectionPlacement[];      // in file order: config, descriptor, app, tokenizer, weights, metadata
  tensorOffsets: number[];           // from the weights section's start
  weightsDataOffset: number;
  digestOffset: number;
  totalSize: number;
}

export interface LayoutSizes {
  descriptor: number;                // descriptorBytes(config)
  app: number;
  tokenizer: number;
  tensors: number[];                 // byte size of each tensor, in image order
  metadata: number | null;           // null: no metadata section
  signed: boolean;
}

export function weightsLayout(tensorSizes: number[]): { dataOffset: number; offsets: number[]; size: number } {
  const dataOffset = alignUp(WEIGHTS_HEADER_BYTES + TENSOR_ENTRY_BYTES * tensorSizes.length, TENSOR_ALIGN);
  let at = dataOffset;
  const offsets = tensorSizes.map((s) => {
    const o = alignUp(at, TENSOR_ALIGN);
    at = o + s;
    return o;
  });
  return { dataOffset, offsets, size: at };
}

export function layoutImage(z: LayoutSizes): ImageLayout {
  const w = weightsLayout(z.tensors);
  const parts: Array<[number, number]> = [[KIND.config, CONFIG_BYTES], [KIND.descriptor, z.descriptor], [KIND.app, z.app], [KIND.tokenizer, z.tokenizer], [KIND.weights, w.size]];
  if (z.metadata !== null) parts.push([KIND.metadata, z.metadata]);
  const headerSize = HEADER_BYTES + SECTION_ENTRY_BYTES * parts.length;
  let at = headerSize;
  const sections = parts.map(([kind, size]) => {
    const align = sectionKind(kind)!.minAlign;
    const offset = alignUp(at, align);
    at = offset + size;
    return { kind, offset, size, align };
  });
  const digestOffset = alignUp(at, 4);
  const totalSize = digestOffset + DIGEST_BYTES + (z.signed ? SIGNATURE_TRAILER_BYTES : 0);
  return { headerSize, sections, tensorOffsets: w.offsets, weightsDataOffset: w.dataOffset, digestOffset, totalSize };
}
