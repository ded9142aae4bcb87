// The ESP32-C3's speed from instructions counted on its ISA (RV32IMC) in the emulator: `edge-flash
// bench --isa rv32imc` measured these (host/bench/isa.ts); the planner prints the tok/s they give
// beside its older estimate (host/image/plan.ts, formatPlan). Data, not code: replace the table with
// the JSON of a new run (the rows' instr_per_token) and say which command produced it.
//
// tok/s = 160 MHz / (instructions a token x CPI) with the flash reads of streamed weights added at the
// board's flash read rate. CPI (ISA_CPI) is an assumption, not a measurement: the C3's in-order core
// retires about one instruction a cycle when code and data hit SRAM and its 16 KiB flash cache; loads,
// taken branches and multiplies stall it, and cache misses (code in flash, weights streamed) are
// not in the emulator's count.
import type { ModelConfig } from './config.ts';

export const ISA_CPI = 1.5;
export const ISA_CLOCK_HZ = 160e6;
export const ISA_CPI_BASIS = `CPI ${ISA_CPI} assumed (an in-order RV32IMC core at ~1 instruction a cycle, plus stalls on loads, taken branches and multiplies; flash-cache misses not modelled beyond the streamed weights' read time)`;

export interface IsaCounts {
  model: string;
  config: Pick<ModelConfig, 'dim' | 'hiddenDim' | 'nLayers' | 'nHeads' | 'nKvHeads' | 'vocabSize'>;
  steps: number;
  // instructions a token (mean over positions 1..steps-1), by bench --isa row
  rows: { 'runc-native': number; 'runc-wasm3': number; 'edge-flash-wasm3': number; 'edge-flash-aot': number };
}

// ISA_TABLE_COMMAND produced ISA_TABLE (its --json rows, instr_per_token rounded).
export const ISA_TABLE_COMMAND = 'edge-flash bench --isa rv32imc --model models/kjv-esp32-260k/model.bin --runc-src run.c --steps 32 --repeat 2 --json (llama2.c run.c at 350e04f; Espressif QEMU esp32c3/virt, -icount shift=0)';
export const ISA_TABLE: IsaCounts[] = [
  {
    model: 'kjv-esp32-260k (tb1, int4 KV)',
    config: { dim: 64, hiddenDim: 172, nLayers: 5, nHeads: 8, nKvHeads: 4, vocabSize: 512 },
    steps: 32,
    rows: { 'runc-native': 50526650, 'runc-wasm3': 208155331, 'edge-flash-wasm3': 25810628, 'edge-flash-aot': 9571398 },
  },
  {
    // bench --isa rv32imc --model 3m --steps 8 --repeat 1 (random weights of kjv-s3-3m's shape; counted on virt)
    model: '3m shape of kjv-s3-3m (tb1, int4 KV)',
    config: { dim: 256, hiddenDim: 512, nLayers: 4, nHeads: 8, nKvHeads: 4, vocabSize: 4096 },
    steps: 8,
    rows: { 'runc-native': 643063120, 'runc-wasm3': 2558411526, 'edge-flash-wasm3': 341748160, 'edge-flash-aot': 91189814 },
  },
];

// The counted instructions a token of a model of this shape on this engine, or null when not measured.
export function isaInstructions(c: ModelConfig, engine: 'wasm3' | 'aot'): { perToken: number; from: IsaCounts } | null {
  const m = ISA_TABLE.find((t) => t.config.dim === c.dim && t.config.hiddenDim === c.hiddenDim && t.config.nLayers === c.nLayers
    && t.config.nHeads === c.nHeads && t.config.nKvHeads === c.nKvHeads && t.config.vocabSize === c.vocabSize);
  return m ? { perToken: m.rows[engine === 'aot' ? 'edge-flash-aot' : 'edge-flash-wasm3'], from: m } : null;
}

// The ESP32-C3 tok/s from the counts, or null (another board, or an unmeasured shape).
export function isaTokPerSec(board: string, c: ModelConfig, engine: 'wasm3' | 'aot', streamedBytesPerToken: number, flashBytesPerSecond: number): { value: number; basis: string } | null {
  if (board !== 'esp32c3') return null;
  const m = isaInstructions(c, engine);
  if (!m) return null;
  const seconds = (m.perToken * ISA_CPI) / ISA_CLOCK_HZ + streamedBytesPerToken / flashBytesPerSecond;
  return {
    value: 1 / seconds,
    basis: `${(m.perToken / 1e6).toFixed(2)}M RV32IMC instructions a token counted in the emulator (${m.from.model}, ${engine === 'aot' ? 'the AOT app' : 'the app under wasm3'}, positions 1..${m.from.steps - 1}; bench --isa) at 160 MHz, ${ISA_CPI_BASIS}${streamedBytesPerToken > 0 ? `; plus the streamed weights at ${(flashBytesPerSecond / 1e6).toFixed(0)} MB/s` : ''}`,
  };
}
