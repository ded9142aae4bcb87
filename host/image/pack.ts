// Packing: a Model (host/formats loadModel) and a board in, a verified image out. The model is put
// into the formats asked for, the runtime's plan fitted to the board decides which tensors stay
// resident, and the image records both. Never writes anything itself: the CLI writes the bytes.
import type { KeyObject } from 'node:crypto';
import type { BoardProfile } from '../board/boards.ts';
import { baseImports } from '../engine/imports.ts';
import { wasmBytes } from '../engine/index.ts';
import { v8Engine } from '../engine/v8.ts';
import { UserError } from '../errors.ts';
import type { KvFormat } from '../model/kv.ts';
import { MATRIX_NAMES, matrixShape, type Matrix, type Model } from '../model/model.ts';
import { convert, dequantize } from '../model/quantize.ts';
import { formatByName, type WeightFormat } from '../quant/formats.ts';
import { DEFAULT_TEXT_BYTES } from './format.ts';
import type { ImageConfig } from './layout.ts';
import { modelImageTensors, tokenizerBytes } from './model.ts';
import { planBoard, plannedShape, plannedTensors, type AppFootprint, type BoardPlan, type BoardPlanRequest, type Engine } from './plan.ts';
import { readImage, type Image } from './read.ts';
import { encodeMetadata, writeImage } from './write.ts';
import { writeDescriptor, type ActMode, type Plan as RuntimePlan } from '../model/plan.ts';
import { tokenizerImage, type Tokenizer } from '../model/tokenizer.ts';
import { boardByName } from '../board/boards.ts';
import { hashHex } from '../model/tables-hash.ts';
import { EMBEDDING_FORMATS } from '../quant/formats.ts';
import { TABLES_HASH } from '../model/tables.gen.ts';

const F32 = formatByName('f32')!;
const Q8 = formatByName('q8_0')!;

// The app's footprint: instantiate it once (V8) and ask the arena where it starts.
export function appFootprint(app: Uint8Array): AppFootprint {
  const inst = v8Engine.instantiate(app, baseImports());
  try {
    if (!inst.has('arena_top') || !inst.has('arena_reset')) throw new UserError('the app module does not export arena_top: is it build/device.wasm?');
    inst.call('arena_reset');
    const heapBase = Number(inst.call('arena_top'));
    const names = new Set(WebAssembly.Module.exports(new WebAssembly.Module(app as Uint8Array<ArrayBuffer>)).map((e) => e.name));
    return { wasmBytes: app.byteLength, heapBase, has: (n) => names.has(n) };
  } finally {
    inst.close();
  }
}

export function deviceApp(): Uint8Array {
  return wasmBytes('device');
}

// build/device.wasm's footprint (the app every board's figures are given for), measured once.
let deviceFp: AppFootprint | undefined;
export function deviceFootprint(): AppFootprint {
  return (deviceFp ??= appFootprint(deviceApp()));
}

export interface FormatOptions {
  quant?: WeightFormat;       // the seven layer matrices; default: as loaded
  embed?: WeightFormat;       // token embedding (and an unshared classifier): f32 or q8_0
}

// The embedding format: asked for; else q8_0 under a sub-8-bit --quant (llama.cpp keeps embeddings
// at higher precision too); else as loaded when the runtime reads it (f32, q8_0), f32 otherwise.
export function embedFormat(m: Model, o: FormatOptions): WeightFormat {
  const dimOk = (f: WeightFormat) => m.config.dim % f.block === 0;
  if (o.embed) {
    if (!o.embed.embedding) throw new UserError(`--embed ${o.embed.name}: the runtime reads embeddings in ${EMBEDDING_FORMATS.map((f) => f.name).join(' or ')}`);
    if (!dimOk(o.embed)) throw new UserError(`--embed ${o.embed.name}: dim ${m.config.dim} is not a multiple of its block ${o.embed.block}`);
    return o.embed;
  }
  if (o.quant && o.quant.name !== 'f32' && dimOk(Q8)) return Q8;
  const cur = m.embedding.format;
  return cur.embedding && m.embedding.k === m.config.dim ? cur : F32;
}

export interface Converted {
  model: Model;
  relErrors: Map<string, number>; // max |w - w'| / max |w| of each converted matrix, by image name
}

function relError(before: Matrix, after: Matrix, rows: number, cols: number): number {
  if (before === after) return 0;
  const a = dequantize(before, rows, cols), b = dequantize(after, rows, cols);
  let mx = 0, err = 0;
  for (let i = 0; i < a.length; i++) {
    mx = Math.max(mx, Math.abs(a[i]));
    err = Math.max(err, Math.abs(a[i] - b[i]));
  }
  return mx > 0 ? err / mx : 0;
}

