// The native C baseline of `edge-flash bench` (tools/bench/native.c): every live format of the table has
// a naive (-O3) and an auto-vectorized (-O3 -march=native) kernel, both agree with the scalar reference
// (bit-exact on the integer formats), and every bench row of every format gets a ratio_vs_native.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { runKernelBench, sameResult } from '../host/bench/kernels.ts';
import { NATIVE_BUILDS, NativeBaseline } from '../host/bench/native.ts';
import { FORMATS, type ActFormatName, type WeightFormat } from '../host/quant/formats.ts';
import { quantizeAct } from '../host/quant/ref/act.ts';
import { REFS } from '../host/quant/ref/index.ts';
import type { ActTensor, QuantTensor } from '../host/quant/tensor.ts';
import { randn, rng } from './helpers.ts';

const LIVE = FORMATS.filter((f) => !f.retired && f.kernels.length > 0);
const GROUPED = LIVE.filter((f) => ['int8', 'lowbit', 'bitmod'].includes(f.family));
const actsOf = (f: WeightFormat) => [...new Set(f.kernels.flatMap((kv) => kv.acts))] as ActFormatName[];

const test = suite('native baseline');
let native: NativeBaseline;
test.before(async () => {
  native = await NativeBaseline.create();
});
test.after(() => native.close());

// Both builds on one case; the message names the build, format, activations and tokens.
function check(t: QuantTensor, x: ActTensor, label: string) {
  const want = REFS[t.format.name].gemm(t, x);
  for (const b of NATIVE_BUILDS) {
    const { y, seconds } = native.run(b, t, x, 1, 1);
    assert.ok(sameResult(y, want, t.format.family), `${b.name} ${t.format.name} ${label}: differs from the reference`);
    assert.is(seconds.length, 1);
  }
}

test('both builds match the reference on every format: GEMV and GEMM, each activation format', () => {
  const [m, k] = [32, 256];
  for (const f of LIVE) {
    for (const act of actsOf(f)) {
      for (const n of [1, 3]) {
        const r = rng(f.id * 101 + n);
        const t = REFS[f.name].quantize(randn(r, m * k), m, k);
        check(t, quantizeAct(randn(r, n * k), n, k, act), `${act} n=${n}`);
      }
    }
  }
});

// Random code bytes (every code, BitMoD's special values and all four grids), then the extremes that
// bound the integer sums: all bits set against activations of +-127.
test('grouped formats: every code value and the integer extremes', () => {
  const [m, k, n] = [16, 256, 2];
  for (const f of GROUPED) {
    const r = rng(f.id * 7 + 1);
    for (const fill of [undefined, 0xff]) {
      const nb = k / f.block;
      const data = new Uint8Array(m * nb * f.blockBytes);
      const view = new DataView(data.buffer);
      const head = f.family === 'int8' ? 4 : 8;
      for (let b = 0; b < m * nb; b++) {
        const at = b * f.blockBytes;
        for (let i = at + head; i < at + f.blockBytes; i++) data[i] = fill ?? Math.floor(r() * 256);
        if (f.family === 'int8' && fill !== undefined) data.fill(0x81, at + 4, at + f.blockBytes); // -127
        view.setFloat32(at, 0.001 + r() * 0.1, true);
        if (f.family === 'lowbit') view.setFloat32(at + 4, r() - 0.5, true);
        if (f.family === 'bitmod') data[at + 4] = b % 4;
      }
      const t: QuantTensor = { format: f, m, k, data, scale: 1 };
      for (const act of actsOf(f)) {
        const qmax = act === 'i8' ? 127 : 7;
        const q = Int8Array.from({ length: n * k }, (_, i) => (fill === undefined ? Math.round((r() * 2 - 1) * qmax) : i % 2 ? qmax : -qmax));
        check(t, { format: act, n, k, q, scales: Float32Array.from({ length: n }, () => 0.01 + r()) }, `${act} ${fill === undefined ? 'random bytes' : 'extremes'}`);
      }
    }
  }
});

test('bench rows of every format carry a ratio against the naive C kernel', async () => {
  const formats = LIVE.filter((f) => f.family !== 'float').map((f) => f.name); // (the float rows take f32 activations)
  const rows = await runKernelBench({ engines: ['v8', 'native'], shapes: [[32, 256]], n: 1, formats, acts: ['i8'], repeat: 1, secondsPerRepeat: 0.002 });
  for (const name of formats) {
    const mine = rows.filter((x) => x.format === name);
    assert.ok(mine.some((x) => x.engine === 'native' && x.kernel === 'c-O3' && x.ratio_vs_native === 1), `${name}: no naive native row`);
    assert.ok(mine.some((x) => x.engine === 'native' && x.kernel === 'c-O3-march-native'), `${name}: no vectorized native row`);
    assert.ok(mine.some((x) => x.engine === 'v8'), `${name}: no V8 rows`);
    for (const x of mine) assert.ok(x.ratio_vs_native !== null && x.ratio_vs_native > 0, `${name} ${x.engine}/${x.target} ${x.kernel}: no ratio_vs_native`);
  }
});

test.run();
