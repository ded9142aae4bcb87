// `edge-flash bench --model ... --peers --runc-src run.c`: edge-flash's decode against what a user
// would pick instead, llama2.c's run.c (float32), built here from the user's own source:
// - runc-native: the fastest of cc -O3, cc -O3 -march=native, clang -O3 -march=native (all three
//   are timed on each model first; the row says which won);
// - runc-wasm3: run.c built to wasm32-wasi, run under the wasm3 addon edge-flash's wasm3 engine uses
//   (same build, same flags), with the WASI functions of host/bench/wasi.ts;
// - runc-v8: the same run.wasm under Node's node:wasi.
// Every build takes tools/bench/runc-peer.h (fixed positions; no mmap under WASI). Builds are cached
// under build/peers/, keyed by the hash of the patched source, the header, the compiler and flags.
//
// Counting: every row decodes the same positions from BOS (empty prompt, greedy, no stop at BOS);
// tok/s is run.c's own: positions after the first over the time after the first (run.c: its ms
// clock; edge-flash rows: host/bench/model.ts decodeTokS, the same count on performance.now()).
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { UserError } from '../errors.ts';
import { getEngine } from '../engine/index.ts';
import { compileOptimizedOnly } from '../engine/v8.ts';
import type { EngineName } from '../engine/types.ts';
import { loadModel } from '../formats/index.ts';
import { kvFormat } from '../model/kv.ts';
import { ModelRuntime } from '../model/runtime.ts';
import { fromRoot } from '../paths.ts';
import type { Target } from '../quant/formats.ts';
import { benchFile, decodeTokS, prepare, runcTokS, type ModelBenchConfig } from './model.ts';
import { median } from './stats.ts';
import { runWasiStart, wasiImports } from './wasi.ts';
import { aotBuild, aotTwin, appRunDecode, type Dump } from './aot.ts';

export const PEER_HEADER = fromRoot('tools', 'bench', 'runc-peer.h');
export const RUNC_NATIVE_BUILDS = [
  { name: 'cc -O3', cc: 'cc', flags: ['-O3'] },
  { name: 'cc -O3 -march=native', cc: 'cc', flags: ['-O3', '-march=native'] },
  { name: 'clang -O3 -march=native', cc: 'clang', flags: ['-O3', '-march=native'] },
] as const;
// Debian's wasi-libc lives under /usr (include/wasm32-wasi, lib/wasm32-wasi); WASI_SYSROOT overrides
export const wasmBuild = () => ({ name: 'clang --target=wasm32-wasi -O3', cc: 'clang', flags: ['--target=wasm32-wasi', `--sysroot=${process.env.WASI_SYSROOT ?? '/usr'}`, '-O3'] });

export interface CBuild { name: string; cc: string; flags: readonly string[] }

const STOP = 'if (next == 1) { break; }';
// run.c with its stop at BOS made conditional (tools/bench/runc-peer.h says why).
export function patchRunc(src: string): string {
  if (!src.includes(STOP)) throw new UserError(`--runc-src: no '${STOP}' in the source: is it llama2.c's run.c?`);
  return src.replace(STOP, 'if (next == 1 && RUNC_STOP_AT_BOS) { break; }');
}

function compilerId(cc: string): string {
  try {
    return execFileSync(cc, ['--version'], { encoding: 'utf8' }).split('\n')[0];
  } catch {
    throw new UserError(`no C compiler '${cc}' for the peer builds`, 'run tools/install-system-deps.sh');
  }
}

