// The one image writer: parts in, the bytes of docs/image-format.md out. Deterministic: the same parts
// give the same bytes (padding is zero, Ed25519 signatures are deterministic), so test vectors are exact.
import type { KeyObject } from 'node:crypto';
import type { WeightFormat } from '../quant/formats.ts';
import { crc32 } from './crc32.ts';
import {
  ACT_CODES, C, CONFIG_BYTES, CONFIG_FLAG_SHARED, DIGEST_BYTES, TENSOR_FLAG_RESIDENT,
  FLAG_SIGNED, H, HEADER_BYTES, SIGNATURE_TRAILER_BYTES, IMAGE_MAGIC, IMAGE_VERSION, KIND, KV_CODES, S, SECTION_ENTRY_BYTES, T, TENSOR_ALIGN,
  TENSOR_ENTRY_BYTES, TENSOR_NAME_BYTES, W, WEIGHTS_HEADER_BYTES,
} from './format.ts';
import * as D from '../model/desc.ts';
import { configProblem, descriptorBytes, descriptorImageTensor, layoutImage, modelTensors, tensorBytes, type ImageConfig, type ImageLayout } from './layout.ts';
import { rawPublicKey, sha256, signDigest } from './sign.ts';

export interface ImageTensorData {
  name: string;
  format: WeightFormat;
  m: number;
  k: number;
  scale: number;
  resident: boolean;           // the plan keeps it in linear memory
  data: Uint8Array;            // padded as layout.ts says
}

export interface ImageParts {
  boardId: number;
  app: Uint8Array;
  config: ImageConfig;
  tokenizer: Uint8Array;
  tensors: ImageTensorData[];           // in modelTensors(config) order
  descriptor: Int32Array;               // the runtime's plan (host/model/plan.ts writeDescriptor) of these tensors
  metadata?: Record<string, unknown> | null;
  signingKey?: KeyObject;
}

export function encodeConfig(c: ImageConfig): Uint8Array {
  const b = new Uint8Array(CONFIG_BYTES);
  const v = new DataView(b.buffer);
  const u32 = (at: number, x: number) => v.setUint32(at, x, true);
  u32(C.dim, c.dim); u32(C.hiddenDim, c.hiddenDim); u32(C.nLayers, c.nLayers); u32(C.nHeads, c.nHeads);
  u32(C.nKvHeads, c.nKvHeads); u32(C.vocabSize, c.vocabSize); u32(C.seqLen, c.seqLen); u32(C.ctx, c.ctx);
  u32(C.flags, c.sharedClassifier ? CONFIG_FLAG_SHARED : 0);
  u32(C.plannedLinear, c.plannedLinear);
  v.setUint8(C.kv, KV_CODES.indexOf(c.kv));
  v.setUint8(C.act, ACT_CODES.indexOf(c.act));
  v.setUint16(C.batch, c.batch, true);
  u32(C.linearLimit, c.linearLimit);
  u32(C.textBytes, c.textBytes);
  v.setFloat32(C.normEps, c.normEps, true);
  v.setFloat32(C.ropeTheta, c.ropeTheta, true);
  return b;
}

// The descriptor as the image carries it: every tensor's offset and the tokenizer's are offsets from the
// image start (edge.weights_read serves the image's bytes from 0); model_init's pointers are 0. The
// plan's tensors must be the image's: same format and bytes, or the descriptor would misread them.
export function placeDescriptor(words: Int32Array, p: ImageParts, layout: ImageLayout): Uint8Array {
  const c = p.config;
  if (words.length * 4 !== descriptorBytes(c)) throw new Error(`writeImage: the descriptor has ${words.length} words, ${c.nLayers} layers need ${descriptorBytes(c) / 4}`);
  const w = Int32Array.from(words);
  const at = (kind: number) => layout.sections.find((s) => s.kind === kind)!;
  const weights = at(KIND.weights).offset;
  const n = w[D.D_N_TENSORS];
  for (let i = 0; i < n; i++) {
    const e = D.D_TENSORS + i * D.T_WORDS;
    const j = descriptorImageTensor(c, i);
    const t = p.tensors[j];
    if (w[e + D.T_FORMAT] !== t.format.id || w[e + D.T_BYTES] !== t.data.byteLength) {
      throw new Error(`writeImage: descriptor entry ${i} (format ${w[e + D.T_FORMAT]}, ${w[e + D.T_BYTES]} bytes) is not tensor ${t.name} (${t.format.name}, ${t.data.byteLength} bytes)`);
    }
    w[e + D.T_OFFSET] = weights + layout.tensorOffsets[j];
    w[e + D.T_PTR] = 0;
  }
  // The app's tokenizer is the tokenizer section, or none (a plan without one: a host tokenizes).
  const tok = at(KIND.tokenizer);
  const none = w[D.D_TOK_BYTES] === 0 && w[D.D_TEXT_BYTES] === 0;
  if (!none && (w[D.D_TOK_BYTES] !== tok.size || w[D.D_TEXT_BYTES] !== c.textBytes)) {
    throw new Error(`writeImage: the descriptor plans a ${w[D.D_TOK_BYTES]}-byte tokenizer and ${w[D.D_TEXT_BYTES]} text bytes, the image has ${tok.size} and ${c.textBytes}`);
  }
  w[D.D_TOK_OFFSET] = none ? 0 : tok.offset;
  return new Uint8Array(w.buffer);
}

export function encodeMetadata(m: Record<string, unknown>): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(m));
}

