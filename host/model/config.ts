// The model configuration shared by loaders, the runtime, the planner and images: llama2.c's header.
export interface ModelConfig {
  dim: number;          // transformer width
  hiddenDim: number;    // SwiGLU hidden width
  nLayers: number;
  nHeads: number;
  nKvHeads: number;     // grouped-query attention: nKvHeads divides nHeads
  vocabSize: number;
  seqLen: number;       // maximum context
  sharedClassifier: boolean; // classifier weights are the token embedding
}

export function headDim(c: ModelConfig): number {
  return c.dim / c.nHeads;
}

export function kvDim(c: ModelConfig): number {
  return (c.dim * c.nKvHeads) / c.nHeads;
}

// Parameter count of the transformer weights (norms included, RoPE tables not).
export function parameterCount(c: ModelConfig): number {
  const kv = kvDim(c);
  const perLayer = 2 * c.dim + c.dim * c.dim * 2 + c.dim * kv * 2 + 3 * c.dim * c.hiddenDim;
  return c.vocabSize * c.dim + c.nLayers * perLayer + c.dim + (c.sharedClassifier ? 0 : c.vocabSize * c.dim);
}