// Compiles `source` (C text, with `header` force-included) once per (source, header, compiler,
// flags); later calls return the cached output. `out` names the output file (e.g. run.wasm).
export async function buildCached(source: string, b: CBuild, out: string, cacheDir = fromRoot('build', 'peers'), header = PEER_HEADER): Promise<{ path: string; cached: boolean }> {
  const key = createHash('sha256').update(source).update('\0').update(readFileSync(header)).update('\0')
    .update(compilerId(b.cc)).update('\0').update(b.flags.join(' ')).digest('hex').slice(0, 16);
  const dir = join(cacheDir, key);
  const path = join(dir, out);
  if (existsSync(path)) return { path, cached: true };
  mkdirSync(dir, { recursive: true });
  const src = join(dir, 'src.c'), tmp = `${path}.tmp${process.pid}`;
  writeFileSync(src, source);
  try {
    await promisify(execFile)(b.cc, [...b.flags, '-include', header, '-o', tmp, src, '-lm'], { maxBuffer: 1 << 24 });
  } catch (e) {
    const err = ((e as { stderr?: string }).stderr ?? String(e)).split('\n').find((l) => /error/.test(l)) ?? String(e);
    throw new UserError(`${b.name} ${basename(src)} failed: ${err.trim()}`, b.flags.includes('--target=wasm32-wasi') ? 'the wasm32 build needs clang, lld, wasi-libc and libclang-rt-*-dev-wasm32: run tools/install-system-deps.sh' : undefined);
  }
  renameSync(tmp, path); // whole or absent: a build cut short is never taken for a cached one
  return { path, cached: false };
}

const ACHIEVED = /achieved tok\/s: ([\d.]+)/;
function achieved(stderr: string, what: string): number {
  const m = ACHIEVED.exec(stderr);
  if (!m) throw new UserError(`${what} printed no "achieved tok/s" line: ${stderr.trim().split('\n')[0] ?? ''}`);
  return Number(m[1]);
}

// run.wasm under the wasm3 addon; files under `dir` are visible to it as /.
export async function runcWasm3TokS(wasm: Uint8Array, dir: string, model: string, tokenizer: string, steps: number): Promise<number> {
  const w = wasiImports({ args: ['run', `/${basename(model)}`, '-z', `/${basename(tokenizer)}`, '-t', '0', '-n', String(steps)], preopen: { guest: '/', host: dir } });
  const inst = (await getEngine('wasm3')).instantiate(wasm, w.imports, { stackBytes: 1 << 20 });
  try {
    const code = runWasiStart(inst);
    if (code !== 0) throw new UserError(`runc-wasm3 exited ${code}: ${w.stderr().trim().split('\n')[0]}`);
    return achieved(w.stderr(), 'runc-wasm3');
  } finally {
    inst.close();
    w.close();
  }
}

// The same run.wasm under node:wasi (V8).
export async function runcV8TokS(module: WebAssembly.Module, dir: string, model: string, tokenizer: string, steps: number): Promise<number> {
  const errPath = join(dir, 'runc-v8.err'), outPath = join(dir, 'runc-v8.out');
  const errFd = openSync(errPath, 'w'), outFd = openSync(outPath, 'w');
  try {
    // loaded on first use: node:wasi warns that it is experimental, which an error path need not say
    const { WASI } = await import('node:wasi');
    const wasi = new WASI({ version: 'preview1', args: ['run', `/${basename(model)}`, '-z', `/${basename(tokenizer)}`, '-t', '0', '-n', String(steps)], env: {}, preopens: { '/': dir }, stdout: outFd, stderr: errFd, returnOnExit: true });
    const inst = await WebAssembly.instantiate(module, { wasi_snapshot_preview1: wasi.wasiImport } as WebAssembly.Imports);
    const code = wasi.start(inst);
    if (code !== 0) throw new UserError(`runc-v8 exited ${code}: ${readFileSync(errPath, 'utf8').trim().split('\n')[0]}`);
  } finally {
    closeSync(errFd);
    closeSync(outFd);
  }
  return achieved(readFileSync(errPath, 'utf8'), 'runc-v8');
}

export interface PeerRow {
  model: string;
  row: string;            // runc-native | runc-wasm3 | runc-v8 | edge-flash | aot
  program: 'run.c' | 'edge-flash';
  engine: 'native' | EngineName | 'aot';
  target: Target | 'native' | 'wasm32';
  build: string | null;   // run.c's compiler and flags; aot: the AOT app's
  weights: string;
  classifier: string;
  act: string;
  kv: string;
  steps: number;
  tok_s: number;          // median over repeats
  min_tok_s: number;
  max_tok_s: number;
  x_runc_native: number;  // median over repeats of tok_s / runc-native's tok/s in the same repeat
  x_runc_wasm3: number;
  x_wasm3: number | null; // aot: median of per-repeat ratios against edge-flash's wasm3 row of the same configuration
  native_builds?: Record<string, number>; // runc-native only: median tok/s of each candidate build
}

