// Quantizer properties: each format's round-trip error is within its bound, and BitMoD's per-group
// choice of datatype earns its keep.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BITMOD_GRIDS, FORMATS } from '../host/quant/formats.ts';
import { fitGroup } from '../host/quant/ref/bitmod.ts';
import { REFS } from '../host/quant/ref/index.ts';
import { bitsOf } from '../host/quant/ref/lowbit.ts';
import { randn, rng } from './helpers.ts';

function maxAbs(a: Float32Array): number {
  let m = 0;
  for (const v of a) m = Math.max(m, Math.abs(v));
  return m;
}

test('INT2/3/4 round-to-nearest: every weight within half a step (d/2) of its group', () => {
  for (const f of FORMATS.filter((x) => x.family === 'lowbit')) {
    const m = 4, k = 256, g = f.block, levels = (1 << bitsOf(f)) - 1;
    const w = randn(rng(f.id), m * k);
    const back = REFS[f.name].dequantize(REFS[f.name].quantize(w, m, k));
    for (let r = 0; r < m; r++) {
      for (let b = 0; b < k / g; b++) {
        const grp = w.subarray(r * k + b * g, r * k + (b + 1) * g);
        const d = (Math.max(...grp) - Math.min(...grp)) / levels;
        for (let i = 0; i < g; i++) {
          const err = Math.abs(back[r * k + b * g + i] - grp[i]);
          assert.ok(err <= d / 2 + 1e-5 * d, `${f.name} row ${r} group ${b}: error ${err} > d/2 = ${d / 2}`);
        }
      }
    }
  }
});

test('more bits, less error: max error per tensor falls from 2 to 3 to 4 bits (and q8_0 is best)', () => {
  const m = 8, k = 512;
  const w = randn(rng(9), m * k);
  const err = (name: string) => {
    const back = REFS[name].dequantize(REFS[name].quantize(w, m, k));
    return maxAbs(back.map((v, i) => v - w[i]));
  };
  const e2 = err('i2g64'), e3 = err('i3g64'), e4 = err('i4g64'), e8 = err('q8_0');
  assert.ok(e2 > e3 && e3 > e4 && e4 > e8, `max errors 2/3/4/8-bit: ${e2} ${e3} ${e4} ${e8}`);
});

test('BitMoD: the chosen grid never loses to the plain FP grid, and wins on skewed groups', () => {
  const r = rng(4);
  for (const bits of [3, 4]) {
    const base = BITMOD_GRIDS[bits][0].filter((v) => Math.abs(v) !== (bits === 3 ? 3 : 10)); // the plain grid
    let wins = 0;
    for (let trial = 0; trial < 20; trial++) {
      const w = randn(r, 128);
      // skew: a few large positive outliers, as LLM weight groups often have
      for (let i = 0; i < 3; i++) w[Math.floor(r() * 128)] = 4 + r() * 2;
      const fit = fitGroup(bits, w);
      const scale = Math.max(Math.max(...w) / base[base.length - 1], Math.min(...w) / base[0]);
      let plainErr = 0;
      for (const v of w) plainErr += Math.min(...base.map((gv) => (v - scale * gv) ** 2));
      assert.ok(fit.err <= plainErr * (1 + 1e-9), `bits ${bits}: BitMoD ${fit.err} > plain ${plainErr}`);
      if (fit.err < plainErr * 0.99) wins++;
    }
    assert.ok(wins >= 10, `bits ${bits}: BitMoD beat the plain grid on only ${wins}/20 skewed groups`);
  }
});

test('ternary absmean: dequantized values are {-s, 0, s} with s the mean |w|', () => {
  const w = randn(rng(3), 64 * 64);
  const t = REFS.tq2.quantize(w, 64, 64);
  const mean = w.reduce((a, v) => a + Math.abs(v), 0) / w.length;
  assert.ok(Math.abs(t.scale - mean) < 1e-5 * mean);
  const vals = new Set(REFS.tq2.dequantize(t));
  assert.ok([...vals].every((v) => v === 0 || Math.abs(Math.abs(v) - t.scale) < 1e-7), [...vals].join(','));
});

test.run();
