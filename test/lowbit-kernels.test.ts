// The grouped kernels (q8_0, INT2/3/4, BitMoD) on inputs a quantizer rarely produces: every code
// value (random bytes, so BitMoD's special values and all four grids occur), and the extremes that bound
// the kernels' integer lanes (largest codes or grid values against activations of +-127). Bit-exact
// against the reference on every engine and build.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { KernelHost } from '../host/engine/kernels.ts';
import { BITMOD_GRIDS, FORMATS, type ActFormatName, type Target, type WeightFormat } from '../host/quant/formats.ts';
import { REFS } from '../host/quant/ref/index.ts';
import { bitsOf } from '../host/quant/ref/lowbit.ts';
import type { ActTensor, QuantTensor } from '../host/quant/tensor.ts';
import { firstMismatch, randn, rng, testEngines } from './helpers.ts';

const engines = await testEngines();
const GROUPED = FORMATS.filter((f) => !f.retired && ['int8', 'lowbit', 'bitmod'].includes(f.family));

// A weight tensor of random bytes with sane scales: f32 scale(s) first, then the codes (or i8 weights).
function randomTensor(f: WeightFormat, m: number, k: number, r: () => number, fill?: number, sel?: number): QuantTensor {
  const nb = k / f.block;
  const data = new Uint8Array(m * nb * f.blockBytes);
  const view = new DataView(data.buffer);
  const scales = randn(r, 2 * m * nb, 0.05);
  for (let b = 0; b < m * nb; b++) {
    const at = b * f.blockBytes;
    const head = f.family === 'int8' ? 4 : 8;
    for (let i = at + head; i < at + f.blockBytes; i++) data[i] = fill ?? Math.floor(r() * 256);
    view.setFloat32(at, Math.abs(scales[2 * b]) + 1e-3, true);
    if (f.family === 'lowbit') view.setFloat32(at + 4, scales[2 * b + 1], true);
    if (f.family === 'bitmod') data[at + 4] = sel ?? Math.floor(r() * 4);
    if (f.family === 'int8' && fill !== undefined) for (let i = at + 4; i < at + 36; i++) data[i] = 0x81; // -127
  }
  return { format: f, m, k, data, scale: 1 };
}

function acts(format: ActFormatName, n: number, k: number, r: () => number, fill?: number): ActTensor {
  const qmax = format === 'i8' ? 127 : 7;
  const q = new Int8Array(n * k).map(() => fill ?? Math.round((r() * 2 - 1) * qmax));
  return { format, n, k, q, scales: Float32Array.from({ length: n }, () => 0.01 + r()) };
}

for (const engine of engines) {
  const targets: Target[] = engine.name === 'v8' ? ['device', 'simd'] : ['device'];
  for (const target of targets) {
    const s = suite(`grouped kernels on ${engine.name}/${target}, all codes and extremes`);
    const host = KernelHost.create(engine, target);
    for (const f of GROUPED) {
      for (const kv of f.kernels.filter((x) => x.targets.includes(target))) {
        for (const act of kv.acts) {
          s(`${f.name} ${act} ${kv.name}`, () => {
            const check = (t: QuantTensor, x: ActTensor, what: string) => {
              host.reset();
              const got = host.gemm(t, x, kv.name);
              const want = REFS[f.name].gemm(t, x);
              const at = firstMismatch(got, want);
              assert.is(at, -1, `${what}, shape ${t.m}x${t.k}x${x.n}: y[${at}] = ${got[at]}, want ${want[at]}`);
            };
            for (const [seed, m, k, n] of [[1, 3, 256, 1], [2, 2, 640, 3], [3, 1, 2048, 2]]) {
              const r = rng(seed * 7919 + f.id);
              check(randomTensor(f, m, k, r), acts(act, n, k, r), `random codes, seed ${seed}`);
            }
            // the scratch the table declares is what the kernel takes (rounded up to 16 by the arena)
            {
              const r = rng(f.id + 1);
              const t = randomTensor(f, 2, 1024, r), x = acts(act, 3, 1024, r);
              host.reset();
              const p = host.prepare(t, x, kv.name);
              const top = () => Number(host.instance.call('arena_top'));
              const before = top();
              p.run();
              const declared = kv.scratch!(1024, 3, act);
              assert.is(top() - before, Math.ceil(declared / 16) * 16, `${f.name}/${kv.name}: scratch taken vs declared ${declared}`);
            }
            // the largest products the integer lanes must hold
            const r = rng(f.id);
            const top = act === 'i8' ? 127 : 7;
            const bits = f.family === 'int8' ? 8 : bitsOf(f);
            const sels = f.family === 'bitmod' ? [0, 1, 2, 3] : [0];
            for (const sel of sels) {
              // lowbit: all codes 2^bits - 1; bitmod: every code the grid's largest magnitude (its special value
              // where that is the largest: 6, 16), packed in every slot
              let code = (1 << bits) - 1;
              if (f.family === 'bitmod') {
                const grid = BITMOD_GRIDS[bits][sel];
                code = grid.reduce((best, v, c) => (Math.abs(v) > Math.abs(grid[best]) ? c : best), 0);
              }
              const byte = bits === 4 ? code | (code << 4) : bits === 2 ? 0x55 * code : 0x55 * (code & 3);
              const t = randomTensor(f, 2, 1024, r, byte, sel);
              if (bits === 3) {
                // high bits: the G/8 bytes after the G/4 low bytes of every block
                const hi = code & 4 ? 0xff : 0;
                for (let b = 0; b < t.data.length / f.blockBytes; b++) t.data.fill(hi, b * f.blockBytes + 8 + f.block / 4, (b + 1) * f.blockBytes);
              }
              for (const v of [top, -top]) check(t, acts(act, 2, 1024, r, v), `extreme codes (selector ${sel}), x = ${v}`);
            }
          });
        }
      }
    }
    s.run();
  }
}
