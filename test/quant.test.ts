// Quantizer properties: each format's round-trip error is within its bound, the code packing is the
// documented one, and BitMoD's per-group choice of datatype earns its keep. Prints the max error per
// tensor of every grouped format (what an exporter reports).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BITMOD_GRIDS, BITMOD_SPECIALS, FORMATS, formatByName } from '../host/quant/formats.ts';
import { fitGrid, fitGroup } from '../host/quant/ref/bitmod.ts';
import { codeAt, packCodes } from '../host/quant/ref/codes.ts';
import { REFS } from '../host/quant/ref/index.ts';
import { bitsOf } from '../host/quant/ref/lowbit.ts';
import { randn, rng } from './helpers.ts';

const GROUPED = FORMATS.filter((f) => !f.retired && ['int8', 'lowbit', 'bitmod'].includes(f.family));

function roundTrip(name: string, w: Float32Array, m: number, k: number): Float32Array {
  return REFS[name].dequantize(REFS[name].quantize(w, m, k));
}

// Gaussian rows plus a few large outliers, as LLM weight matrices have.
function llmLike(seed: number, m: number, k: number): Float32Array {
  const r = rng(seed);
  const w = randn(r, m * k, 0.02);
  for (let i = 0; i < (m * k) / 200; i++) w[Math.floor(r() * m * k)] = (r() < 0.5 ? -1 : 1) * (0.1 + 0.1 * r());
  return w;
}

test('code packing: round-trips every code of every width and group, and matches the documented layout', () => {
  const r = rng(5);
  for (const bits of [2, 3, 4]) {
    for (const g of [32, 64, 128]) {
      const codes = Uint8Array.from({ length: g }, () => Math.floor(r() * (1 << bits)));
      const out = new Uint8Array(3 + (g * bits) / 8);
      packCodes(bits, codes, g, out, 3);
      for (let i = 0; i < g; i++) assert.is(codeAt(bits, out, 3, g, i), codes[i], `${bits}-bit G=${g} code ${i}`);
    }
  }
  // 3-bit, G = 128: code 37 is in low byte 5, slot 1; its high bit is bit 2*1 + (5 div 16) = 2 of byte 32 + 5
  const one = new Uint8Array(128);
  one[37] = 4;
  const out = new Uint8Array(48);
  packCodes(3, one, 128, out, 0);
  assert.equal([...out.keys()].filter((i) => out[i] !== 0), [37]);
  assert.is(out[37], 1 << 2);
  one[37] = 0;
  one[37 + 16] = 4; // low byte 21 -> high byte 5, bit 2*1 + 1
  out.fill(0);
  packCodes(3, one, 128, out, 0);
  assert.is(out[37], 1 << 3);
});