// Writes the header CRC, section CRCs, digest and (for signed images) the signature trailer into an
// image whose fields and section bytes are already in place. Exported for the vector generator, which
// edits a field and reseals, so that each corrupt vector has exactly one defect.
export function seal(img: Uint8Array, opts: { sectionCrcs?: boolean; signingKey?: KeyObject } = {}): Uint8Array {
  const v = new DataView(img.buffer, img.byteOffset, img.byteLength);
  const headerSize = v.getUint16(H.headerSize, true);
  const count = v.getUint16(H.sectionCount, true);
  if (opts.sectionCrcs !== false) {
    for (let i = 0; i < count; i++) {
      const e = HEADER_BYTES + i * SECTION_ENTRY_BYTES;
      const off = v.getUint32(e + S.offset, true), size = v.getUint32(e + S.size, true);
      v.setUint32(e + S.crc, crc32(img.subarray(off, off + size)), true);
    }
  }
  v.setUint32(H.crc, 0, true);
  v.setUint32(H.crc, crc32(img.subarray(0, headerSize)), true);
  const signed = (v.getUint16(H.flags, true) & FLAG_SIGNED) !== 0;
  const digestOffset = v.getUint32(H.totalSize, true) - DIGEST_BYTES - (signed ? SIGNATURE_TRAILER_BYTES : 0);
  const digest = sha256(img.subarray(0, digestOffset));
  img.set(digest, digestOffset);
  if (signed && opts.signingKey) {
    img.set(rawPublicKey(opts.signingKey), digestOffset + DIGEST_BYTES);
    img.set(signDigest(digest, opts.signingKey), digestOffset + DIGEST_BYTES + 32);
  }
  return img;
}

export function writeImage(p: ImageParts): { bytes: Uint8Array; layout: ImageLayout } {
  const problem = configProblem(p.config);
  if (problem) throw new Error(`writeImage: bad config: ${problem}`);
  const specs = modelTensors(p.config);
  if (specs.length !== p.tensors.length) throw new Error(`writeImage: ${p.tensors.length} tensors given, the config needs ${specs.length}`);
  p.tensors.forEach((t, i) => {
    const s = specs[i];
    if (t.name !== s.name || t.m !== s.m || t.k !== s.k) throw new Error(`writeImage: tensor ${i} is ${t.name} (${t.m}x${t.k}), expected ${s.name} (${s.m}x${s.k})`);
    if (t.data.byteLength !== tensorBytes(t.format, t.m, t.k)) throw new Error(`writeImage: ${t.name}: ${t.data.byteLength} bytes, ${t.format.name} needs ${tensorBytes(t.format, t.m, t.k)}`);
  });
  const meta = p.metadata ? encodeMetadata(p.metadata) : null;
  const layout = layoutImage({
    descriptor: descriptorBytes(p.config), app: p.app.byteLength, tokenizer: p.tokenizer.byteLength, tensors: p.tensors.map((t) => t.data.byteLength),
    metadata: meta ? meta.byteLength : null, signed: !!p.signingKey,
  });
  const img = new Uint8Array(layout.totalSize);
  const v = new DataView(img.buffer);

  // Header and section table (CRCs filled in by seal()).
  img.set(new TextEncoder().encode(IMAGE_MAGIC), H.magic);
  v.setUint16(H.version, IMAGE_VERSION, true);
  v.setUint16(H.headerSize, layout.headerSize, true);
  v.setUint16(H.board, p.boardId, true);
  v.setUint16(H.flags, p.signingKey ? FLAG_SIGNED : 0, true);
  v.setUint32(H.totalSize, layout.totalSize, true);
  v.setUint16(H.sectionCount, layout.sections.length, true);
  layout.sections.forEach((s, i) => {
    const e = HEADER_BYTES + i * SECTION_ENTRY_BYTES;
    v.setUint32(e + S.kind, s.kind, true);
    v.setUint32(e + S.offset, s.offset, true);
    v.setUint32(e + S.size, s.size, true);
    v.setUint32(e + S.align, s.align, true);
  });

  const at = (kind: number) => layout.sections.find((s) => s.kind === kind)!.offset;
  img.set(encodeConfig(p.config), at(KIND.config));
  img.set(p.app, at(KIND.app));
  img.set(p.tokenizer, at(KIND.tokenizer));
  img.set(placeDescriptor(p.descriptor, p, layout), at(KIND.descriptor));
  if (meta) img.set(meta, at(KIND.metadata));

  // Weights: directory, then each tensor at its aligned offset.
  const wb = at(KIND.weights);
  v.setUint32(wb + W.count, p.tensors.length, true);
  v.setUint32(wb + W.align, TENSOR_ALIGN, true);
  v.setUint32(wb + W.dataOffset, layout.weightsDataOffset, true);
  const enc = new TextEncoder();
  p.tensors.forEach((t, i) => {
    const e = wb + WEIGHTS_HEADER_BYTES + i * TENSOR_ENTRY_BYTES;
    const name = enc.encode(t.name);
    if (name.byteLength >= TENSOR_NAME_BYTES) throw new Error(`writeImage: tensor name '${t.name}' is longer than ${TENSOR_NAME_BYTES - 1} bytes`);
    img.set(name, e + T.name);
    v.setUint16(e + T.format, t.format.id, true);
    v.setUint16(e + T.flags, t.resident ? TENSOR_FLAG_RESIDENT : 0, true);
    v.setUint32(e + T.rows, t.m, true);
    v.setUint32(e + T.cols, t.k, true);
    v.setFloat32(e + T.scale, t.scale, true);
    v.setUint32(e + T.offset, layout.tensorOffsets[i], true);
    v.setUint32(e + T.size, t.data.byteLength, true);
    img.set(t.data, wb + layout.tensorOffsets[i]);
  });
  seal(img, { signingKey: p.signingKey });
  return { bytes: img, layout };
}