// edge-flash's rows: f32, and ternary layers (tb1 on device, tt4 on simd) with int4 KV and a float32
// or a ternary classifier, on each engine.
export function peerConfigs(engines: EngineName[]): ModelBenchConfig[] {
  const out: ModelBenchConfig[] = [];
  for (const [engine, target] of [['wasm3', 'device'], ['v8', 'simd']] as const) {
    if (!engines.includes(engine)) continue;
    out.push({ engine, target, weights: 'f32', act: 'i8', kv: 'f32' });
    out.push({ engine, target, weights: 'ternary', act: 'i8', kv: 'int4' });
    out.push({ engine, target, weights: 'ternary', act: 'i8', kv: 'int4', classifier: 'ternary' });
  }
  return out;
}

export interface PeerBenchOptions {
  models: string[];
  runcSrc: string;
  steps: number;
  repeat: number;
  engines: EngineName[];
  selectRuns?: number;    // runs of each native candidate before the repeats (default 3)
  aot?: boolean;          // an aot row beside every wasm3 row (host/bench/aot.ts)
}

export async function benchPeers(opts: PeerBenchOptions, tick: (label: string) => void = () => {}): Promise<PeerRow[]> {
  if (!existsSync(opts.runcSrc)) throw new UserError(`--runc-src ${opts.runcSrc}: no such file`);
  const source = patchRunc(readFileSync(opts.runcSrc, 'utf8'));
  tick('building run.c (natively, three ways, and to wasm32-wasi; cached under build/peers/)');
  const natives = await Promise.all(RUNC_NATIVE_BUILDS.map(async (b) => ({ build: b, ...(await buildCached(source, b, 'run')) })));
  const wb = wasmBuild();
  const wasmPath = (await buildCached(source, wb, 'run.wasm')).path;
  const wasm = new Uint8Array(readFileSync(wasmPath));
  compileOptimizedOnly();
  const v8Module = await WebAssembly.compile(wasm);
  const configs = peerConfigs(opts.engines);
  const dir = mkdtempSync(join(tmpdir(), 'edge-flash-peers-'));
  const rows: PeerRow[] = [];
  try {
    for (const name of opts.models) {
      const f0 = benchFile(name, dir);
      // run.c under WASI sees one directory: the model and tokenizer side by side in it
      const f = dirname(f0.path) === dir && dirname(f0.tokenizer) === dir ? f0 : copyInto(f0, dir);
      const model = loadModel(f.path, { tokenizer: f.tokenizer });
      const steps = Math.min(opts.steps, model.config.seqLen);
      // the fastest native build on this model, by the median of a few interleaved runs
      const cand: number[][] = natives.map(() => []);
      for (let r = 0; r < (opts.selectRuns ?? 3); r++) natives.forEach((n, i) => cand[i].push(runcTokS(n.path, f.path, f.tokenizer, steps)));
      const candMed = cand.map(median);
      const best = candMed.indexOf(Math.max(...candMed));
      tick(`${name}: run.c native builds ${natives.map((n, i) => `${n.build.name} ${candMed[i].toFixed(0)}`).join(', ')} tok/s: ${natives[best].build.name} is used`);
      const runs: Array<{ cfg: ModelBenchConfig; rt: ModelRuntime; tokS: number[]; aot?: { dump: Dump; tokS: number[] } }> = [];
      try {
        for (const cfg of configs) {
          tick(`${name} ${cfg.engine} ${cfg.weights} ${cfg.kv}: load and warm up`);
          const rt = ModelRuntime.create(prepare(model, cfg), await getEngine(cfg.engine), { target: cfg.target, kv: kvFormat(cfg.kv)!, act: cfg.act, batch: 1, sampler: false });
          const run: (typeof runs)[number] = { cfg, rt, tokS: [] };
          runs.push(run);
          if (opts.aot && cfg.engine === 'wasm3') run.aot = { dump: aotTwin(rt, join(dir, `aot-${runs.length}`), Math.min(steps, 32)), tokS: [] };
          rt.setSampler({ temperature: 0, topp: 0.9, seed: 1n });
          decodeTokS(rt, Math.min(steps, 16));
        }
        const peers = { native: [] as number[], wasm3: [] as number[], v8: [] as number[] };
        // each repeat runs every row once, interleaved, so that the shared machine's drift hits
        // every side of a ratio alike
        for (let r = 0; r < opts.repeat; r++) {
          tick(`${name} repeat ${r + 1}/${opts.repeat}`);
          peers.native.push(runcTokS(natives[best].path, f.path, f.tokenizer, steps));
          peers.wasm3.push(await runcWasm3TokS(wasm, dir, f.path, f.tokenizer, steps));
          peers.v8.push(await runcV8TokS(v8Module, dir, f.path, f.tokenizer, steps));
          for (const run of runs) {
            run.tokS.push(decodeTokS(run.rt, steps));
            if (run.aot) run.aot.tokS.push(appRunDecode('aot', run.aot.dump, steps).tokS);
          }
        }
        const label = f0.label.split(' ')[0];
        const row = (base: Omit<PeerRow, 'model' | 'steps' | 'tok_s' | 'min_tok_s' | 'max_tok_s' | 'x_runc_native' | 'x_runc_wasm3' | 'x_wasm3'>, t: number[], twin?: number[]): PeerRow => ({
          model: label, ...base, steps, tok_s: median(t), min_tok_s: Math.min(...t), max_tok_s: Math.max(...t),
          x_runc_native: median(t.map((x, i) => x / peers.native[i])), x_runc_wasm3: median(t.map((x, i) => x / peers.wasm3[i])),
          x_wasm3: twin ? median(t.map((x, i) => x / twin[i])) : null,
        });
        const f32 = { classifier: 'f32', act: 'f32', weights: 'f32', kv: 'f32' };
        rows.push(row({ row: 'runc-native', program: 'run.c', engine: 'native', target: 'native', build: natives[best].build.name, ...f32, native_builds: Object.fromEntries(natives.map((n, i) => [n.build.name, candMed[i]])) }, peers.native));
        rows.push(row({ row: 'runc-wasm3', program: 'run.c', engine: 'wasm3', target: 'wasm32', build: wb.name, ...f32 }, peers.wasm3));
        rows.push(row({ row: 'runc-v8', program: 'run.c', engine: 'v8', target: 'wasm32', build: wb.name, ...f32 }, peers.v8));
        for (const { cfg, tokS, aot } of runs) {
          const weights = cfg.weights === 'ternary' ? (cfg.target === 'device' ? 'tb1' : 'tt4') : cfg.weights;
          const base = { program: 'edge-flash' as const, target: cfg.target, weights, classifier: cfg.classifier === 'ternary' ? weights : 'f32', act: cfg.weights === 'f32' ? 'f32' : cfg.act, kv: cfg.kv };
          rows.push(row({ row: 'edge-flash', engine: cfg.engine, build: null, ...base }, tokS));
          if (aot) rows.push(row({ row: 'aot', engine: 'aot', build: aotBuild(), ...base }, aot.tokS, tokS));
        }
      } finally {
        for (const { rt } of runs) rt.close();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

function copyInto(f: { path: string; tokenizer: string; label: string }, dir: string) {
  const path = join(dir, 'model.bin'), tokenizer = join(dir, 'tokenizer.bin');
  writeFileSync(path, readFileSync(f.path));
  writeFileSync(tokenizer, readFileSync(f.tokenizer));
  return { path, tokenizer, label: f.label };
}

export function formatPeerTable(rows: PeerRow[]): string {
  const head = ['model', 'row', 'engine', 'weights', 'classifier', 'kv', 'steps', 'tok/s', 'min', 'max', 'x runc-native', 'x runc-wasm3', 'x wasm3'];
  const body = rows.map((r) => [
    r.model, r.row === 'edge-flash' ? 'edge-flash' : `${r.row}${r.row === 'runc-native' ? ` (${r.build})` : ''}`, r.engine, r.weights, r.classifier, r.kv, String(r.steps),
    r.tok_s.toFixed(1), r.min_tok_s.toFixed(1), r.max_tok_s.toFixed(1), r.x_runc_native.toFixed(3), r.x_runc_wasm3.toFixed(2), r.x_wasm3 === null ? '-' : r.x_wasm3.toFixed(2),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i >= 6 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}
