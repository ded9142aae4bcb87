// The kernel benchmark behind `edge-flash bench`: every kernel of the format table on every engine
// and build target, against native C compiled in the same run. Each result is checked against the
// scalar reference before it is timed, so a fast wrong kernel cannot post a number.
import { UserError } from '../errors.ts';
import { KernelHost } from '../engine/kernels.ts';
import { getEngine, targetFor } from '../engine/index.ts';
import { compileOptimizedOnly } from '../engine/v8.ts';
import type { EngineName } from '../engine/types.ts';
import { FORMATS, formatByName, type ActFormatName, type Target, type WeightFormat } from '../quant/formats.ts';
import { quantizeAct } from '../quant/ref/act.ts';
import { refFor } from '../quant/ref/index.ts';
import type { ActTensor, QuantTensor } from '../quant/tensor.ts';
import { NATIVE_BUILDS, NATIVE_FORMATS, NativeBaseline } from './native.ts';
import { calibrate, median } from './stats.ts';

export type BenchEngine = EngineName | 'native';

export interface BenchOptions {
  engines: BenchEngine[];
  shapes: Array<[number, number]>; // (m, k): m output rows, k inputs
  n: number;                       // tokens: 1 is GEMV, more is GEMM (prefill)
  formats: string[];
  acts: ActFormatName[];
  repeat: number;
  secondsPerRepeat: number;
}

export interface BenchRow {
  kernel: string;   // variant name, or the native build
  format: string;
  act: ActFormatName;
  engine: BenchEngine;
  target: Target | 'native';
  m: number;
  k: number;
  n: number;
  median_gws: number; // billions of weights (m*k*n multiply-accumulates) per second, median over repeats
  min_gws: number;
  max_gws: number;
  ratio_vs_native: number | null; // median over the naive native kernel's median, same format and shape
}

export const DEFAULT_SHAPES: Array<[number, number]> = [[256, 256], [1024, 1024], [2048, 2048], [4096, 4096], [5632, 2048], [2048, 5632]];
export const QUICK_SHAPES: Array<[number, number]> = [[256, 256], [2048, 2048]];

export function parseShapes(spec: string): Array<[number, number]> {
  return spec.split(',').map((s) => {
    const m = /^(\d+)x(\d+)$/.exec(s.trim());
    if (!m) throw new UserError(`bad shape '${s}': expected MxK, e.g. 2048x2048`);
    return [Number(m[1]), Number(m[2])] as [number, number];
  });
}

interface Case {
  format: WeightFormat;
  act: ActFormatName;
  m: number;
  k: number;
  t: QuantTensor;
  x: ActTensor;
  want: Float32Array;
}

function makeCase(format: WeightFormat, act: ActFormatName, m: number, k: number, n: number, seed: number): Case {
  let s = seed;
  const rand = () => ((s = (s * 1103515245 + 12345) >>> 0) / 4294967296) * 2 - 1;
  const w = Float32Array.from({ length: m * k }, rand);
  const xf = Float32Array.from({ length: n * k }, rand);
  const ref = refFor(format);
  const t = ref.quantize(w, m, k);
  const x = quantizeAct(xf, n, k, act);
  return { format, act, m, k, t, x, want: ref.gemm(t, x) };
}

// The check every kernel passes before it is timed: bit-exact on the integer formats, 1e-4 of the
// largest output for f32.
export function sameResult(got: Float32Array, want: Float32Array, family: string): boolean {
  if (got.length !== want.length) return false;
  const exact = family !== 'float';
  let scale = 1e-6;
  for (const v of want) scale = Math.max(scale, Math.abs(v));
  for (let i = 0; i < want.length; i++) {
    if (exact ? !Object.is(got[i], want[i]) : Math.abs(got[i] - want[i]) > 1e-4 * scale) return false;
  }
  return true;
}

function timeRows(seconds: number[], work: number): { median_gws: number; min_gws: number; max_gws: number } {
  const gws = seconds.map((s) => work / s / 1e9);
  return { median_gws: median(gws), min_gws: Math.min(...gws), max_gws: Math.max(...gws) };
}

// Kernel variants to time for a format, activation and target.
function variants(format: WeightFormat, act: ActFormatName, target: Target): string[] {
  return format.kernels.filter((kv) => kv.targets.includes(target) && kv.acts.includes(act)).map((kv) => kv.name);
}

export function planCount(opts: BenchOptions): number {
  let count = 0;
  for (const _ of opts.shapes) {
    for (const name of opts.formats) {
      const f = formatByName(name)!;
      for (const act of opts.acts) {
        if (!f.kernels.some((kv) => kv.acts.includes(act))) continue;
        for (const e of opts.engines) {
          if (e === 'native') count += NATIVE_FORMATS.has(f.name) ? NATIVE_BUILDS.length : 0;
          else for (const target of e === 'v8' ? (['device', 'simd'] as Target[]) : (['device'] as Target[])) count += variants(f, act, target).length;
        }
      }
    }
  }
  return count;
}

export function checkFormats(names: string[]): void {
  for (const name of names) {
    const f = formatByName(name);
    if (!f) throw new UserError(`unknown format '${name}': expected one of ${FORMATS.filter((x) => !x.retired).map((x) => x.name).join(', ')}`);
    refFor(f);
  }
}

