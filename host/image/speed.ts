// The speed calibration behind the planner's tok/s estimate: time this model's per-token GEMVs and a
// wasm3 fib(n) here, under wasm3, then scale by the board's published (or estimated) fib figure
// (boards/<board>.json "speed"). Needs the wasm3 addon; without it there is no estimate.
import { KernelHost } from '../engine/kernels.ts';
import { tryEngine } from '../engine/index.ts';
import type { Engine } from '../engine/types.ts';
import { headDim, type ModelConfig } from '../model/config.ts';
import { formatByName, type WeightFormat } from '../quant/formats.ts';
import { quantizeAct } from '../quant/ref/act.ts';
import { REFS } from '../quant/ref/index.ts';
import { modelTensors, paddedK } from './layout.ts';
import type { HostSpeed } from './plan.ts';

// (module (func (export "fib") (param i32) (result i32)
//   (if (result i32) (i32.lt_u (local.get 0) (i32.const 2)) (then (local.get 0))
//     (else (i32.add (call 0 (i32.sub (local.get 0) (i32.const 1))) (call 0 (i32.sub (local.get 0) (i32.const 2))))))))
// plus one page of exported memory (the engines expect a memory export). The wasm3 authors' fib32.
export const FIB_WASM = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  0x01, 0x06, 0x01, 0x60, 0x01, 0x7f, 0x01, 0x7f,                          // type: (i32) -> i32
  0x03, 0x02, 0x01, 0x00,                                                  // function 0: type 0
  0x05, 0x03, 0x01, 0x00, 0x01,                                            // memory: min 1 page
  0x07, 0x10, 0x02, 0x03, 0x66, 0x69, 0x62, 0x00, 0x00,                    // export "fib" func 0
  0x06, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 0x02, 0x00,                    // export "memory" mem 0
  0x0a, 0x1e, 0x01, 0x1c, 0x00,                                            // code: 1 body, 28 bytes, no locals
  0x20, 0x00, 0x41, 0x02, 0x49, 0x04, 0x7f, 0x20, 0x00, 0x05,              // n < 2 ? n :
  0x20, 0x00, 0x41, 0x01, 0x6b, 0x10, 0x00,                                // fib(n - 1)
  0x20, 0x00, 0x41, 0x02, 0x6b, 0x10, 0x00, 0x6a, 0x0b, 0x0b,              // + fib(n - 2)
]);

function bestOf(runs: number, fn: () => void): number {
  let best = Infinity;
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return best;
}

export function measureFibRate(engine: Engine, n = 27): number {
  const inst = engine.instantiate(FIB_WASM, () => []);
  try {
    const s = bestOf(3, () => inst.call('fib', n));
    return (2 * fibValue(n + 1) - 1) / s;
  } finally {
    inst.close();
  }
}

function fibValue(n: number): number {
  let a = 0, b = 1;
  for (let i = 0; i < n; i++) [a, b] = [b, a + b];
  return a;
}

// Seconds per generated token of this model's GEMVs (every matrix at its shape and format, the best
// device kernel of each), plus attention at the mean position ctx/2 timed as f32 GEMVs. Tall matrices
// are timed on at most 2048 rows and scaled, to bound the time this takes.
export function measureModelSeconds(engine: Engine, c: ModelConfig, formats: Map<string, WeightFormat>, ctx: number): number {
  const host = KernelHost.create(engine, 'device');
  try {
    const cache = new Map<string, number>();
    const time = (f: WeightFormat, m: number, k: number): number => {
      const key = `${f.name}:${m}:${k}`;
      const hit = cache.get(key);
      if (hit !== undefined) return hit;
      const tile = Math.max(16, f.rowTile ?? 1);
      const rows = Math.min(m, 2048);
      const mm = Math.ceil(rows / tile) * tile;
      const ref = REFS[f.name];
      let w = new Float32Array(mm * k);
      for (let i = 0; i < w.length; i++) w[i] = Math.sin(i * 0.7) * 0.1;
      const t = ref.quantize(w, mm, k);
      w = new Float32Array(0);
      const xs = new Float32Array(k).map((_, i) => Math.cos(i * 0.3));
      let best = Infinity;
      for (const kv of f.kernels.filter((x) => x.targets.includes('device'))) {
        const act = f.name === 'f32' ? 'f32' : 'i8';
        if (!kv.acts.includes(act)) continue;
        host.reset();
        const g = host.prepare(t, quantizeAct(xs, 1, k, act), kv.name);
        g.run();
        const s = bestOf(3, () => g.run());
        best = Math.min(best, s);
      }
      const sec = (best * m) / mm;
      cache.set(key, sec);
      return sec;
    };
    let total = 0;
    for (const t of modelTensors(c)) {
      if (t.role === 'norm' || t.role === 'embedding') continue;
      total += time(formats.get(t.name)!, t.m, paddedK(formats.get(t.name)!, t.k));
    }
    if (c.sharedClassifier) total += time(formats.get('token_embd')!, c.vocabSize, paddedK(formats.get('token_embd')!, c.dim));
    const f32 = formatByName('f32')!;
    const pos = Math.max(16, Math.ceil(ctx / 2 / 16) * 16);
    const hd = Math.ceil(headDim(c) / 16) * 16;
    total += 2 * c.nLayers * c.nHeads * time(f32, pos, hd);   // scores (pos x head) and values, per head
    return total;
  } finally {
    host.close();
  }
}

export async function measureHostSpeed(c: ModelConfig, formats: Map<string, WeightFormat>, ctx: number): Promise<HostSpeed | { error: string }> {
  const r = await tryEngine('wasm3');
  if (!r.engine) return { error: `wasm3 is not available (${r.error})` };
  const fibRate = measureFibRate(r.engine);
  const secondsPerToken = measureModelSeconds(r.engine, c, formats, ctx);
  return { secondsPerToken, fibRate, detail: `${(secondsPerToken * 1e3).toFixed(2)} ms a token, fib ${(fibRate / 1e6).toFixed(0)}M calls/s` };
}
