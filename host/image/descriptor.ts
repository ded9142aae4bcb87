// The runtime plan an image records: its descriptor section (checked by host/image/read.ts) read back
// as the host's Plan, so that `run <image>` reports and checks what model_init will do (the tensors'
// formats, kernels and residency, the buffers, the arena high-water mark: memoryPlan) without planning
// anything of its own. The bytes the tensors name are the image's.
import * as D from '../model/desc.ts';
import { KERNELS } from '../model/dispatch.ts';
import { kvFormat } from '../model/kv.ts';
import { MATRIX_NAMES } from '../model/model.ts';
import { memoryPlan, type MemoryPlan, type Plan, type TensorPlan } from '../model/plan.ts';
import { formatById, type Target } from '../quant/formats.ts';
import type { Image } from './read.ts';

// The plan's tensor names (host/model/plan.ts planFor), in descriptor order.
function tensorName(i: number): { name: string; kind: TensorPlan['kind'] } {
  if (i === D.TENSOR_EMBEDDING) return { name: 'embedding', kind: 'embedding' };
  if (i === D.TENSOR_RMS_FINAL) return { name: 'rms_final', kind: 'vector' };
  if (i === D.TENSOR_CLASSIFIER) return { name: 'classifier', kind: 'matrix' };
  const l = Math.floor((i - D.TENSOR_LAYER0) / D.PER_LAYER), j = (i - D.TENSOR_LAYER0) % D.PER_LAYER;
  const names = ['rms_att', MATRIX_NAMES[0], MATRIX_NAMES[1], MATRIX_NAMES[2], MATRIX_NAMES[3], 'rms_ffn', MATRIX_NAMES[4], MATRIX_NAMES[5], MATRIX_NAMES[6]];
  return { name: `layers.${l}.${names[j]}`, kind: j === D.L_RMS_ATT || j === D.L_RMS_FFN ? 'vector' : 'matrix' };
}

// `heapBase`: the app's arena_top after arena_reset (where model_init starts allocating).
export function imagePlan(img: Image, heapBase: number, target: Target): Plan {
  const v = new DataView(img.descriptor.buffer, img.descriptor.byteOffset, img.descriptor.byteLength);
  const w = (i: number) => v.getInt32(4 * i, true);
  const c = img.config;
  const tensors: TensorPlan[] = [];
  for (let i = 0; i < w(D.D_N_TENSORS); i++) {
    const e = D.D_TENSORS + i * D.T_WORDS;
    const kernel = KERNELS.find((k) => k.id === w(e + D.T_KERNEL)) ?? null;
    const offset = w(e + D.T_OFFSET) >>> 0, bytes = w(e + D.T_BYTES) >>> 0;
    tensors.push({
      ...tensorName(i), format: formatById(w(e + D.T_FORMAT))!, kernel, act: kernel ? kernel.act : 'f32', m: w(e + D.T_M), k: w(e + D.T_K),
      scale: v.getFloat32(4 * (e + D.T_SCALE), true), offset, bytes, rowBytes: w(e + D.T_ROW_BYTES), rowTile: w(e + D.T_ROW_TILE),
      resident: w(e + D.T_RESIDENT) === 1, data: img.bytes.subarray(offset, offset + bytes),
    });
  }
  const plan: Plan = {
    config: { dim: c.dim, hiddenDim: c.hiddenDim, nLayers: c.nLayers, nHeads: c.nHeads, nKvHeads: c.nKvHeads, vocabSize: c.vocabSize, seqLen: c.ctx, sharedClassifier: c.sharedClassifier },
    target, kv: kvFormat(c.kv)!, act: c.act === 'f32' ? 'i8' : c.act, keepWo: w(D.D_KEEP_WO), keepW2: w(D.D_KEEP_W2), batch: w(D.D_BATCH), dimStride: w(D.D_DIM_STRIDE), kvStride: w(D.D_KV_STRIDE), hiddenStride: w(D.D_HIDDEN_STRIDE),
    maxK: w(D.D_MAX_K), maxM: w(D.D_MAX_M), logits: w(D.D_LOGITS), scratch: w(D.D_SCRATCH), stageBytes: w(D.D_STAGE), textBytes: w(D.D_TEXT_BYTES),
    sampler: w(D.D_SAMPLER) === 1, tokenizerImage: w(D.D_TOK_BYTES) > 0 ? img.tokenizer : null, tensors, memory: undefined as unknown as MemoryPlan,
  };
  plan.memory = memoryPlan(plan, heapBase);
  return plan;
}
