// `edge-flash bench --isa rv32imc`: instructions per token on the ESP32-C3's ISA (RV32IMC), counted by
// Espressif's QEMU (../shared/esp-qemu, or QEMU_RISCV32 / PATH) with `-icount shift=0`: the emulated
// clock advances one nanosecond per guest instruction and the mcycle CSR reads it, so the difference
// of two reads is the number of instructions between them, the same on every run (nothing interrupts
// the harness). tools/bench/isa/harness.c takes a count at each decode step of the program it links:
// - runc-native: llama2.c's run.c (the user's --runc-src, as `bench --peers`), built by Debian's
//   riscv64-unknown-elf-gcc -march=rv32imc -mabi=ilp32 with picolibc (soft float: the C3 has no FPU);
//   its checkpoint read in place from memory-mapped flash (tools/bench/isa/runc-isa.h).
// Machines: `esp32c3` (the emulated chip: its SRAM, its cache MMU mapping flash at 0x3C000000) with
// the harness's ELF loaded into SRAM by QEMU and the program's files at flash 0x100000, mapped into
// the data bus window (the ROM's flash boot is skipped: under -icount its delay loop never ends);
// `virt` (QEMU's generic RISC-V board, the same rv32imc code, more memory) runs what cannot fit the
// C3's memory (a float32 model beyond its flash). Instruction counts do not depend on the machine;
// only whether the program fits does.
import { execFile, execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { UserError } from '../errors.ts';
import { fromRoot } from '../paths.ts';
import { median } from './stats.ts';

export const ISA_DIR = fromRoot('tools', 'bench', 'isa');
// positions decoded when --steps is not given: every step is a whole token in the emulator
export const ISA_DEFAULT_STEPS = 32;
export const RISCV_CC = 'riscv64-unknown-elf-gcc';
export const ISA_ARCH = ['-march=rv32imc', '-mabi=ilp32'] as const;
export type IsaMachine = 'esp32c3' | 'virt';

// ---- QEMU ----

export interface Qemu { bin: string; bios: string | null }

// Espressif's QEMU as a user has it: QEMU_RISCV32 (the binary), ../shared/esp-qemu beside the
// checkout, or qemu-system-riscv32 on PATH (with its own ROM directory). null when there is none.
export function findQemu(): Qemu | null {
  const env = process.env.QEMU_RISCV32;
  if (env) return existsSync(env) ? { bin: env, bios: siblingBios(env) } : null;
  const shared = fromRoot('..', 'shared', 'esp-qemu', 'bin', 'qemu-system-riscv32');
  if (existsSync(shared)) return { bin: shared, bios: siblingBios(shared) };
  for (const d of (process.env.PATH ?? '').split(delimiter)) {
    const p = join(d, 'qemu-system-riscv32');
    if (d && existsSync(p)) return { bin: p, bios: siblingBios(p) };
  }
  return null;
}

function siblingBios(bin: string): string | null {
  const d = join(bin, '..', '..', 'pc-bios');
  return existsSync(join(d, 'esp32c3-rom.bin')) ? d : null;
}

export function requireQemu(): Qemu {
  const q = findQemu();
  if (!q) throw new UserError('no qemu-system-riscv32 (Espressif\'s QEMU): looked in QEMU_RISCV32, ../shared/esp-qemu/bin and PATH', 'see ../shared/esp-qemu/README.md');
  return q;
}

// ---- the files blob (tools/bench/isa/harness.c reads it) ----

export const BLOB_FLASH_OFFSET = 0x100000;
export const VIRT_BLOB_ADDR = 0x88000000;
const C3_WINDOW = 0x800000 - BLOB_FLASH_OFFSET; // the data bus window's pages left after the offset

export function filesBlob(files: Array<{ name: string; data: Uint8Array }>, args: string[]): Uint8Array {
  const all = [...files, { name: '@args', data: new Uint8Array(Buffer.from(args.map((a) => a + '\0').join(''))) }];
  const head = 8 + 32 * all.length;
  let at = (head + 15) & ~15;
  const table = Buffer.alloc(at);
  table.write('EFIS', 0, 'latin1');
  table.writeUInt32LE(all.length, 4);
  const datas: Buffer[] = [];
  all.forEach((f, i) => {
    if (Buffer.byteLength(f.name) > 23) throw new Error(`blob name too long: ${f.name}`);
    table.write(f.name, 8 + 32 * i, 'utf8');
    table.writeUInt32LE(at, 8 + 32 * i + 24);
    table.writeUInt32LE(f.data.length, 8 + 32 * i + 28);
    const padded = Buffer.alloc((f.data.length + 15) & ~15);
    padded.set(f.data);
    datas.push(padded);
    at += padded.length;
  });
  return new Uint8Array(Buffer.concat([table, ...datas]));
}

// ---- builds ----

function compilerId(cc: string): string {
  try {
    return execFileSync(cc, ['--version'], { encoding: 'utf8' }).split('\n')[0];
  } catch {
    throw new UserError(`no ${cc}: the RV32IMC builds need Debian's gcc-riscv64-unknown-elf and picolibc-riscv64-unknown-elf`, 'run tools/install-system-deps.sh');
  }
}

export interface IsaSource { path: string; flags?: string[] } // one C or assembly file and its own flags

// Compiles and links `sources` with the harness for `machine`; cached under build/isa/ by the hash of
// every input file, the compiler and the flags.
export async function buildIsa(name: string, machine: IsaMachine, programMain: string, sources: IsaSource[], flags: string[], cacheDir = fromRoot('build', 'isa')): Promise<{ path: string; cached: boolean }> {
  const common = [...ISA_ARCH, '--specs=picolibc.specs', '-I', join(ISA_DIR, 'include'), machine === 'esp32c3' ? '-DEF_ISA_ESP32C3' : '-DEF_ISA_VIRT'];
  const all: IsaSource[] = [
    { path: join(ISA_DIR, 'start.S') },
    { path: join(ISA_DIR, 'harness.c'), flags: ['-O2', '-Wall', '-Wextra', '-Werror', `-DEF_ISA_PROGRAM_MAIN=${programMain}`] },
    ...sources,
  ];
  const ld = join(ISA_DIR, `${machine}.ld`);
  const h = createHash('sha256').update(compilerId(RISCV_CC)).update(common.join(' ')).update(flags.join(' ')).update(readFileSync(ld));
  for (const s of all) h.update(s.path).update(readFileSync(s.path)).update((s.flags ?? []).join(' '));
  for (const f of ['runc-isa.h', 'app-isa.h', 'wasi_run.c', 'include/sys/mman.h']) h.update(readFileSync(join(ISA_DIR, f)));
  const dir = join(cacheDir, `${name}-${machine}-${h.digest('hex').slice(0, 16)}`);
  const path = join(dir, `${name}.elf`);
  if (existsSync(path)) return { path, cached: true };
  mkdirSync(dir, { recursive: true });
  const run = promisify(execFile);
  try {
    const objs = await Promise.all(all.map(async (s, i) => {
      const o = join(dir, `${i}.o`);
      await run(RISCV_CC, [...common, ...flags, ...(s.flags ?? []), '-c', s.path, '-o', o], { maxBuffer: 1 << 24 });
      return o;
    }));
    const tmp = `${path}.tmp${process.pid}`;
    await run(RISCV_CC, [...common, '-nostartfiles', '-T', ld, '-Wl,--no-warn-rwx-segments', '-o', tmp, ...objs, '-lm'], { maxBuffer: 1 << 24 });
    renameSync(tmp, path);
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    const lines = ((e as { stderr?: string }).stderr ?? String(e)).split('\n');
    const err = lines.find((l) => /overflowed|will not fit|undefined reference/.test(l)) ?? lines.find((l) => /error/i.test(l)) ?? String(e);
    throw new UserError(`the rv32imc build of ${name} failed: ${err.trim()}`, 'the RV32IMC builds need gcc-riscv64-unknown-elf and picolibc-riscv64-unknown-elf: run tools/install-system-deps.sh');
  }
  return { path, cached: false };
}

// ---- running ----

export interface IsaRun {
  counts: number[];   // instructions between consecutive marks (one per decode step)
  exit: number;
  output: string;     // the program's own output (before the harness's @isa lines)
  heapTop: number;
}

// Boots `elf` on `machine` with the files blob; returns when the harness reports its exit.
export async function runIsa(machine: IsaMachine, elf: string, blob: Uint8Array, timeoutMs: number, qemu = requireQemu()): Promise<IsaRun> {
  const dir = mkdtempSync(join(tmpdir(), 'edge-flash-isa-'));
  try {
    let args: string[];
    if (machine === 'esp32c3') {
      if (!qemu.bios) throw new UserError(`${qemu.bin}: no pc-bios/esp32c3-rom.bin beside it: not Espressif's QEMU?`);
      if (blob.length > C3_WINDOW) throw new UserError(`the files (${blob.length} bytes) exceed the ESP32-C3's data bus window (${C3_WINDOW} bytes after flash 0x${BLOB_FLASH_OFFSET.toString(16)})`);
      const flash = new Uint8Array(BLOB_FLASH_OFFSET + blob.length <= 4 << 20 ? 4 << 20 : 8 << 20).fill(0xff);
      flash.set(blob, BLOB_FLASH_OFFSET);
      writeFileSync(join(dir, 'flash.bin'), flash);
      // QEMU's loader puts the ELF's segments into SRAM and starts the CPU at its entry: the ROM's flash
      // boot is skipped, as under -icount its delay loop (ets_delay_us on CSR 0x802) never ends here
      args = ['-L', qemu.bios, '-machine', 'esp32c3', '-device', `loader,file=${elf},cpu-num=0`, '-drive', `file=${join(dir, 'flash.bin')},if=mtd,format=raw`];
    } else {
      writeFileSync(join(dir, 'files.bin'), blob);
      args = ['-machine', 'virt', '-m', '256M', '-bios', 'none', '-kernel', elf, '-device', `loader,file=${join(dir, 'files.bin')},addr=0x${VIRT_BLOB_ADDR.toString(16)},force-raw=on`];
    }
    // -nographic: UART0 on stdio (the esp32c3 machine printed nothing with -display none -serial stdio)
    args.push('-icount', 'shift=0', '-nographic');
    return await new Promise<IsaRun>((resolve, reject) => {
      const p = spawn(qemu.bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      // never left running when this process ends first (an error, or a signal: the CLI's Ctrl-C)
      const stop = () => p.kill('SIGKILL');
      const onSignal = (sig: NodeJS.Signals) => { stop(); process.kill(process.pid, sig); };
      process.once('exit', stop);
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      p.once('exit', () => { process.removeListener('exit', stop); process.removeListener('SIGINT', onSignal); process.removeListener('SIGTERM', onSignal); });
      let out = '', err = '';
      const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new UserError(`${machine}: no "@isa exit" line within ${timeoutMs / 1000} s: ${lastLines(out)}`)); }, timeoutMs);
      p.stdout.setEncoding('latin1').on('data', (d: string) => {
        out += d;
        if (/@isa exit -?\d+\r?\n/.test(out)) { clearTimeout(timer); p.kill('SIGKILL'); resolve(parseRun(out)); }
      });
      p.stderr.setEncoding('utf8').on('data', (d: string) => { err += d; });
      p.on('error', (e) => { clearTimeout(timer); reject(new UserError(`${qemu.bin}: ${e.message}`)); });
      p.on('exit', (code) => {
        clearTimeout(timer);
        if (!/@isa exit/.test(out)) reject(new UserError(`${machine}: QEMU exited (${code}) before the harness finished: ${lastLines(err || out)}`));
      });
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function lastLines(s: string): string {
  return s.replace(/\r/g, '').trim().split('\n').slice(-2).join(' | ') || '(no output)';
}

export function parseRun(out: string): IsaRun {
  const text = out.replace(/\r\n/g, '\n');
  const at = text.indexOf('@isa start\n');
  const end = text.indexOf('\n@isa marks');
  const num = (re: RegExp) => { const m = re.exec(text); return m ? Number(m[1]) : NaN; };
  const cm = /@isa counts([\d ]*)\n/.exec(text);
  return {
    counts: cm ? cm[1].trim().split(/\s+/).filter(Boolean).map(Number) : [],
    exit: num(/@isa exit (-?\d+)/),
    output: at >= 0 && end >= 0 ? text.slice(at + 11, end) : text,
    heapTop: num(/@isa heap-top (\d+)/),
  };
}

// ---- statistics ----

export interface IsaCounts { per_token: number; min: number; max: number; tokens: number }

// Per-token figures over the decode steps after the first (the first also loads: run.c's own rule):
// their mean (what run.c's achieved tok/s divides: the span of positions 1..n-1 over n-1), and the
// fewest and most of one step (a step's attention grows with its position).
export function perToken(counts: number[]): IsaCounts {
  const c = counts.slice(1);
  if (c.length === 0) throw new UserError('the harness counted no decode step after the first: --steps must be at least 2');
  return { per_token: c.reduce((a, b) => a + b, 0) / c.length, min: Math.min(...c), max: Math.max(...c), tokens: c.length };
}

export function fileSize(p: string): number {
  return statSync(p).size;
}

// ---- the benchmark rows ----

// A llama2.c checkpoint with its context cut to `steps` (run.c allocates its KV cache for the whole
// context; the C3's SRAM holds a short one): header int 6 is seq_len.
export function cutContext(checkpoint: Uint8Array, steps: number): Uint8Array {
  const out = new Uint8Array(checkpoint);
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  if (dv.getInt32(24, true) > steps) dv.setInt32(24, steps, true);
  return out;
}

export const RUNC_ISA_BUILDS = [
  { name: 'gcc -O3', flags: ['-O3'] },
  { name: 'gcc -Ofast', flags: ['-Ofast'] },
] as const;

export interface IsaRow {
  model: string;
  row: string;              // runc-native | runc-wasm3 | edge-flash-wasm3 | edge-flash-aot
  machine: IsaMachine;
  build: string;
  weights: string;
  steps: number;
  instr_per_token: number;  // mean over the decode steps after the first (run.c's achieved tok/s span)
  min: number;
  max: number;
  repeats_equal: boolean;   // every repeat counted the same instructions at every step from the third (see isaRow)
  x_runc_native: number | null;
  x_runc_wasm3: number | null;
  note: string | null;      // why a row ran on virt, or did not run
  counts?: number[];
}

export interface IsaBenchOptions {
  models: string[];
  runcSrc: string;
  steps: number;
  repeat: number;
  timeoutS?: number;
}

// run.c's rows for one model file: each build on the C3 where its files and memory fit, else on virt.
async function runcRows(label: string, model: Uint8Array, tokenizer: Uint8Array, source: string, opts: IsaBenchOptions, tick: (s: string) => void): Promise<IsaRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'edge-flash-isa-src-'));
  const src = join(dir, 'run.c');
  writeFileSync(src, source);
  const blob = filesBlob([{ name: 'model.bin', data: cutContext(model, opts.steps) }, { name: 'tokenizer.bin', data: tokenizer }],
    ['run', '/model.bin', '-z', '/tokenizer.bin', '-t', '0', '-n', String(opts.steps), '-s', '1']);
  const rows: IsaRow[] = [];
  try {
    for (const b of RUNC_ISA_BUILDS) {
      let machine: IsaMachine = blob.length <= C3_WINDOW ? 'esp32c3' : 'virt';
      let note: string | null = machine === 'virt' ? `its files (${(blob.length / 2 ** 20).toFixed(1)} MiB) exceed the C3's 7 MiB flash data window` : null;
      const runs: IsaRun[] = [];
      for (let r = 0; r < opts.repeat; r++) {
        const elf = await buildIsa('runc', machine, 'runc_main', [{ path: src, flags: ['-include', join(ISA_DIR, 'runc-isa.h'), '-w'] }], [...b.flags]);
        tick(`${label}: run.c ${b.name} on ${machine}${elf.cached ? '' : ' (built)'}, repeat ${r + 1}/${opts.repeat}`);
        const run = await runIsa(machine, elf.path, blob, (opts.timeoutS ?? 600) * 1000);
        if (run.exit !== 0 && machine === 'esp32c3' && /malloc failed/.test(run.output)) {
          machine = 'virt';
          note = 'run.c\'s buffers exceed the C3\'s SRAM (malloc failed there)';
          r--;
          continue;
        }
        if (run.exit !== 0) throw new UserError(`run.c (${b.name}) on ${machine} exited ${run.exit}: ${run.output.trim().split('\n').pop() ?? ''}`);
        runs.push(run);
      }
      rows.push(isaRow(label, 'runc-native', machine, `${RISCV_CC.replace(/-gcc$/, '')} ${b.name} rv32imc ilp32, picolibc`, 'f32', opts.steps, runs, note));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

function isaRow(model: string, row: string, machine: IsaMachine, build: string, weights: string, steps: number, runs: IsaRun[], note: string | null, spanOnly = false): IsaRow {
  // spanOnly: counts are [up to the first clock read, positions 1..n-1 together] (wasi_run.c)
  const c = spanOnly ? { per_token: runs[0].counts[1] / (steps - 1), min: NaN, max: NaN, tokens: steps - 1 } : perToken(runs[0].counts);
  if (spanOnly && runs[0].counts.length !== 2) throw new UserError(`${row}: expected two clock reads from run.c, the harness counted ${runs[0].counts.length}`);
  // every step from the third on: the first loads, and the second carries the program's own clock read
  // (run.c's and app_run's timer start), whose cost depends on the clock's value by a few instructions
  const equal = runs.every((r) => r.counts.length === runs[0].counts.length && r.counts.every((x, i) => i < 2 || x === runs[0].counts[i]));
  return { model, row, machine, build, weights, steps, instr_per_token: c.per_token, min: c.min, max: c.max, repeats_equal: equal, x_runc_native: null, x_runc_wasm3: null, note, counts: runs[0].counts };
}

// ---- edge-flash's rows: boards/runtime/test/app_run.c on either app layer, bare-metal ----

export type AppLayer = 'wasm3' | 'aot';
const RT = (...p: string[]) => fromRoot('boards', 'runtime', ...p);
const OWN = ['-std=c99', '-O2', '-Wall', '-Wextra', '-Werror', '-Wno-unused-parameter'];

// The translated app (aot-gen.sh on build/device.wasm), once per app under build/isa/aot-gen/.
function aotGenerated(): string {
  const wasm = fromRoot('build', 'device.wasm');
  if (!existsSync(wasm)) throw new UserError(`missing ${wasm}: the AOT row translates the device app`, 'run npm run build first');
  const dir = fromRoot('build', 'isa', 'aot-gen', createHash('sha256').update(readFileSync(wasm)).update(readFileSync(RT('aot-gen.sh'))).digest('hex').slice(0, 16));
  if (!existsSync(join(dir, 'app_module.c'))) {
    try {
      execFileSync('sh', [RT('aot-gen.sh'), wasm, dir], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (e) {
      rmSync(dir, { recursive: true, force: true });
      throw new UserError(`translating the app failed: ${String((e as { stderr?: Buffer }).stderr ?? e).trim().split('\n').pop()}`, 'the AOT row needs wasm2c (wabt): tools/install-system-deps.sh');
    }
  }
  return dir;
}

export async function buildAppRun(layer: AppLayer, machine: IsaMachine): Promise<{ path: string; cached: boolean }> {
  const { runtimeSources, wasm3SourceDir } = await import('../firmware/project.ts');
  const src = runtimeSources();
  const app = ['-include', join(ISA_DIR, 'app-isa.h'), `-DEF_APP_BUILD="rv32imc ${layer}"`];
  if (layer === 'aot') {
    const gen = aotGenerated();
    const inc = [...src.AOT_DEFS, '-isystem', gen];
    return buildIsa('app_run-aot', machine, 'app_run_main', [
      { path: RT('test', 'app_run.c'), flags: [...OWN, ...inc, ...app] },
      ...[...src.CORE, ...src.APP_AOT].map((f) => ({ path: RT(f), flags: [...OWN, ...inc] })),
      // the translated app as the Makefile compiles it (AOT_OPT -O3, no fused multiply-adds)
      { path: join(gen, 'app_module.c'), flags: ['-O3', ...src.AOT_FP, ...src.AOT_DEFS, '-isystem', gen, '-w'] },
    ], []);
  }
  const w3 = wasm3SourceDir();
  const wasm3 = readdirSync(w3).filter((f) => f.endsWith('.c') && f !== 'm3_api_uvwasi.c').sort();
  return buildIsa('app_run-wasm3', machine, 'app_run_main', [
    { path: RT('test', 'app_run.c'), flags: [...OWN, '-I', w3, ...app] },
    ...[...src.CORE, ...src.APP_WASM3].map((f) => ({ path: RT(f), flags: [...OWN, '-I', w3] })),
    // wasm3 as the Makefile compiles it (WASM3_FLAGS, WASM3_DEFS)
    ...wasm3.map((f) => ({ path: join(w3, f), flags: ['-O3', '-fomit-frame-pointer', '-Dd_m3LogOutput=0', '-Dd_m3Use32BitSlots=0', '-w'] })),
  ], []);
}

// An image of `model` for the ESP32-C3 (ternary tb1 layers, int4 KV, context `ctx`), packed by this CLI.
export function packForC3(model: string, tokenizer: string, ctx: number, dir: string, quant = 'tb1'): { path: string; boardId: number } {
  const out = join(dir, `c3-${quant}-${ctx}.efimg`);
  const r = spawnSync(process.execPath, [fromRoot('bin', 'edge-flash.js'), 'pack', model, '-z', tokenizer, '--board', 'esp32c3', '--quant', quant, '--kv', 'int4', '--ctx', String(ctx), '--force', '-o', out], { encoding: 'utf8' });
  if (r.status !== 0) throw new UserError(`packing ${model} for esp32c3 failed: ${(r.stderr || '').trim().split('\n').pop()}`);
  return { path: out, boardId: 6 };
}

async function appRows(label: string, image: Uint8Array, boardId: number, steps: number, opts: IsaBenchOptions, tick: (s: string) => void, wasm3Stack: number): Promise<IsaRow[]> {
  const rows: IsaRow[] = [];
  const blob = filesBlob([{ name: 'image.efimg', data: image }], ['app_run', '--image', '/image.efimg', '--board-id', String(boardId), '--stack', String(wasm3Stack), '--decode', String(steps)]);
  for (const layer of ['wasm3', 'aot'] as const) {
    let machine: IsaMachine = 'esp32c3';
    let note: string | null = null;
    const runs: IsaRun[] = [];
    for (let r = 0; r < opts.repeat; r++) {
      let elf: { path: string; cached: boolean };
      try {
        elf = await buildAppRun(layer, machine);
      } catch (e) {
        if (machine === 'esp32c3' && /overflowed|will not fit/.test(String((e as Error).message))) {
          machine = 'virt';
          note = 'its code and data do not fit the C3\'s SRAM as this harness lays them out (all in SRAM, nothing run from flash)';
          r--;
          continue;
        }
        throw e;
      }
      tick(`${label}: edge-flash ${layer} on ${machine}${elf.cached ? '' : ' (built)'}, repeat ${r + 1}/${opts.repeat}`);
      let run: IsaRun;
      try {
        run = await runIsa(machine, elf.path, blob, (opts.timeoutS ?? 600) * 1000);
      } catch (e) {
        if (machine !== 'esp32c3') throw e;
        run = { counts: [], exit: -1, output: (e as Error).message, heapTop: NaN };
      }
      if (run.exit !== 0 && machine === 'esp32c3') {
        machine = 'virt';
        note = `it does not fit the C3's SRAM as this harness lays it out (code in SRAM, nothing run from flash): on esp32c3 it ended with "${run.output.trim().split('\n').pop()}"`;
        r--;
        continue;
      }
      if (run.exit !== 0) throw new UserError(`app_run (${layer}) on ${machine} exited ${run.exit}: ${run.output.trim().split('\n').pop() ?? ''}`);
      runs.push(run);
    }
    rows.push(isaRow(label, `edge-flash-${layer}`, machine, `app_run ${layer} (gcc, ${layer === 'aot' ? 'app -O3' : 'wasm3 -O3'})`, 'tb1, int4 KV', steps, runs, note));
  }
  return rows;
}

// ---- run.c under wasm3 (the runc-wasm3 row): tools/bench/isa/wasi_run.c ----

export async function buildWasiRun(machine: IsaMachine): Promise<{ path: string; cached: boolean }> {
  const { wasm3SourceDir } = await import('../firmware/project.ts');
  const w3 = wasm3SourceDir();
  const wasm3 = readdirSync(w3).filter((f) => f.endsWith('.c') && f !== 'm3_api_uvwasi.c').sort();
  return buildIsa('wasi_run', machine, 'wasi_run_main', [
    { path: join(ISA_DIR, 'wasi_run.c'), flags: [...OWN, '-I', w3] },
    ...wasm3.map((f) => ({ path: join(w3, f), flags: ['-O3', '-fomit-frame-pointer', '-Dd_m3LogOutput=0', '-Dd_m3Use32BitSlots=0', '-w'] })),
  ], []);
}

// run.c built to wasm32-wasi exactly as `bench --peers` builds it (cached under build/peers/), under
// wasm3 on rv32imc. It reads the whole checkpoint into linear memory (runc-peer.h: no mmap under
// WASI), so it runs on virt: no C3 holds a model's float32 weights in its SRAM.
export async function runcWasm3Row(label: string, model: Uint8Array, tokenizer: Uint8Array, source: string, opts: IsaBenchOptions, tick: (s: string) => void): Promise<IsaRow> {
  const { buildCached, wasmBuild } = await import('./peers.ts');
  const wasm = await buildCached(source, wasmBuild(), 'run.wasm');
  const blob = filesBlob([{ name: 'run.wasm', data: new Uint8Array(readFileSync(wasm.path)) }, { name: 'model.bin', data: cutContext(model, opts.steps) }, { name: 'tokenizer.bin', data: tokenizer }],
    ['wasi_run', '/run.wasm', 'run', '/model.bin', '-z', '/tokenizer.bin', '-t', '0', '-n', String(opts.steps), '-s', '1']);
  const runs: IsaRun[] = [];
  for (let r = 0; r < opts.repeat; r++) {
    const elf = await buildWasiRun('virt');
    tick(`${label}: run.c under wasm3 on virt${elf.cached ? '' : ' (built)'}, repeat ${r + 1}/${opts.repeat}`);
    const run = await runIsa('virt', elf.path, blob, (opts.timeoutS ?? 600) * 1000);
    if (run.exit !== 0) throw new UserError(`run.c under wasm3 exited ${run.exit}: ${run.output.trim().split('\n').pop() ?? ''}`);
    runs.push(run);
  }
  return isaRow(label, 'runc-wasm3', 'virt', `wasi_run: wasm3 -O3 (gcc); run.c ${wasmBuild().name}`, 'f32', opts.steps, runs,
    `run.c under WASI reads its ${(model.length / 2 ** 20).toFixed(1)} MiB checkpoint into linear memory: no C3 has the SRAM for it; the mean of positions 1..n-1 only (counted at run.c's two clock reads)`, true);
}

export async function benchIsa(opts: IsaBenchOptions, tick: (s: string) => void = () => {}): Promise<IsaRow[]> {
  if (!existsSync(opts.runcSrc)) throw new UserError(`--runc-src ${opts.runcSrc}: no such file`);
  const { patchRunc } = await import('./peers.ts');
  const { benchFile } = await import('./model.ts');
  const source = patchRunc(readFileSync(opts.runcSrc, 'utf8'));
  requireQemu();
  const dir = mkdtempSync(join(tmpdir(), 'edge-flash-isa-'));
  const rows: IsaRow[] = [];
  try {
    for (const name of opts.models) {
      const f = benchFile(name, dir);
      const label = f.label.split(' ')[0];
      const model = new Uint8Array(readFileSync(f.path)), tokenizer = new Uint8Array(readFileSync(f.tokenizer));
      const runc = await runcRows(label, model, tokenizer, source, opts, tick);
      // the fewest instructions of the run.c builds is the baseline (as `bench --peers` picks its native build)
      const best = runc.reduce((a, b) => (b.instr_per_token < a.instr_per_token ? b : a));
      const img = packForC3(f.path, f.tokenizer, opts.steps, dir);
      const app = await appRows(label, new Uint8Array(readFileSync(img.path)), img.boardId, opts.steps, opts, tick, 16 * 1024);
      const w3 = await runcWasm3Row(label, model, tokenizer, source, opts, tick);
      for (const r of [...runc, w3, ...app]) {
        r.x_runc_native = r.instr_per_token / best.instr_per_token;
        r.x_runc_wasm3 = r.instr_per_token / w3.instr_per_token;
      }
      rows.push(...runc, w3, ...app);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

export function formatIsaTable(rows: IsaRow[]): string {
  const head = ['model', 'row', 'machine', 'build', 'weights', 'steps', 'instr/token', 'min', 'max', 'repeatable', 'x runc-native', 'x runc-wasm3'];
  const body = rows.map((r) => [r.model, r.row, r.machine, r.build, r.weights, String(r.steps), r.instr_per_token.toFixed(0), Number.isNaN(r.min) ? '-' : String(r.min), Number.isNaN(r.max) ? '-' : String(r.max),
    r.repeats_equal ? 'yes' : 'NO', r.x_runc_native === null ? '-' : r.x_runc_native.toFixed(3), r.x_runc_wasm3 === null ? '-' : r.x_runc_wasm3.toFixed(3)]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i >= 5 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ');
  const notes = rows.filter((r) => r.note).map((r) => `note: ${r.model} ${r.row} (${r.build}) on ${r.machine}: ${r.note}`);
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line), ...notes].join('\n');
}