// The model in the formats of the image. Calls onTensor once per matrix (progress for large models).
export function convertModel(m: Model, o: FormatOptions, onTensor?: (done: number, total: number, name: string) => void): Converted {
  const c = m.config;
  const ef = embedFormat(m, o);
  const relErrors = new Map<string, number>();
  const total = 1 + c.nLayers * MATRIX_NAMES.length + (m.classifier ? 1 : 0);
  let done = 0;
  const conv = (name: string, t: Matrix, rows: number, cols: number, f: WeightFormat) => {
    onTensor?.(done++, total, name);
    const out = convert(t, rows, cols, f);
    if (out !== t) relErrors.set(name, relError(t, out, rows, cols));
    return out;
  };
  const embedding = conv('token_embd', m.embedding, c.vocabSize, c.dim, ef);
  const short: Record<string, string> = { wq: 'attn_q', wk: 'attn_k', wv: 'attn_v', wo: 'attn_output', w1: 'ffn_gate', w2: 'ffn_down', w3: 'ffn_up' };
  const layers = m.layers.map((l, i) => {
    const out = { ...l };
    for (const n of MATRIX_NAMES) {
      const [rows, cols] = matrixShape(c, n);
      const target = o.quant ?? l[n].format;
      out[n] = conv(`blk.${i}.${short[n]}`, l[n], rows, cols, target);
    }
    return out;
  });
  const classifier = m.classifier ? conv('output', m.classifier, c.vocabSize, c.dim, o.embed ?? (o.quant ? ef : m.classifier.format)) : null;
  onTensor?.(total, total, '');
  return { model: { ...m, embedding, layers, classifier, config: { ...c, sharedClassifier: classifier === null } }, relErrors };
}

export interface PackOptions extends FormatOptions {
  board: BoardProfile;
  kv: KvFormat;
  act?: ActMode;
  topk?: number;              // a4.8's top-K fraction of the intermediate states (host/model/plan.ts)
  ctx?: number;               // default: the model's seq_len
  app: Uint8Array;            // build/device.wasm
  signingKey?: KeyObject;
  created?: Date | null;      // null or absent: no creation time (reproducible images)
  tool: string;               // "edge-flash 0.1.0"
  source: string;             // what the model was packed from
  force?: boolean;            // write an image that does not fit (pack --ignore-fit)
  engine?: Engine;            // what runs it on the board: wasm3 (default) or the AOT build (`firmware --aot`)
  textBytes?: number;         // the app's prompt buffer (default DEFAULT_TEXT_BYTES)
  onTensor?: (done: number, total: number, name: string) => void;
}

// The refusal to pack an image that will not fit: carries the plan, whose table says why.
export class DoesNotFitError extends UserError {
  constructor(readonly plan: BoardPlan) {
    super(`the model does not fit ${plan.request.board.name}: ${plan.problems.join('; ')}`, 'see `edge-flash plan` for what fits, or pass --ignore-fit to write it anyway');
  }
}

export interface PackResult {
  bytes: Uint8Array;
  plan: BoardPlan;
  image: Image;
  relErrors: Map<string, number>;
}

export function checkContext(ctx: number | undefined, seqLen: number): number {
  const n = ctx ?? seqLen;
  if (!Number.isInteger(n) || n < 1 || n > seqLen) throw new UserError(`--ctx ${ctx}: expected an integer in 1..${seqLen} (the model's seq_len)`);
  return n;
}

export function planRequest(converted: Model, o: Omit<PackOptions, 'tool' | 'source'>, metadataBytes: number | null): BoardPlanRequest {
  const ctx = checkContext(o.ctx, converted.config.seqLen);
  const model = { ...converted, config: { ...converted.config, seqLen: ctx } };
  return {
    model, kv: o.kv, act: o.act ?? 'i8', topk: o.topk, board: o.board, app: appFootprint(o.app), tokenizer: tokenizerBytes(converted), textBytes: o.textBytes ?? DEFAULT_TEXT_BYTES,
    metadataBytes, signed: !!o.signingKey, engine: o.engine,
  };
}

