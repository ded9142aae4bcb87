// Every kernel of the format table against its scalar reference, on every engine and build target:
// seeded random shapes including odd and large K; integer paths must be bit-exact.
import { readFileSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { wasmBytes } from '../host/engine/index.ts';
import { baseImports } from '../host/engine/imports.ts';
import { KernelHost } from '../host/engine/kernels.ts';
import { rejectedInstructions } from '../host/engine/opcodes.ts';
import { UserError } from '../host/errors.ts';
import { fromRoot } from '../host/paths.ts';
import { ACT_FORMATS, FORMATS, type Target } from '../host/quant/formats.ts';
import { quantizeAct, sparsifyTopK } from '../host/quant/ref/act.ts';
import { REFS } from '../host/quant/ref/index.ts';
import { TERNARY_REFS, packTrits, unpackTrits } from '../host/quant/ref/ternary.ts';
import { firstMismatch, randn, randomTrits, rng, testEngines } from './helpers.ts';

const engines = await testEngines();
// Per-family tolerance of a kernel against its reference (relative to max |y|): 0 means bit-exact.
const TOLERANCE: Record<string, number> = { ternary: 0, lowbit: 0, bitmod: 0, int8: 0, float: 1e-5 };
// f32p8's reference sums each row in float32 in run.c's order, as its kernels do: bit-exact too.
const EXACT = new Set(['f32p8']);
// (the last two: K not a multiple of 4, and 8-row panels with a tail, for the f32 formats' remainders)
const SHAPES: Array<[number, number, number]> = [[1, 64, 1], [3, 128, 1], [4, 192, 2], [5, 256, 3], [17, 1024, 1], [8, 4160, 2], [64, 2048, 1], [13, 7, 2], [23, 290, 1]];

const layout = suite('ternary layouts');
layout('pack/unpack round-trips every layout', () => {
  const r = rng(1);
  for (const name of Object.keys(TERNARY_REFS)) {
    const fmt = FORMATS.find((f) => f.name === name)!;
    const m = fmt.rowTile ?? 3;
    const trits = randomTrits(r, m * 256);
    const back = unpackTrits(packTrits(fmt, trits, m, 256, 1));
    assert.is(firstMismatch(trits, back), -1, `${name} round-trip`);
  }
});
layout('tq1 encodes all 243 five-trit values exactly', () => {
  const fmt = FORMATS.find((f) => f.name === 'tq1')!;
  const trits = new Int8Array(64 * 243);
  for (let v = 0; v < 243; v++) for (let d = 0; d < 5; d++) trits[v * 64 + 12 * d] = (Math.floor(v / 3 ** (4 - d)) % 3) - 1;
  const back = unpackTrits(packTrits(fmt, trits, 243, 64, 1));
  assert.is(firstMismatch(trits, back), -1);
});
layout.run();

for (const engine of engines) {
  const targets: Target[] = engine.name === 'v8' ? ['device', 'simd'] : ['device'];
  for (const target of targets) {
    const s = suite(`kernels on ${engine.name}/${target}`);
    const host = KernelHost.create(engine, target);

    s('quantize_act matches the reference bit for bit', () => {
      for (const act of ACT_FORMATS.filter((a) => a.qmax > 0)) {
        for (const seed of [1, 2, 3]) {
          const r = rng(seed);
          const n = 3, k = 97 + seed;
          const x = randn(r, n * k, 3);
          if (seed === 3) x.fill(0, 0, k); // an all-zero token
          host.reset();
          const got = host.quantizeAct(x, n, k, act.qmax);
          const want = quantizeAct(x, n, k, act.name);
          assert.is(firstMismatch(got.q, want.q), -1, `${act.name} q seed ${seed}`);
          assert.is(firstMismatch(got.scales, want.scales), -1, `${act.name} scales seed ${seed}`);
        }
      }
    });

    s('sparsify_topk keeps what the reference keeps, bit for bit (ties, zeros, signs, strided rows)', () => {
      const r = rng(5);
      for (const [n, k, keep] of [[1, 64, 32], [3, 172, 86], [2, 100, 1], [2, 100, 99], [4, 288, 144], [1, 768, 346], [2, 50, 0], [2, 50, 50]]) {
        const x = randn(r, n * k, 2);
        // ties at and around the threshold, both signs, exact zeros, subnormals and one huge outlier
        for (let i = 0; i < n * k; i += 7) x[i] = (i & 8 ? -1 : 1) * 0.75;
        for (let i = 3; i < n * k; i += 11) x[i] = i & 16 ? -0 : 0;
        x[5] = 1e-40; x[6] = -1e-40; x[k - 1] = -3e30;
        host.reset();
        const want = sparsifyTopK(x, n, k, keep);
        assert.is(firstMismatch(new Uint32Array(host.sparsifyTopK(x, n, k, k, keep).buffer), new Uint32Array(want.buffer)), -1, `n=${n} k=${k} keep=${keep}`);
        for (let t = 0; t < n; t++) {
          const kept = want.subarray(t * k, (t + 1) * k).reduce((c, v) => c + (v !== 0 ? 1 : 0), 0);
          const nonzero = x.subarray(t * k, (t + 1) * k).reduce((c, v) => c + (v !== 0 ? 1 : 0), 0);
          assert.is(kept, keep === 0 ? nonzero : Math.min(keep, nonzero), `row ${t}: ${kept} kept`);
        }
        // rows `stride` apart: the padding between them stays as it was
        const stride = k + 4, padded = new Float32Array(n * stride).fill(9);
        for (let t = 0; t < n; t++) padded.set(x.subarray(t * k, (t + 1) * k), t * stride);
        host.reset();
        const got = host.sparsifyTopK(padded, n, k, stride, keep);
        for (let t = 0; t < n; t++) {
          assert.is(firstMismatch(new Uint32Array(got.slice(t * stride, t * stride + k).buffer), new Uint32Array(want.slice(t * k, (t + 1) * k).buffer)), -1, `strided row ${t}`);
          assert.equal(Array.from(got.subarray(t * stride + k, (t + 1) * stride)), [9, 9, 9, 9], `padding of row ${t}`);
        }
      }
    });

    for (const fmt of FORMATS.filter((f) => !f.retired && REFS[f.name])) {
      for (const kv of fmt.kernels.filter((kv) => kv.targets.includes(target))) {
        for (const act of kv.acts) {
          s(`${fmt.name} ${act} ${kv.name} matches the reference`, () => {
            const ref = REFS[fmt.name];
            for (const [i, [m0, k0, n]] of SHAPES.entries()) {
              const seed = 1000 * fmt.id + 10 * i + act.length;
              const r = rng(seed);
              const k = Math.ceil(k0 / fmt.block) * fmt.block;
              const tile = Math.max(kv.rowTile, fmt.rowTile ?? 1);
              const m = Math.ceil(m0 / tile) * tile;
              const t = ref.quantize(randn(r, m * k), m, k);
              const x = quantizeAct(randn(r, n * k, 2), n, k, act);
              host.reset();
              const got = host.gemm(t, x, kv.name);
              const want = ref.gemm(t, x);
              const tol = EXACT.has(fmt.name) ? 0 : TOLERANCE[fmt.family];
              if (tol === 0) {
                const at = firstMismatch(got, want);
                assert.is(at, -1, `seed ${seed} shape ${m}x${k}x${n}: y[${at}] = ${got[at]}, want ${want[at]}`);
              } else {
                const scale = Math.max(1e-6, ...Array.from(want, Math.abs));
                for (let j = 0; j < want.length; j++) {
                  assert.ok(Math.abs(got[j] - want[j]) <= tol * scale, `seed ${seed} shape ${m}x${k}x${n}: y[${j}] = ${got[j]}, want ${want[j]}`);
                }
              }
            }
          });
        }
      }
    }

    s('a shape that does not fit the block is a UserError naming shape and block', () => {
      const fmt = FORMATS.find((f) => f.name === 'tq2')!;
      const t = { format: fmt, m: 4, k: 100, data: new Uint8Array(64), scale: 1 };
      const x = quantizeAct(new Float32Array(100), 1, 100, 'i8');
      try {
        host.gemm(t, x, 'naive');
        assert.unreachable('should throw');
      } catch (e) {
        assert.instance(e, UserError);
        assert.match((e as Error).message, /K=100 is not a multiple of its block size 64/);
      }
    });

    s('a kernel missing from a target is a UserError, not a trap', () => {
      const fmt = FORMATS.find((f) => f.name === 'tq2')!;
      const t = TERNARY_REFS.tq2.quantize(new Float32Array(64).fill(1), 1, 64);
      const x = quantizeAct(new Float32Array(64).fill(1), 1, 64, 'i8');
      if (target === 'device') assert.throws(() => host.gemm(t, x, 'simd'), /not in the device build/);
      assert.throws(() => host.gemm(t, x, 'nope'), new RegExp(`format ${fmt.name} has no 'nope' kernel`));
    });

    s.run();
  }
}

const build = suite('build targets');
build('the device build uses no SIMD instruction (wasm3 runs only the MVP)', () => {
  const wat = readFileSync(fromRoot('build', 'device.wat'), 'utf8');
  assert.not.match(wat, /v128|i8x16|i16x8|i32x4|f32x4/);
});
build('the device build holds only instructions wasm3 runs (any other is named with its function)', () => {
  const bad = rejectedInstructions(readFileSync(fromRoot('build', 'device.wasm')));
  assert.equal(bad.map((b) => `${b.proposal} ${b.opcode} in function ${b.func}`), []);
});
// A module of one function () -> () with `body` (no locals), for the instruction scan.
function oneFunction(body: number[]): Uint8Array {
  const code = [0, ...body, 0x0b];
  return Uint8Array.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 1, 4, 1, 0x60, 0, 0, 3, 2, 1, 0, 5, 3, 1, 0, 1, 10, code.length + 2, 1, code.length, ...code]);
}
build('the instruction scan names what wasm3 does not run and passes what it does', () => {
  const simd = rejectedInstructions(wasmBytes('simd'));
  assert.ok(simd.length > 0 && simd.every((b) => b.proposal === 'SIMD (v128)'), JSON.stringify(simd[0]));
  assert.equal(rejectedInstructions(oneFunction([0x12, 0x00]))[0]?.proposal, 'tail calls (return_call)');
  assert.equal(rejectedInstructions(oneFunction([0x41, 0, 0xfe, 0x10, 2, 0, 0x1a]))[0]?.proposal, 'threads (atomics)');
  assert.equal(rejectedInstructions(oneFunction([0x41, 0, 0x41, 0, 0x41, 0, 0xfc, 0x08, 0, 0]))[0]?.proposal, 'bulk memory (memory.init/data.drop)');
  // memory.copy, memory.fill, sign extension and saturating truncation are in wasm3
  assert.equal(rejectedInstructions(oneFunction([0x41, 0, 0x41, 0, 0x41, 0, 0xfc, 0x0a, 0, 0, 0x41, 0, 0x41, 0, 0x41, 0, 0xfc, 0x0b, 0,
    0x41, 0x7f, 0xc0, 0x1a, 0x43, 0, 0, 0, 0, 0xfc, 0x00, 0x1a])), []);
});
for (const engine of engines.filter((e) => e.name === 'wasm3')) {
  build('wasm3 refuses the simd build at instantiation, naming the instruction', () => {
    assert.throws(() => engine.instantiate(wasmBytes('simd'), baseImports()), /wasm3: compile: .*SIMD \(v128\): (0xfd 0x[0-9a-f]+|a v128 local) in function \d+/);
  });
}
build('the simd build carries SIMD kernels', () => {
  const wat = readFileSync(fromRoot('build', 'simd.wat'), 'utf8');
  assert.match(wat, /i16x8\.extmul_low_i8x16_s/);
});
build.run();
