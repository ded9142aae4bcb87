// The speed calibration behind the planner's tok/s estimate: a real decode step of the model under
// wasm3 on this machine (host/model/runtime.ts, the device build), and a wasm3 fib(n) here, scaled by
// the board's published or estimated fib figure (boards/<board>.json "speed"). Without the wasm3
// addon there is no estimate.
import { tryEngine } from '../engine/index.ts';
import type { Engine } from '../engine/types.ts';
import type { KvFormat } from '../model/kv.ts';
import type { Model } from '../model/model.ts';
import type { ActMode } from '../model/plan.ts';
import { ModelRuntime } from '../model/runtime.ts';
import type { HostSpeed } from './plan.ts';

// (module (memory (export "memory") 1)
//   (func (export "fib") (param i32) (result i32)
//     (if (result i32) (i32.lt_u (local.get 0) (i32.const 2)) (then (local.get 0))
//       (else (i32.add (call 0 (i32.sub (local.get 0) (i32.const 1))) (call 0 (i32.sub (local.get 0) (i32.const 2))))))))
// The recursive fib of wasm3's docs/Performance.md, whose board figures the profiles quote.
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

function seconds(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

export function fibValue(n: number): number {
  let a = 0, b = 1;
  for (let i = 0; i < n; i++) [a, b] = [b, a + b];
  return a;
}

// wasm3 fib(n) calls per second on this machine: the fastest of the fib(n) calls made in `seconds_`
// (the least disturbed by other work on the machine).
export function measureFibRate(engine: Engine, n = 24, seconds_ = 0.04): number {
  const inst = engine.instantiate(FIB_WASM, () => []);
  try {
    inst.call('fib', n); // warm-up: wasm3 compiles on first call
    let best = Infinity, t = 0;
    while (t < seconds_) {
      const dt = seconds(() => inst.call('fib', n));
      best = Math.min(best, dt);
      t += dt;
    }
    return (2 * fibValue(n + 1) - 1) / best;
  } finally {
    inst.close();
  }
}

// Seconds of one decode step (forward one token, logits out) under `engine` with the device build,
// at the mean position of a full context: the fastest of the steps run from seq_len/2 (at least 3, and
// at least `seconds_` of them). The KV cache below holds zeros, which costs the same as real keys.
export function measureDecodeSeconds(engine: Engine, model: Model, kv: KvFormat, act: ActMode, seconds_ = 0.04, rt?: ModelRuntime, topk?: number): number {
  const own = rt ?? ModelRuntime.create(model, engine, { target: 'device', kv, act, topk, batch: 1 });
  try {
    const c = model.config;
    const p0 = Math.max(0, Math.floor(c.seqLen / 2) - 1);
    own.forward([1], p0, true); // warm-up: wasm3 compiles functions on first call
    const times: number[] = [];
    let total = 0;
    for (let i = 0; times.length < 3 || total < seconds_; i++) {
      const t = seconds(() => own.forward([1], Math.min(c.seqLen - 1, p0 + 1 + (i % 8)), true));
      times.push(t);
      total += t;
    }
    return Math.min(...times);
  } finally {
    if (!rt) own.close();
  }
}

// The calibration: `repeats` rounds, each a decode measurement and a fib measurement back to back,
// each the fastest of its runs. The estimate scales decode seconds by the fib rate, so each round's
// product is what it depends on: a machine that slows down slows both alike and the product stays.
// The median round is reported, with the spread of the products ((max - min) / median).
export async function measureHostSpeed(model: Model, kv: KvFormat, act: ActMode, repeats = 7, topk?: number): Promise<HostSpeed | { error: string }> {
  const r = await tryEngine('wasm3');
  if (!r.engine) return { error: `wasm3 is not available (${r.error})` };
  const rt = ModelRuntime.create(model, r.engine, { target: 'device', kv, act, topk, batch: 1 });
  const rounds: { sec: number; fib: number; product: number }[] = [];
  try {
    for (let i = 0; i < repeats; i++) {
      const sec = measureDecodeSeconds(r.engine, model, kv, act, 0.04, rt);
      const fib = measureFibRate(r.engine);
      rounds.push({ sec, fib, product: sec * fib });
    }
  } finally {
    rt.close();
  }
  rounds.sort((a, b) => a.product - b.product);
  const mid = rounds[Math.floor(rounds.length / 2)];
  const spread = (rounds[rounds.length - 1].product - rounds[0].product) / mid.product;
  return {
    secondsPerToken: mid.sec, fibRate: mid.fib, spread,
    detail: `${(mid.sec * 1e3).toFixed(2)} ms a token at position ${Math.floor(model.config.seqLen / 2)}, fib ${(mid.fib / 1e6).toFixed(0)}M calls/s; ` +
      `median of ${repeats} rounds, spread ${(spread * 100).toFixed(0)} %`,
  };
}