export function packModel(source: Model, o: PackOptions): PackResult {
  const { model: converted, relErrors } = convertModel(source, o, o.onTensor);
  const seqLen = converted.config.seqLen;
  const metaOf = (plan: BoardPlan) => metadataFor(o, plan, relErrors, seqLen);
  // Plan once to size the metadata, then with the metadata's real size.
  let req = planRequest(converted, o, 4096);
  let plan = planBoard(req);
  req = { ...req, metadataBytes: encodeMetadata(metaOf(plan)).byteLength };
  plan = planBoard(req);
  if (!plan.fits && !o.force) throw new DoesNotFitError(plan);
  // The image stores the tensors exactly as the plan reads them, and the plan itself: the descriptor.
  const tensors = plannedTensors(plan.runtime);
  const c = req.model.config;
  const config: ImageConfig = {
    ...plannedShape(plan.runtime), seqLen, ctx: c.seqLen, kv: o.kv.name, act: tensors.every((t) => t.format.name === 'f32') ? 'f32' : req.act,
    normEps: req.model.normEps, ropeTheta: req.model.ropeTheta,
    plannedLinear: plan.fits ? plan.linear : 0, linearLimit: plan.fits ? plan.limits.linear : 0, batch: plan.fits ? plan.runtime.batch : 0,
    textBytes: req.textBytes,
  };
  const { bytes } = writeImage({
    boardId: o.board.id, app: o.app, config, tokenizer: req.tokenizer, tensors, metadata: metaOf(plan), signingKey: o.signingKey,
    descriptor: writeDescriptor(plan.runtime, req.model.ropeTheta, req.model.normEps),
  });
  // Read back what was written with every check on, as the board will (esptool verifies every write).
  const image = readImage(bytes, { board: o.board, capacity: o.force ? Number.MAX_SAFE_INTEGER : undefined });
  return { bytes, plan, image, relErrors };
}

function metadataFor(o: PackOptions, plan: BoardPlan, relErrors: Map<string, number>, seqLen: number): Record<string, unknown> {
  const r = plan.request;
  const counts: Record<string, number> = {};
  for (const { t } of modelImageTensors(r.model)) counts[t.format.name] = (counts[t.format.name] ?? 0) + 1;
  const meta: Record<string, unknown> = {
    tool: o.tool,
    source: o.source,
    board: o.board.name,
    quantization: {
      layers: o.quant?.name ?? 'as loaded',
      embedding: r.model.embedding.format.name,
      tensors: counts,
      kv: o.kv.name,
      act: r.act,
      max_rel_error: Object.fromEntries([...relErrors].filter(([, v]) => v > 0).map(([k, v]) => [k, Number(v.toPrecision(3))])),
    },
    plan: { ctx: r.model.config.seqLen, seq_len: seqLen, linear_bytes: plan.linear, wasm3_heap_bytes: plan.heap, streamed_bytes_per_token: plan.streamedBytesPerToken, fits: plan.fits },
  };
  meta.tables = hashHex(TABLES_HASH); // the tables the app was built from (host/model/tables-hash.ts)
  if (o.created) meta.created = o.created.toISOString();
  return meta;
}

// A runtime plan made for this host (ModelRuntime.create: `run <model>`, eval, bench) as an image:
// the same one writer and layout as `pack`, for the host board, without metadata. The image's config
// is the plan's (planned_linear its arena high-water mark); a model without a tokenizer gets a
// numbered placeholder vocabulary (the plan then keeps no tokenizer: the host tokenizes).
export function packPlan(model: Model, rt: RuntimePlan, app: Uint8Array, memoryLimit?: number): Uint8Array {
  const tensors = plannedTensors(rt);
  const tokenizer = rt.tokenizerImage ?? tokenizerImage(model.tokenizer ?? placeholderTokenizer(rt.config.vocabSize));
  const config: ImageConfig = {
    ...plannedShape(rt), ctx: rt.config.seqLen, kv: rt.kv.name, act: rt.tensors.every((t) => t.act === 'f32') ? 'f32' : rt.act,
    normEps: model.normEps, ropeTheta: model.ropeTheta, plannedLinear: rt.memory.total, linearLimit: memoryLimit ?? 0, batch: rt.batch,
    textBytes: rt.textBytes || DEFAULT_TEXT_BYTES,
  };
  return writeImage({
    boardId: boardByName('host').id, app, config, tokenizer, tensors, descriptor: writeDescriptor(rt, model.ropeTheta, model.normEps), metadata: null,
  }).bytes;
}

// Token i's piece is "<i>": a valid vocabulary for a model that has none (it runs by token ids).
function placeholderTokenizer(vocab: number): Tokenizer {
  return {
    pieces: Array.from({ length: vocab }, (_, i) => new TextEncoder().encode(`<${i}>`)), scores: new Float32Array(vocab),
    maxTokenLength: String(vocab).length + 2, bos: Math.min(1, vocab - 1), eos: Math.min(2, vocab - 1),
  };
}