test('INT2/3/4 round-to-nearest: every weight within half a step (d/2) of its group', () => {
  for (const f of FORMATS.filter((x) => x.family === 'lowbit')) {
    const m = 4, k = 256, g = f.block, levels = (1 << bitsOf(f)) - 1;
    const w = randn(rng(f.id), m * k);
    const back = roundTrip(f.name, w, m, k);
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

test('Q8_0: every weight within half a step (max|w|/127/2) of its block', () => {
  const m = 3, k = 256;
  const w = llmLike(6, m, k);
  const back = roundTrip('q8_0', w, m, k);
  for (let b = 0; b < (m * k) / 32; b++) {
    const d = Math.max(...w.subarray(b * 32, b * 32 + 32).map(Math.abs)) / 127;
    for (let i = b * 32; i < b * 32 + 32; i++) assert.ok(Math.abs(back[i] - w[i]) <= d / 2 + 1e-6 * d, `block ${b} weight ${i}`);
  }
});

test('BitMoD: no weight further from its value than half the widest grid gap (or its clipping), extremes kept', () => {
  for (const f of FORMATS.filter((x) => x.family === 'bitmod')) {
    const bits = bitsOf(f), g = f.block;
    const m = 4, k = 512;
    const w = llmLike(f.id, m, k);
    const t = REFS[f.name].quantize(w, m, k);
    const back = REFS[f.name].dequantize(t);
    const view = new DataView(t.data.buffer);
    for (let b = 0; b < (m * k) / g; b++) {
      const at = b * f.blockBytes;
      const scale = view.getFloat32(at, true), grid = [...BITMOD_GRIDS[bits][t.data[at + 4]]].sort((x, y) => x - y);
      let gap = 0;
      for (let i = 1; i < grid.length; i++) gap = Math.max(gap, grid[i] - grid[i - 1]);
      for (let i = b * g; i < (b + 1) * g; i++) {
        const inside = w[i] <= scale * grid[grid.length - 1] && w[i] >= scale * grid[0];
        const bound = inside ? (scale * gap) / 2 : Math.max(w[i] - scale * grid[grid.length - 1], scale * grid[0] - w[i]);
        assert.ok(Math.abs(back[i] - w[i]) <= bound + 1e-6 * scale, `${f.name} group ${b} weight ${i}: error ${Math.abs(back[i] - w[i])} > ${bound}`);
      }
    }
  }
});

test('BitMoD: the chosen grid never loses to plain FP of the same bits, and wins on skewed groups', () => {
  const r = rng(4);
  for (const bits of [3, 4]) {
    // plain FP: the same grid with its negative zero kept as a (useless) zero
    const plain = [BITMOD_GRIDS[bits][0].map((v, c) => (c === 1 << (bits - 1) ? 0 : v))];
    let wins = 0;
    for (let trial = 0; trial < 20; trial++) {
      const w = randn(r, 128);
      // skew: a few large outliers of one sign, as LLM weight groups often have
      for (let i = 0; i < 3; i++) w[Math.floor(r() * 128)] = 4 + r() * 2;
      const fit = fitGroup(bits, w);
      const base = fitGroup(bits, w, plain);
      assert.ok(fit.err <= base.err, `bits ${bits}: BitMoD ${fit.err} > plain FP ${base.err}`);
      if (fit.err < base.err * 0.97) wins++;
    }
    assert.ok(wins >= 15, `bits ${bits}: BitMoD beat plain FP on only ${wins}/20 skewed groups`);
  }
});

test('BitMoD: every grid is sign-magnitude with the negative zero replaced by one of the special values', () => {
  for (const bits of [3, 4]) {
    const half = 1 << (bits - 1);
    BITMOD_GRIDS[bits].forEach((grid, sel) => {
      assert.is(grid.length, 1 << bits);
      assert.is(grid[half], BITMOD_SPECIALS[bits][sel]);
      for (let c = 1; c < half; c++) assert.is(grid[half + c], -grid[c], `bits ${bits} selector ${sel} code ${half + c}`);
      assert.is(grid[0], 0);
    });
  }
  // the nearest-code search uses the exact f32 products the kernels' dequantization gives
  const { codes } = fitGrid(BITMOD_GRIDS[4][2], 0.5, [8.2, -0.3, 5.9]);
  assert.equal([...codes], [8, 9, 7]);
});

test('max error per tensor falls with bits (2 < 3 < 4 < 8), BitMoD beats INT of the same bits; report', () => {
  const m = 16, k = 1024;
  const w = llmLike(9, m, k);
  const rows: string[] = [];
  const err: Record<string, { max: number; rmse: number }> = {};
  for (const f of GROUPED) {
    const back = roundTrip(f.name, w, m, k);
    let max = 0, se = 0;
    for (let i = 0; i < w.length; i++) {
      const e = Math.abs(back[i] - w[i]);
      max = Math.max(max, e);
      se += e * e;
    }
    err[f.name] = { max, rmse: Math.sqrt(se / w.length) };
    rows.push(`  ${f.name.padEnd(9)} max |err| ${max.toExponential(3)}  rmse ${err[f.name].rmse.toExponential(3)}`);
  }
  process.stdout.write(`\nquantization error of a ${m}x${k} LLM-like tensor (std 0.02, 0.5% outliers to 0.2):\n${rows.join('\n')}\n`);
  for (const g of [32, 64, 128]) {
    const e = (b: number) => err[`i${b}g${g}`].max;
    assert.ok(e(2) > e(3) && e(3) > e(4) && e(4) > err.q8_0.max, `G=${g}: ${e(2)} ${e(3)} ${e(4)} ${err.q8_0.max}`);
  }
  for (const bits of [3, 4]) {
    for (const g of [32, 64, 128]) {
      assert.ok(err[`bmd${bits}g${g}`].rmse < err[`i${bits}g${g}`].rmse, `bmd${bits}g${g} rmse ${err[`bmd${bits}g${g}`].rmse} vs i${bits}g${g} ${err[`i${bits}g${g}`].rmse}`);
    }
  }
  assert.ok(formatByName('bmd4g128'));
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
