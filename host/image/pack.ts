// Packing: a model (config, f32 or quantized tensors, tokenizer) plus a board and formats in, a
// verified image out. The plan decides which layers stay resident; the image records it.
import type { KeyObject } from 'node:crypto';
import type { BoardProfile } from '../board/boards.ts';
import { baseImports } from '../engine/imports.ts';
import { v8Engine } from '../engine/v8.ts';
import { UserError } from '../errors.ts';
import type { ModelConfig } from '../model/config.ts';
import { formatByName, type WeightFormat } from '../quant/formats.ts';
import { REFS } from '../quant/ref/index.ts';
import { absmeanTernary, packTrits } from '../quant/ref/ternary.ts';
import type { QuantTensor } from '../quant/tensor.ts';
import type { ImageActName, KvFormatName } from './format.ts';
import { modelTensors, paddedK, type ImageConfig, type TensorSpec } from './layout.ts';
import { assignFormats, kvProblem, planMemory, type AppFootprint, type Plan, type PlanRequest } from './plan.ts';
import { readImage, type Image } from './read.ts';
import { encodeMetadata, writeImage, type ImageTensorData } from './write.ts';

export interface SourceTensor {
  m: number;
  k: number;
  f32?: Float32Array;          // (m, k) row-major
  quant?: QuantTensor;         // already in a format of the table
}

export interface SourceModel {
  config: ModelConfig & { normEps?: number; ropeTheta?: number };
  tensors: Map<string, SourceTensor>;  // keyed by image tensor name (layout.ts modelTensors)
  tokenizer: Uint8Array;               // llama2.c tokenizer.bin
  source: string;                      // where it came from, for the metadata
  ternaryScales?: Map<string, number>; // exact absmean scales of a QAT model (models/*/scales.json)
}

export interface PackOptions {
  board: BoardProfile;
  quant?: WeightFormat;        // matrices; default: the formats the model has
  embed?: WeightFormat;        // token embedding and classifier
  kv?: KvFormatName;
  ctx?: number;                // default: the model's seq_len
  app: Uint8Array;             // the device app (build/device.wasm)
  signingKey?: KeyObject;
  created?: Date | null;       // null: no creation time (reproducible images)
  tool: string;                // "edge-flash 0.1.0"
  force?: boolean;             // write an image that does not fit
  onTensor?: (index: number, count: number, name: string) => void;
}

export interface PackResult {
  bytes: Uint8Array;
  plan: Plan;
  image: Image;
  worstError: { name: string; relError: number } | null;
}

// The app's linear memory below the arena, measured by instantiating it (arena_top before any alloc).
export function appFootprint(app: Uint8Array): AppFootprint {
  const inst = v8Engine.instantiate(app, baseImports());
  try {
    if (!inst.has('arena_top')) throw new UserError('the app module does not export arena_top: is it build/device.wasm?');
    return { wasmBytes: app.byteLength, staticBytes: Number(inst.call('arena_top')) };
  } finally {
    inst.close();
  }
}

export function sourceFormats(m: SourceModel): Map<string, WeightFormat> {
  const out = new Map<string, WeightFormat>();
  for (const [name, t] of m.tensors) if (t.quant) out.set(name, t.quant.format);
  return out;
}

// Everything the planner needs, from a model and the pack options (before any quantization).
export function planRequestFor(m: SourceModel, o: Omit<PackOptions, 'tool'> & { metadataBytes?: number | null }): PlanRequest {
  const c = m.config;
  const kv = o.kv ?? 'f32';
  const kvp = kvProblem(c, kv);
  if (kvp) throw new UserError(kvp);
  const ctx = o.ctx ?? c.seqLen;
  if (!Number.isInteger(ctx) || ctx < 1 || ctx > c.seqLen) throw new UserError(`--ctx ${ctx}: expected 1..${c.seqLen} (the model's seq_len)`);
  const formats = assignFormats(c, { quant: o.quant, embed: o.embed, source: sourceFormats(m) });
  const act: ImageActName = [...formats.values()].every((f) => f.name === 'f32') ? 'f32' : 'i8';
  return {
    config: c, ctx, kv, act, formats, board: o.board, app: appFootprint(o.app), tokenizerBytes: m.tokenizer.byteLength,
    metadataBytes: o.metadataBytes ?? 512, signed: !!o.signingKey,
  };
}

function toF32(name: string, t: SourceTensor): Float32Array {
  if (t.f32) return t.f32;
  const q = t.quant!;
  const ref = REFS[q.format.name];
  if (!ref) throw new UserError(`tensor ${name}: cannot convert from ${q.format.name} (no reference dequantizer)`);
  const w = ref.dequantize(q);
  if (q.k === t.k) return w;
  const out = new Float32Array(t.m * t.k); // drop the padding of a padded source
  for (let r = 0; r < t.m; r++) out.set(w.subarray(r * q.k, r * q.k + t.k), r * t.k);
  return out;
}

function padRows(w: Float32Array, m: number, k: number, kp: number): Float32Array {
  if (kp === k) return w;
  const out = new Float32Array(m * kp);
  for (let r = 0; r < m; r++) out.set(w.subarray(r * k, (r + 1) * k), r * kp);
  return out;
}

