// The model descriptor's layout: the one table. tools/gen-desc.ts generates from it the runtime's
// reader constants (assembly/model/desc.ts), the host's writer constants (host/model/desc.ts), the C
// struct for a board's runtime with sizeof/offsetof asserts (boards/runtime/core/desc.gen.h) and the
// table in docs/model.md. The descriptor is i32 words (f32 fields as their bits), little-endian.

export interface DescField {
  name: string;     // constant suffix: D_<name> (header) or T_<name> (tensor entry)
  word: number;     // word index in the header or the entry
  type: 'i32' | 'f32';
  count?: number;   // words (reserved runs); default 1
  doc: string;
}

export const DESC_MAGIC = 0x4d444645; // "EFDM"
export const DESC_VERSION = 1;

export const DESC_HEADER: readonly DescField[] = [
  { name: 'MAGIC', word: 0, type: 'i32', doc: '`0x4d444645` ("EFDM")' },
  { name: 'VERSION', word: 1, type: 'i32', doc: 'descriptor version, 1' },
  { name: 'DIM', word: 2, type: 'i32', doc: "llama2.c's config: dim" },
  { name: 'HIDDEN', word: 3, type: 'i32', doc: 'FFN hidden dim' },
  { name: 'LAYERS', word: 4, type: 'i32', doc: 'layers' },
  { name: 'HEADS', word: 5, type: 'i32', doc: 'query heads' },
  { name: 'KV_HEADS', word: 6, type: 'i32', doc: 'KV heads' },
  { name: 'VOCAB', word: 7, type: 'i32', doc: 'vocabulary size' },
  { name: 'SEQ', word: 8, type: 'i32', doc: 'seq_len' },
  { name: 'KV_FORMAT', word: 9, type: 'i32', doc: 'KV-cache format id (docs/formats.md, KV-cache formats)' },
  { name: 'BATCH', word: 10, type: 'i32', doc: 'most tokens per forward call (prefill GEMM width)' },
  { name: 'STAGE', word: 11, type: 'i32', doc: 'bytes of the staging buffer for streamed weights' },
  { name: 'ROPE_THETA', word: 12, type: 'f32', doc: 'RoPE theta' },
  { name: 'NORM_EPS', word: 13, type: 'f32', doc: 'RMSNorm epsilon' },
  { name: 'DIM_STRIDE', word: 14, type: 'i32', doc: 'floats per token in dim-wide buffers (>= dim, zero padded)' },
  { name: 'KV_STRIDE', word: 15, type: 'i32', doc: 'floats per token in kv_dim-wide buffers' },
  { name: 'HIDDEN_STRIDE', word: 16, type: 'i32', doc: 'floats per token in hidden-wide buffers' },
  { name: 'MAX_K', word: 17, type: 'i32', doc: 'largest K of any matrix (activation staging)' },
  { name: 'MAX_M', word: 18, type: 'i32', doc: 'largest M of any matrix (output staging)' },
  { name: 'SCRATCH', word: 19, type: 'i32', doc: 'kernel scratch bytes to reserve' },
  { name: 'LOGITS', word: 20, type: 'i32', doc: 'floats of the logits buffer (classifier M)' },
  { name: 'TOK_OFFSET', word: 21, type: 'i32', doc: 'offset of the tokenizer (EFTK) from the image start (what weights_read serves); 0 with no tokenizer' },
  { name: 'TOK_BYTES', word: 22, type: 'i32', doc: 'its bytes: the tokenizer section; 0: no tokenizer on the device' },
  { name: 'TEXT_BYTES', word: 23, type: 'i32', doc: 'longest prompt in bytes the device tokenizes' },
  { name: 'SAMPLER', word: 24, type: 'i32', doc: '1: reserve the top-p buffer (vocab * 8 bytes)' },
  { name: 'N_TENSORS', word: 25, type: 'i32', doc: 'tensor entries: 3 + 9 * layers' },
  { name: 'KEEP_WO', word: 26, type: 'i32', doc: 'inputs of every wo kept by top-K sparsification (BitNet a4.8; the largest magnitudes, ties to the lower index), 1..dim; 0: all' },
  { name: 'KEEP_W2', word: 27, type: 'i32', doc: 'inputs of every w2 kept the same way, 1..hidden_dim; 0: all' },
  { name: 'RESERVED', word: 28, type: 'i32', count: 4, doc: '0' },
];
export const DESC_HEADER_WORDS = 32; // the first tensor entry starts here

export const DESC_TENSOR: readonly DescField[] = [
  { name: 'FORMAT', word: 0, type: 'i32', doc: 'weight format id (docs/formats.md)' },
  { name: 'KERNEL', word: 1, type: 'i32', doc: 'stable kernel id (docs/kernels.md); -1 for vectors and the embedding' },
  { name: 'QMAX', word: 2, type: 'i32', doc: 'activation quantization qmax (docs/formats.md, activation formats; 0: f32)' },
  { name: 'M', word: 3, type: 'i32', doc: 'rows as stored (padded to the row tile)' },
  { name: 'K', word: 4, type: 'i32', doc: 'columns as stored (padded to the block)' },
  { name: 'OFFSET', word: 5, type: 'i32', doc: 'byte offset of the tensor from the image start (what weights_read serves)' },
  { name: 'BYTES', word: 6, type: 'i32', doc: 'its bytes in the image (the weights directory entry\'s size)' },
  { name: 'RESIDENT', word: 7, type: 'i32', doc: '1: copied into linear memory at init; 0: streamed on use' },
  { name: 'PTR', word: 8, type: 'i32', doc: 'set by model_init: where a resident tensor lives' },
  { name: 'SCALE', word: 9, type: 'f32', doc: 'tensor scale (the formats with a tensor scale: ternary)' },
  { name: 'ROW_BYTES', word: 10, type: 'i32', doc: 'bytes per row (per row of a tile for tiled formats)' },
  { name: 'ROW_TILE', word: 11, type: 'i32', doc: 'streamed chunks are whole multiples of this many rows' },
];
export const DESC_TENSOR_WORDS = 12;

// Tensor entries, in order: the model's, then 9 per layer.
export const DESC_MODEL_TENSORS = ['EMBEDDING', 'RMS_FINAL', 'CLASSIFIER'] as const;
export const DESC_LAYER_TENSORS = ['RMS_ATT', 'WQ', 'WK', 'WV', 'WO', 'RMS_FFN', 'W1', 'W2', 'W3'] as const;

// model_init's results
export const DESC_INIT_RESULTS = [
  { name: 'OK', doc: 'laid out' },
  { name: 'BAD_DESC', doc: 'the descriptor is not one this runtime reads' },
  { name: 'OUT_OF_MEMORY', doc: 'linear memory is too small for the plan' },
] as const;
