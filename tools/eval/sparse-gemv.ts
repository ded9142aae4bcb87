// Does a GEMV over the kept inputs only pay for BitNet a4.8's top-K intermediate states? Times
// assembly/test/sparse-gemv.ts's kept-index tb1 GEMV against the app's dense tb1 kernels (bit-serial,
// the one the model runs, and the scalar naive one) on the same top-K-sparsified int8 activations, on
// V8 and wasm3 (the device build's features), after checking that all three give the same outputs.
//   npx tsx tools/eval/sparse-gemv.ts [--repeat 5]      (a markdown table on stdout)
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { KernelHost } from '../../host/engine/kernels.ts';
import { baseImports } from '../../host/engine/imports.ts';
import { tryEngine } from '../../host/engine/index.ts';
import { formatByName } from '../../host/quant/formats.ts';
import { quantizeAct, sparsifyTopK } from '../../host/quant/ref/act.ts';
import { packTrits } from '../../host/quant/ref/ternary.ts';
import { fromRoot } from '../../host/paths.ts';
import { median } from '../../host/bench/stats.ts';

const OUT = fromRoot('build', 'sparse-gemv.wasm');
const asc = spawnSync(fromRoot('node_modules', '.bin', 'asc'), [fromRoot('assembly', 'test', 'sparse-gemv.ts'), '--outFile', OUT, '--runtime', 'stub',
  '--optimizeLevel', '3', '--shrinkLevel', '0', '--noAssert', '--disable', 'simd,bulk-memory,reference-types,multi-value,threads,relaxed-simd', '--use', 'abort='], { encoding: 'utf8' });
if (asc.status !== 0) throw new Error(`asc: ${asc.stderr}`);
const wasm = readFileSync(OUT);
const repeat = process.argv.includes('--repeat') ? Number(process.argv[process.argv.indexOf('--repeat') + 1]) : 5;
// (M, K): the 15M model's w2 and wo (K 288 padded to tb1's 320), the 260K model's w2 (172 padded to 192) and wo
const SHAPES: Array<[number, number]> = [[288, 768], [288, 320], [64, 192], [64, 64]];
const KEEPS = [1, 0.5, 0.1, 0.05];
const tb1 = formatByName('tb1')!;

let seed = 12345;
const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);

// calls per second of fn, the median of `repeat` rounds of at least 50 ms each
function rate(fn: () => void): number {
  const rounds: number[] = [];
  for (let r = 0; r < repeat; r++) {
    let n = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < 50) {
      fn();
      n++;
    }
    rounds.push(n / ((performance.now() - t0) / 1000));
  }
  return median(rounds);
}

process.stdout.write('| engine | MxK | kept | bitserial (dense) calls/s | naive (dense) calls/s | kept-index calls/s | kept-index / bitserial |\n| --- | --- | --- | --- | --- | --- | --- |\n');
for (const name of ['v8', 'wasm3']) {
  const r = await tryEngine(name);
  if (!r.engine) {
    process.stderr.write(`sparse-gemv: ${name} unavailable (${r.error})\n`);
    continue;
  }
  const host = new KernelHost(r.engine.instantiate(wasm, baseImports()), 'device');
  for (const [m, k] of SHAPES) {
    const trits = Int8Array.from({ length: m * k }, () => Math.floor(rnd() * 3) - 1);
    const w = packTrits(tb1, trits, m, k, 0.05);
    const xf = Float32Array.from({ length: k }, () => (rnd() - 0.5) * 4);
    for (const keep of KEEPS) {
      host.reset();
      const kept = Math.max(1, Math.round(keep * k));
      const x = quantizeAct(sparsifyTopK(xf, 1, k, kept >= k ? 0 : kept), 1, k, 'i8');
      const dense = host.prepare(w, x, 'bitserial'), naive = host.prepare(w, x, 'naive');
      const idx = Uint32Array.from([...x.q.keys()].filter((i) => x.q[i] !== 0));
      const pw = host.write(w.data), px = host.write(new Uint8Array(x.q.buffer)), ps = host.write(new Uint8Array(x.scales.buffer));
      const pi = host.write(new Uint8Array(idx.buffer)), py = host.alloc(m * 4);
      const sparse = () => host.instance.call('gemv_tb1_i8_kept', pw, w.scale, px, ps, pi, idx.length, py, m, k);
      dense.run(); naive.run(); sparse();
      const want = dense.result(), got = new Float32Array(host.read(py, m * 4).buffer), nv = naive.result();
      for (let i = 0; i < m; i++) if (got[i] !== want[i] || nv[i] !== want[i]) throw new Error(`${name} ${m}x${k} keep ${keep}: row ${i}: kept ${got[i]}, naive ${nv[i]}, bitserial ${want[i]}`);
      const rd = rate(() => dense.run()), rn = rate(() => naive.run()), rs = rate(sparse);
      process.stdout.write(`| ${name} | ${m}x${k} | ${(100 * keep).toFixed(0)} % (${idx.length}) | ${rd.toFixed(0)} | ${rn.toFixed(0)} | ${rs.toFixed(0)} | ${(rs / rd).toFixed(2)} |\n`);
    }
  }
  host.close();
}