// Quantizes one tensor to format f, padding rows to whole blocks. Ternary formats take the scale over
// the real weights only (zeros of the padding would shrink the absmean), or the exact QAT scale.
export function quantizeTensor(spec: TensorSpec, src: SourceTensor, f: WeightFormat, exactScale?: number): { tensor: QuantTensor; relError: number } {
  if (src.quant && src.quant.format.id === f.id && src.quant.k === paddedK(f, spec.k)) return { tensor: src.quant, relError: 0 };
  const w = toF32(spec.name, src);
  const kp = paddedK(f, spec.k);
  let t: QuantTensor;
  if (f.family === 'ternary') {
    let { trits, scale } = absmeanTernary(w);
    if (exactScale !== undefined) {
      const s = Math.fround(exactScale);
      const exact = Int8Array.from(w, (x) => Math.max(-1, Math.min(1, Math.round(x / s))));
      let worst = 0;
      for (let i = 0; i < w.length; i++) worst = Math.max(worst, Math.abs(w[i] - exact[i] * s));
      if (worst <= 1e-5 * s) [trits, scale] = [exact, s]; // the model is scale x trits: repack exactly
    }
    const tp = new Int8Array(spec.m * kp);
    for (let r = 0; r < spec.m; r++) tp.set(trits.subarray(r * spec.k, (r + 1) * spec.k), r * kp);
    t = packTrits(f, tp, spec.m, kp, scale);
  } else {
    const ref = REFS[f.name];
    if (!ref) throw new UserError(`format ${f.name} has no reference quantizer`);
    t = ref.quantize(padRows(w, spec.m, spec.k, kp), spec.m, kp);
  }
  const back = REFS[f.name].dequantize(t);
  let maxAbs = 0, maxErr = 0;
  for (let r = 0; r < spec.m; r++) {
    for (let i = 0; i < spec.k; i++) {
      const x = w[r * spec.k + i];
      maxAbs = Math.max(maxAbs, Math.abs(x));
      maxErr = Math.max(maxErr, Math.abs(x - back[r * kp + i]));
    }
  }
  return { tensor: t, relError: maxAbs > 0 ? maxErr / maxAbs : 0 };
}

export function packModel(m: SourceModel, o: PackOptions): PackResult {
  const meta0 = (plan: Plan) => metadataFor(m, o, plan, {});
  // Plan with a metadata estimate, then again with the real metadata size.
  let req = planRequestFor(m, o);
  let plan = planMemory(req);
  req = { ...req, metadataBytes: encodeMetadata(meta0(plan)).byteLength + 2048 };
  plan = planMemory(req);
  if (!plan.fits && !o.force) {
    throw new UserError(`the model does not fit ${o.board.name}: ${plan.problems.join('; ')}`, 'see `edge-flash plan`, or pass --force to write it anyway');
  }
  const c = m.config;
  const specs = modelTensors(c);
  const tensors: ImageTensorData[] = [];
  const errors: Record<string, number> = {};
  let worst: PackResult['worstError'] = null;
  specs.forEach((spec, i) => {
    o.onTensor?.(i, specs.length, spec.name);
    const src = m.tensors.get(spec.name);
    if (!src) throw new UserError(`the model has no tensor '${spec.name}'`);
    if (src.m !== spec.m || src.k !== spec.k) throw new UserError(`tensor ${spec.name} is ${src.m}x${src.k}, the config needs ${spec.m}x${spec.k}`);
    const f = req.formats.get(spec.name)!;
    const { tensor, relError } = quantizeTensor(spec, src, f, m.ternaryScales?.get(spec.name));
    if (spec.role !== 'norm') errors[spec.name] = Number(relError.toPrecision(3));
    if (!worst || relError > worst.relError) worst = { name: spec.name, relError };
    tensors.push({ name: spec.name, format: f, m: spec.m, k: spec.k, scale: tensor.scale, data: tensor.data });
  });
  const config: ImageConfig = {
    ...c, ctx: req.ctx, kv: req.kv, act: req.act, normEps: c.normEps ?? 1e-5, ropeTheta: c.ropeTheta ?? 10000,
    residentLayers: plan.residency.residentLayers, embedResident: plan.residency.embedResident, classifierResident: plan.residency.classifierResident,
  };
  const { bytes } = writeImage({
    boardId: o.board.id, app: o.app, config, tokenizer: m.tokenizer, tensors, metadata: metadataFor(m, o, plan, errors), signingKey: o.signingKey,
  });
  // Read back what was written, every check on, as a board would (esptool verifies every write).
  const image = readImage(bytes, { board: o.board, capacity: o.force ? Infinity : undefined });
  return { bytes, plan, image, worstError: worst };
}

function metadataFor(m: SourceModel, o: PackOptions, plan: Plan, errors: Record<string, number>): Record<string, unknown> {
  const r = plan.request;
  const formats: Record<string, number> = {};
  for (const f of r.formats.values()) formats[f.name] = (formats[f.name] ?? 0) + 1;
  const meta: Record<string, unknown> = {
    tool: o.tool,
    source: m.source,
    board: o.board.name,
    quantization: {
      matrices: o.quant?.name ?? 'as in the source',
      embedding: r.formats.get('token_embd')!.name,
      formats,
      kv: r.kv,
      act: r.act,
      maxRelError: errors,
    },
    plan: { ctx: r.ctx, linearBytes: plan.linear, wasm3HeapBytes: plan.heap, streamedBytesPerToken: plan.streamedBytesPerToken, fits: plan.fits },
  };
  if (o.created) meta.created = o.created.toISOString();
  return meta;
}

export const F32 = formatByName('f32')!;