export async function runKernelBench(opts: BenchOptions, tick: (label: string) => void = () => {}): Promise<BenchRow[]> {
  checkFormats(opts.formats);
  compileOptimizedOnly();
  const hosts: Array<{ engine: EngineName; target: Target; host: KernelHost }> = [];
  for (const e of opts.engines) {
    if (e === 'native') continue;
    const engine = await getEngine(e);
    for (const target of e === 'v8' ? (['device', 'simd'] as Target[]) : [targetFor(e)]) hosts.push({ engine: e, target, host: KernelHost.create(engine, target) });
  }
  const native = opts.engines.includes('native') ? await NativeBaseline.create() : undefined;
  const rows: BenchRow[] = [];
  try {
    for (const [m, k] of opts.shapes) {
      for (const name of opts.formats) {
        const format = formatByName(name)!;
        if (k % format.block !== 0) throw new UserError(`shape ${m}x${k} does not fit format ${name}: K is not a multiple of its block size ${format.block}`);
        for (const act of opts.acts) {
          if (!format.kernels.some((kv) => kv.acts.includes(act))) continue;
          const c = makeCase(format, act, m, k, opts.n, m * 31 + k);
          const work = m * k * opts.n;
          const shapeRows: BenchRow[] = [];
          const base = { format: name, act, m, k, n: opts.n };
          if (native && NATIVE_FORMATS.has(name)) {
            for (const b of NATIVE_BUILDS) {
              tick(`${name} ${m}x${k} native ${b.name}`);
              const probe = native.run(b, c.t, c.x, 1, 3);
              if (!sameResult(probe.y, c.want, format.family)) throw new Error(`native ${b.name} ${name} disagrees with the reference on ${m}x${k}`);
              const iters = calibrate(Math.min(...probe.seconds), opts.secondsPerRepeat);
              const { seconds } = native.run(b, c.t, c.x, iters, opts.repeat);
              shapeRows.push({ kernel: b.name, engine: 'native', target: 'native', ...base, ...timeRows(seconds.map((s) => s / iters), work), ratio_vs_native: null });
            }
          }
          for (const { engine, target, host } of hosts) {
            for (const variant of variants(format, act, target)) {
              tick(`${name} ${m}x${k} ${engine}/${target} ${variant}`);
              host.reset();
              const p = host.prepare(c.t, c.x, variant);
              p.run(); // the correctness check
              if (!sameResult(p.result(), c.want, format.family)) throw new Error(`${engine}/${target} ${name} ${variant} disagrees with the reference on ${m}x${k}`);
              // Warm up for one repeat's time (caches, branch predictors; the first repeats jittered)
              let t0 = performance.now();
              let calls = 0;
              do {
                p.run();
                calls++;
              } while (performance.now() - t0 < opts.secondsPerRepeat * 1000 && calls < 100000);
              t0 = performance.now();
              p.run();
              const iters = calibrate((performance.now() - t0) / 1000, opts.secondsPerRepeat);
              const seconds: number[] = [];
              for (let r = 0; r < opts.repeat; r++) {
                t0 = performance.now();
                for (let i = 0; i < iters; i++) p.run();
                seconds.push((performance.now() - t0) / 1000 / iters);
              }
              shapeRows.push({ kernel: variant, engine, target, ...base, ...timeRows(seconds, work), ratio_vs_native: null });
            }
          }
          const naive = shapeRows.find((r) => r.engine === 'native' && r.kernel === NATIVE_BUILDS[0].name);
          for (const r of shapeRows) r.ratio_vs_native = naive ? r.median_gws / naive.median_gws : null;
          rows.push(...shapeRows);
        }
      }
    }
  } finally {
    native?.close();
    for (const h of hosts) h.host.close();
  }
  return rows;
}

export function formatTable(rows: BenchRow[]): string {
  const head = ['format', 'act', 'MxKxN', 'engine', 'target', 'kernel', 'median Gw/s', 'min Gw/s', 'x native'];
  const body = rows.map((r) => [
    r.format, r.act, `${r.m}x${r.k}x${r.n}`, r.engine, r.target, r.kernel,
    r.median_gws.toFixed(3), r.min_gws.toFixed(3), r.ratio_vs_native === null ? '-' : r.ratio_vs_native.toFixed(2),
  ]);
  // x native only where the native engine ran
  const native = rows.some((r) => r.ratio_vs_native !== null);
  if (!native) {
    head.pop();
    for (const b of body) b.pop();
  }
  const widths = head.map((h, i) => body.reduce((w, b) => Math.max(w, b[i].length), h.length));
  const line = (cells: string[]) => cells.map((c, i) => (i >= 6 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line), '',
    'Gw/s: billions of weights multiplied and accumulated per second (M*K*N per call over its time): median and min of the repeats',
    native ? 'x native: the median Gw/s over that of the naive C kernel (cc -O3) of the same format, shape and activations in this run; above 1 is faster'
      : 'x native (against the naive C kernel) needs the native engine: --engine v8,wasm3,native'].join('\n');
}
