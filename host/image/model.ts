// Between images and the runtime's Model (host/model/model.ts): the tensors of a Model under their
// image names, and the Model an image holds (what `plan`, `pack` and `verify --board` plan again from;
// `run <image>` runs the image itself, host/model/runtime.ts fromImage).
import { tokenizerFromImage, tokenizerImage } from '../model/tokenizer.ts';
import { UserError } from '../errors.ts';
import type { ModelConfig } from '../model/config.ts';
import { MATRIX_NAMES, type LayerWeights, type Matrix, type MatrixName, type Model } from '../model/model.ts';
import { formatByName } from '../quant/formats.ts';
import { IMAGE_MAGIC } from './format.ts';
import { modelTensors } from './layout.ts';
import { quantTensor, readImage, type Image, type ReadOptions } from './read.ts';

// Image tensor name -> the Model's layer field (host/model/model.ts).
const LAYER_NAMES: Record<string, MatrixName | 'rms_att' | 'rms_ffn'> = {
  attn_norm: 'rms_att', attn_q: 'wq', attn_k: 'wk', attn_v: 'wv', attn_output: 'wo',
  ffn_norm: 'rms_ffn', ffn_gate: 'w1', ffn_down: 'w2', ffn_up: 'w3',
};

const F32 = formatByName('f32')!;
const vectorMatrix = (v: Float32Array): Matrix => ({ format: F32, m: 1, k: v.length, data: new Uint8Array(v.buffer, v.byteOffset, v.byteLength), scale: 1 });

// The image's config of a Model: shared when it has no separate classifier.
export function imageModelConfig(m: Model): ModelConfig {
  return { ...m.config, sharedClassifier: m.classifier === null };
}

// Every tensor of a Model in image order, as stored (padded matrices, f32 vectors).
export function modelImageTensors(m: Model): Array<{ name: string; t: Matrix }> {
  const c = imageModelConfig(m);
  return modelTensors(c).map((spec) => {
    if (spec.name === 'token_embd') return { name: spec.name, t: m.embedding };
    if (spec.name === 'output_norm') return { name: spec.name, t: vectorMatrix(m.rmsFinal) };
    if (spec.name === 'output') return { name: spec.name, t: m.classifier! };
    const [, l, short] = /^blk\.(\d+)\.(\w+)$/.exec(spec.name)!;
    const layer = m.layers[Number(l)];
    const key = LAYER_NAMES[short];
    if (key === 'rms_att' || key === 'rms_ffn') return { name: spec.name, t: vectorMatrix(layer[key === 'rms_att' ? 'rmsAtt' : 'rmsFfn']) };
    return { name: spec.name, t: layer[key] };
  });
}

export function isImage(bytes: Uint8Array): boolean {
  return bytes.byteLength >= 4 && new TextDecoder().decode(bytes.subarray(0, 4)) === IMAGE_MAGIC;
}

// The Model an image carries, its context as seq_len (the KV cache the image was planned for).
// Matrices are views into the image; norm vectors are copied (Float32Array needs 4-byte alignment).
export function imageToModel(img: Image, path = '<image>'): Model {
  const c = img.config;
  const byName = new Map(img.tensors.map((t) => [t.name, t]));
  const mat = (name: string) => quantTensor(byName.get(name)!);
  const vec = (name: string) => new Float32Array(Uint8Array.from(byName.get(name)!.data).buffer); // a copy, 4-byte aligned
  const layers: LayerWeights[] = [];
  for (let l = 0; l < c.nLayers; l++) {
    const p = `blk.${l}.`;
    const w = Object.fromEntries(MATRIX_NAMES.map((n) => [n, mat(p + Object.keys(LAYER_NAMES).find((k) => LAYER_NAMES[k] === n))])) as Record<MatrixName, Matrix>;
    layers.push({ rmsAtt: vec(p + 'attn_norm'), rmsFfn: vec(p + 'ffn_norm'), ...w });
  }
  const config: ModelConfig = {
    dim: c.dim, hiddenDim: c.hiddenDim, nLayers: c.nLayers, nHeads: c.nHeads, nKvHeads: c.nKvHeads,
    vocabSize: c.vocabSize, seqLen: c.ctx, sharedClassifier: c.sharedClassifier,
  };
  return {
    path, source: `edge-flash image v${img.version} for ${img.board?.name ?? `board id ${img.boardId}`}`, config,
    ropeTheta: c.ropeTheta, normEps: c.normEps,
    embedding: mat('token_embd'), layers, rmsFinal: vec('output_norm'),
    classifier: c.sharedClassifier ? null : mat('output'),
    tokenizer: tokenizerFromImage(img.tokenizer),
  };
}

// An image read with every check on; errors name the file.
export function openImage(path: string, bytes: Uint8Array, opts: ReadOptions = {}): Image {
  try {
    return readImage(bytes, opts);
  } catch (e) {
    if (e instanceof UserError) throw new UserError(`${path}: ${e.message}`, e.hint);
    throw e;
  }
}

// For `plan` and `pack` from an image: the Model it holds, with its image.
export function loadImageModel(path: string, bytes: Uint8Array, opts: ReadOptions = {}): { model: Model; image: Image } {
  const image = openImage(path, bytes, opts);
  return { model: imageToModel(image, path), image };
}

// The image's tokenizer section: the app's form (EFTK), which it tokenizes from as it is.
export function tokenizerBytes(m: Model): Uint8Array {
  if (!m.tokenizer) throw new UserError(`${m.path}: no tokenizer`, 'pass one with -z tokenizer.bin');
  return tokenizerImage(m.tokenizer);
}
