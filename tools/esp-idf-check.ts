// The generated firmware checked against real ESP-IDF: for each ESP-IDF tree found (../shared/esp-idf/v*/
// beside the checkout, or the user's $IDF_PATH), `edge-flash firmware` projects are generated, configured
// with ESP-IDF's own CMake and Kconfig (esp-idf-kconfig in a venv this tool makes under build/esp-idf/),
// and every project C file is compiled with the command line ESP-IDF wrote to compile_commands.json
// (`-c` -> `-S -o /dev/null`). No Espressif toolchain is needed: tools/esp-idf-standin/ answers to
// Espressif's compiler names with Debian's riscv64-unknown-elf-gcc and xtensa-lx106-elf-gcc and
// Espressif's type model (int32_t is long); Xtensa is compile-only. Each project's partition table also
// goes through the tree's own gen_esp32part.py, and every sdkconfig.defaults line is looked up in the
// configured sdkconfig (a line ESP-IDF ignores is reported).
//   npx tsx tools/esp-idf-check.ts [--idf DIR]... [--all] [--only REGEX] [--jobs N] [--keep DIR] [--linux] [--json]
// --linux: also the storage and slot layer on ESP-IDF's `linux` target, on each tree (linuxStorageCheck).
// Default matrix: every variant on the newest tree, one project per chip on the others (--all: every
// variant everywhere). Exit 0: all passed; 1: a check failed; 2: no tree or a missing tool (one line).
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { boardByName } from '../host/board/boards.ts';
import { firmwareLayout, runtimeSources, SLOT_PARTITIONS, STATE_PARTITION, WASM3_IRAM_OBJECTS } from '../host/firmware/project.ts';
import { fromRoot } from '../host/paths.ts';

export const KCONFIG_PIN = 'esp-idf-kconfig==3.14.0';
const WORK = fromRoot('build', 'esp-idf');
const STANDIN = fromRoot('tools', 'esp-idf-standin', 'standin.py');
const PREFIXES = ['riscv32-esp-elf-', 'xtensa-esp32-elf-', 'xtensa-esp32s3-elf-', 'xtensa-esp-elf-'];
const TOOLS = ['gcc', 'g++', 'cc', 'c++', 'cpp', 'gcc-ar', 'gcc-ranlib', 'gcc-nm', 'ar', 'ranlib', 'objcopy', 'objdump', 'size', 'nm', 'ld', 'as', 'readelf', 'strip'];
const CONFIGURE_TIMEOUT_MS = 240_000;
const COMPILE_TIMEOUT_MS = 600_000;   // the translated app (main/aot/app_module.c, ~0.8 MB of C) takes ~50 s on a busy machine

export interface IdfTree { dir: string; version: string; stubcomps?: string }

// The trees: ../shared/esp-idf/v*/ relative to the repository root, then $IDF_PATH (once each).
export function findTrees(env: NodeJS.ProcessEnv = process.env): IdfTree[] {
  const dirs: string[] = [];
  const shared = fromRoot('..', 'shared', 'esp-idf');
  if (existsSync(shared)) for (const d of readdirSync(shared).filter((n) => /^v\d/.test(n)).sort(byVersion)) dirs.push(join(shared, d));
  if (env.IDF_PATH) dirs.push(env.IDF_PATH);
  const seen = new Set<string>();
  const out: IdfTree[] = [];
  for (const dir of dirs) {
    if (!existsSync(join(dir, 'tools', 'cmake', 'project.cmake'))) continue;
    const real = realpathSync(dir);
    if (seen.has(real)) continue;
    seen.add(real);
    const version = treeVersion(dir);
    // the trimmed shared trees leave out mbedtls (a submodule): an empty stand-in component beside them
    const stub = join(dir, '..', `stubcomps-${version}`);
    out.push({ dir: real, version, ...(existsSync(stub) ? { stubcomps: realpathSync(stub) } : {}) });
  }
  return out;
}

function byVersion(a: string, b: string): number {
  const n = (s: string) => s.replace(/^v/, '').split('.').map(Number);
  const x = n(a), y = n(b);
  for (let i = 0; i < 3; i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
  return 0;
}

// version.txt (release archives), else tools/cmake/version.cmake
function treeVersion(dir: string): string {
  const txt = join(dir, 'version.txt');
  if (existsSync(txt)) return readFileSync(txt, 'utf8').trim();
  const cm = readFileSync(join(dir, 'tools', 'cmake', 'version.cmake'), 'utf8');
  const v = (k: string) => new RegExp(`IDF_VERSION_${k} (\\d+)`).exec(cm)?.[1] ?? '0';
  return `v${v('MAJOR')}.${v('MINOR')}.${v('PATCH')}`;
}

const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

// What configure and the stand-in compilers need from the system; the first thing missing, in one line.
export function missingTools(): string | null {
  const need: Array<[string, string]> = [['cmake', 'cmake'], ['ninja', 'ninja-build'], ['python3', 'python3'],
    ['riscv64-unknown-elf-gcc', 'gcc-riscv64-unknown-elf'], ['xtensa-lx106-elf-gcc', 'gcc-xtensa-lx106']];
  const missing = need.filter(([c]) => !have(c)).map(([c, p]) => `${c} (${p})`);
  if (!existsSync('/usr/include/newlib/stdio.h')) missing.push('newlib headers (libnewlib-dev)');
  if (!existsSync('/usr/lib/picolibc/riscv64-unknown-elf/include/stdio.h')) missing.push('picolibc headers (picolibc-riscv64-unknown-elf)');
  if (spawnSync('python3', ['-c', 'import venv, ensurepip'], { stdio: 'ignore' }).status !== 0) missing.push('python3 venv (python3-venv)');
  return missing.length ? `${missing.join(', ')} not found (tools/install-system-deps.sh installs them)` : null;
}

// The venv with esp-idf-kconfig (made once, under build/esp-idf/) and the stand-in compilers' names; the
// environment configure runs in. Throws with one line when the venv cannot be made.
export function toolEnv(): NodeJS.ProcessEnv {
  const venv = join(WORK, 'venv');
  const py = join(venv, 'bin', 'python');
  const ok = () => existsSync(py) && spawnSync(py, ['-c', 'import kconfgen, esp_kconfig'], { stdio: 'ignore' }).status === 0
    || existsSync(py) && spawnSync(py, ['-m', 'pip', 'show', '-q', 'esp-idf-kconfig'], { stdio: 'ignore' }).status === 0;
  if (!ok()) {
    mkdirSync(WORK, { recursive: true });
    process.stderr.write(`esp-idf-check: making ${relative(process.cwd(), venv) || venv} with ${KCONFIG_PIN}\n`);
    const mk = spawnSync('python3', ['-m', 'venv', venv], { encoding: 'utf8', timeout: 120_000 });
    if (mk.status !== 0) throw new Error(`python3 -m venv ${venv} failed: ${(mk.stderr || '').trim().split('\n').pop()}`);
    const pip = spawnSync(py, ['-m', 'pip', 'install', '-q', KCONFIG_PIN], { encoding: 'utf8', timeout: 300_000 });
    if (pip.status !== 0) throw new Error(`pip install ${KCONFIG_PIN} failed: ${(pip.stderr || '').trim().split('\n').pop()}`);
  }
  const bin = join(WORK, 'bin');
  mkdirSync(bin, { recursive: true });
  for (const p of PREFIXES) {
    for (const t of TOOLS) {
      const link = join(bin, p + t);
      if (!existsSync(link)) symlinkSync(STANDIN, link);
    }
  }
  return { ...process.env, PATH: `${bin}:${join(venv, 'bin')}:${process.env.PATH}`, IDF_COMPONENT_MANAGER: '0', PYTHONDONTWRITEBYTECODE: '1' };
}

export interface Variant { board: string; console: 'uart' | 'usb-cdc'; aot: boolean; image: boolean }
export const variantName = (v: Variant) => `${v.board}-${v.console}-${v.aot ? 'aot' : 'wasm3'}${v.image ? '-image' : ''}`;

// Every variant: esp32 (UART only), esp32s3 without and with PSRAM, esp32c3; uart and usb-cdc; wasm3 and
// --aot; with and without --image (on the esp32c3 --image only with --aot: see below).
export function allVariants(): Variant[] {
  const out: Variant[] = [];
  for (const board of ['esp32', 'esp32s3', 'esp32s3-psram8', 'esp32c3']) {
    for (const con of board === 'esp32' ? ['uart'] as const : ['uart', 'usb-cdc'] as const) {
      for (const aot of [false, true]) {
        for (const image of [false, true]) {
          // no image fits the esp32c3's ESP-IDF firmware under wasm3 (the planner: wasm3 wants more than
          // ESP-IDF's heap there; test/planner.test.ts checks `firmware --image` refuses): no such project
          if (image && !aot && board === 'esp32c3') continue;
          out.push({ board, console: con, aot, image });
        }
      }
    }
  }
  return out;
}
// One project per chip, between them every console, engine and --image, and PSRAM.
export const ONE_PER_CHIP: Variant[] = [
  { board: 'esp32', console: 'uart', aot: false, image: true },
  { board: 'esp32s3-psram8', console: 'usb-cdc', aot: true, image: true },
  { board: 'esp32c3', console: 'usb-cdc', aot: false, image: false },
];

// The matrix: every variant on the newest tree, one project per chip on the others (all: every variant everywhere).
export const newestTree = (trees: IdfTree[]) => [...trees].sort((a, b) => byVersion(a.version, b.version)).at(-1)!;
export function matrix(trees: IdfTree[], all = false): Array<{ tree: IdfTree; variant: Variant }> {
  const newest = newestTree(trees);
  return trees.flatMap((tree) => (all || tree === newest ? allVariants() : ONE_PER_CHIP).map((variant) => ({ tree, variant })));
}

export interface FileResult { file: string; ok: boolean; error?: string; cached?: boolean; object?: string }
export interface CheckResult {
  version: string;
  variant: string;
  ok: boolean;
  stage?: 'generate' | 'configure' | 'flash-args' | 'partition-table' | 'compile' | 'ldgen';
  error?: string;
  files: FileResult[];
  ignored: string[];         // sdkconfig.defaults lines the configured sdkconfig does not hold
  components: string[];      // the build's components (project_description.json)
  seconds: number;
}

// At most n jobs (configures and compiles) at a time; `first` jobs (a configured project's compiles) go
// ahead of those waiting, so that results come in as the matrix runs.
export class Slots {
  private waiting: Array<() => void> = [];
  private busy = 0;
  constructor(private readonly n: number) {}
  async run<T>(fn: () => Promise<T>, first = false): Promise<T> {
    if (this.busy >= this.n) await new Promise<void>((r) => (first ? this.waiting.unshift(r) : this.waiting.push(r)));
    this.busy += 1;
    try {
      return await fn();
    } finally {
      this.busy -= 1;
      this.waiting.shift()?.();
    }
  }
}

function sh(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs: number }): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { out += d; });
    const timer = setTimeout(() => { out += `\n(timed out after ${opts.timeoutMs / 1000} s)`; p.kill('SIGKILL'); }, opts.timeoutMs);
    p.on('close', (code) => { clearTimeout(timer); resolve({ code, out }); });
  });
}

const lastLines = (s: string, n = 12) => s.trim().split('\n').slice(-n).join('\n');
const errorLines = (s: string) => {
  const e = s.split('\n').filter((l) => /error|Error/.test(l));
  return (e.length ? e.slice(0, 8).join('\n') : lastLines(s));
};

// The compile results of this run: a file whose command (project folder aside), source and headers are
// the same as one compiled already gives the same result (variants with and without --image differ only
// in CMake lines that write flash).
const compiled = new Map<string, FileResult>();
function compileKey(command: string, file: string, project: string, headers: string): string {
  return createHash('sha256').update(command.split(project).join('<P>')).update(readFileSync(file)).update(headers).digest('hex');
}
function headersHash(project: string): string {
  const h = createHash('sha256');
  const walk = (d: string) => {
    for (const n of readdirSync(d).sort()) {
      const p = join(d, n);
      if (n === 'build' && d === project) continue;
      if (statSync(p).isDirectory()) walk(p);
      else if (n.endsWith('.h') || n === 'sdkconfig.h') h.update(relative(project, p)).update(readFileSync(p));
    }
  };
  walk(project);
  return h.digest('hex');
}

// One variant on one tree: generate (the CLI, as a user runs it), configure, partition table, compile.
export async function checkVariant(tree: IdfTree, v: Variant, work: string, env: NodeJS.ProcessEnv, slots: Slots, image?: string): Promise<CheckResult> {
  const t0 = Date.now();
  const name = variantName(v);
  const project = join(work, tree.version, name);
  const r: CheckResult = { version: tree.version, variant: name, ok: false, files: [], ignored: [], components: [], seconds: 0 };
  const done = (stage: CheckResult['stage'], error?: string) => {
    r.seconds = (Date.now() - t0) / 1000;
    if (error) Object.assign(r, { stage, error });
    else r.ok = r.files.every((f) => f.ok);
    return r;
  };
  const gen = spawnSync(process.execPath, [fromRoot('bin', 'edge-flash.js'), 'firmware', '--board', v.board, '--console', v.console, '-o', project, '--force',
    ...(v.aot ? ['--aot'] : []), ...(v.image && image ? ['--image', image] : [])], { encoding: 'utf8', timeout: 120_000 });
  if (gen.status !== 0) return done('generate', (gen.stderr || '').trim());
  const build = join(project, 'build');
  rmSync(build, { recursive: true, force: true });
  const b = boardByName(v.board);
  const target = firmwareLayout(b).target;
  const cfg = await slots.run(() => sh('cmake', ['-S', project, '-B', build, '-G', 'Ninja', `-DIDF_TARGET=${target}`, '-DPYTHON_DEPS_CHECKED=1',
    ...(tree.stubcomps ? [`-DEXTRA_COMPONENT_DIRS=${tree.stubcomps}`] : [])], { env: { ...env, IDF_PATH: tree.dir }, timeoutMs: CONFIGURE_TIMEOUT_MS }));
  if (cfg.code !== 0 || !existsSync(join(build, 'compile_commands.json'))) return done('configure', errorLines(cfg.out));
  r.ignored = ignoredLines(project, cfg.out);
  try {
    r.components = JSON.parse(readFileSync(join(build, 'project_description.json'), 'utf8')).build_components ?? [];
  } catch { /* an older project_description.json: no component list */ }
  const flashErr = flashArgsError(build, b, v.image);
  if (flashErr) return done('flash-args', flashErr);
  const part = spawnSync(join(WORK, 'venv', 'bin', 'python'), [join(tree.dir, 'components', 'partition_table', 'gen_esp32part.py'), '--flash-size', `${Math.round(b.flash.size / (1 << 20))}MB`,
    join(project, 'partitions.csv'), join(build, 'partitions.bin')], { encoding: 'utf8', env: { ...env, IDF_PATH: tree.dir }, timeout: 60_000 });
  if (part.status !== 0) return done('partition-table', lastLines(`${part.stdout}${part.stderr}`, 4));
  const commands: Array<{ directory: string; command: string; file: string }> = JSON.parse(readFileSync(join(build, 'compile_commands.json'), 'utf8'));
  const ours = commands.filter((c) => c.file.startsWith(`${project}/`) && !c.file.startsWith(`${build}/`) && /\.c$/.test(c.file));
  if (!ours.length) return done('compile', 'compile_commands.json has no project C file');
  const headers = headersHash(project);
  const objects = join(build, 'ef-objects');
  mkdirSync(objects, { recursive: true });
  r.files = await Promise.all(ours.map(async (c): Promise<FileResult> => {
    const file = relative(project, c.file);
    // wasm3's objects the IRAM fragment names are assembled too (-c, into build/ef-objects/), for ldgen below
    const iram = WASM3_IRAM_FILE.exec(c.file);
    const object = iram ? join(objects, `${iram[1]}.c.obj`) : undefined;
    const cmd = object ? c.command.replace(/ -o \S+/, ` -o ${object}`) : c.command.replace(/ -o \S+/, ' -o /dev/null').replace(/ -c (?=\S)/, ' -S ');
    if (!object && (!cmd.includes(' -S ') || !cmd.includes('-o /dev/null'))) return { file, ok: false, error: `unexpected command line: ${c.command.slice(0, 200)}` };
    const key = compileKey(cmd.split(object ?? '\0').join('<O>'), c.file, project, headers);
    const hit = compiled.get(key);
    if (hit && (!object || hit.object)) {
      if (object && hit.object) writeFileSync(object, readFileSync(hit.object));
      return { ...hit, file, cached: true, object };
    }
    const out = await slots.run(() => sh('sh', ['-c', cmd], { cwd: c.directory, env, timeoutMs: COMPILE_TIMEOUT_MS }), true);
    const res: FileResult = out.code === 0 ? { file, ok: true, object } : { file, ok: false, error: errorLines(out.out.replace(/\x1b\[[0-9;]*m|\x1b\[K/g, '')) };
    compiled.set(key, res);
    return res;
  }));
  if (!v.aot && r.files.every((f) => f.ok)) {
    const e = await ldgenError(build, target, r.files.filter((f) => f.object).map((f) => f.object!), env, slots);
    if (e) return done('ldgen', e);
  }
  return done('compile');
}

// wasm3's sources whose objects components/wasm3/iram.lf places in IRAM
const WASM3_IRAM_FILE = new RegExp(`/components/wasm3/source/(${WASM3_IRAM_OBJECTS.join('|')})\\.c$`);
// ESP-IDF's linker script generator (ldgen), as the build runs it, on an archive of wasm3's objects
// (Debian's ar: the stand-in's archives are empty): the interpreter's code must land in IRAM
// (.iram0.text), its constants in DRAM (.dram0.data), none of it in flash. Null, or what is wrong.
export async function ldgenError(build: string, target: string, objects: string[], env: NodeJS.ProcessEnv, slots: Slots): Promise<string | null> {
  if (objects.length !== WASM3_IRAM_OBJECTS.length) return `${objects.length} of wasm3's ${WASM3_IRAM_OBJECTS.length} IRAM objects were built`;
  const line = readFileSync(join(build, 'build.ninja'), 'utf8').split('\n').find((l) => l.includes('ldgen.py') && / --output \S*sections\.ld\b/.test(l));
  if (!line) return 'build.ninja runs no ldgen for sections.ld';
  const lib = join(build, 'ef-objects', 'libwasm3.a');
  rmSync(lib, { force: true });
  const ar = spawnSync(target === 'esp32c3' ? 'riscv64-unknown-elf-ar' : 'xtensa-lx106-elf-ar', ['rcs', lib, ...objects], { encoding: 'utf8' });
  if (ar.status !== 0) return `ar: ${ar.stderr.trim()}`;
  const libs = join(build, 'ef-objects', 'libraries');
  const out = join(build, 'ef-objects', 'sections.ld');
  writeFileSync(libs, `${lib}\n`);
  const cmd = line.replace(/^\s*COMMAND = /, '').split(' && ').find((p) => p.includes('ldgen.py'))!
    .replace(/--libraries-file \S+/, `--libraries-file ${libs}`).replace(/--output \S+/, `--output ${out}`);
  const dir = /^cd (\S+) && /.exec(line.replace(/^\s*COMMAND = /, ''))?.[1] ?? build;
  mkdirSync(dir, { recursive: true });
  // from v5.5 the template is itself a build product (the linker script run through the C preprocessor)
  const input = / --input (\S+)/.exec(cmd)?.[1];
  if (input && !existsSync(input) && input.startsWith(`${build}/`)) {
    const pre = await slots.run(() => sh('ninja', ['-C', build, relative(build, input)], { env, timeoutMs: COMPILE_TIMEOUT_MS }), true);
    if (pre.code !== 0) return `ninja ${relative(build, input)}: ${errorLines(pre.out)}`;
  }
  const r = await slots.run(() => sh('sh', ['-c', cmd], { cwd: dir, env, timeoutMs: COMPILE_TIMEOUT_MS }), true);
  if (r.code !== 0) return `ldgen: ${errorLines(r.out)}`;
  // each wasm3 input line and the output section it sits in
  let section = '';
  const placed = new Map<string, Set<string>>();
  for (const l of readFileSync(out, 'utf8').split('\n')) {
    const sec = /^\s*(\.[\w.]+)\s*(\(NOLOAD\))?\s*:/.exec(l);
    if (sec) section = sec[1];
    const m = /^\s*\*libwasm3\.a:(m3_\w+)\.\*\((\.\w+)/.exec(l);
    if (m) placed.set(`${m[1]} ${m[2]}`, (placed.get(`${m[1]} ${m[2]}`) ?? new Set()).add(section));
  }
  for (const o of WASM3_IRAM_OBJECTS) {
    const text = [...(placed.get(`${o} .literal`) ?? placed.get(`${o} .text`) ?? [])];
    if (!text.length || text.some((x) => !x.startsWith('.iram0'))) return `ldgen places ${o}'s code in ${text.join(', ') || 'no named section'}, not IRAM`;
  }
  return null;
}

// What `idf.py flash` would write (build/flash_args, which configure writes): the app at the profile's app
// partition, and with --image the erased slot record and the image at their partitions' offsets, files that
// exist. Null when it is so; else what differs.
export function flashArgsError(build: string, board: ReturnType<typeof boardByName>, image: boolean): string | null {
  const file = join(build, 'flash_args');
  if (!existsSync(file)) return 'configure wrote no flash_args';
  const rows = new Map<number, string>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^(0x[0-9a-f]+) (\S+)$/i.exec(line.trim());
    if (m) rows.set(Number(m[1]), m[2]);
  }
  const layout = firmwareLayout(board);
  const at = (name: string) => layout.partitions.find((p) => p.name === name)!.offset;
  const app = layout.partitions.find((p) => p.type === 'app')!;
  const want: Array<[number, RegExp]> = [[app.offset, /\.bin$/]];
  if (image) want.push([at(STATE_PARTITION), /model\/erased-slot-record\.bin$/], [at(SLOT_PARTITIONS[0]), /model\/[^/]+\.efimg$/]);
  for (const [offset, name] of want) {
    const got = rows.get(offset);
    if (!got || !name.test(got)) return `flash_args has ${got ?? 'nothing'} at 0x${offset.toString(16)}, not ${name.source}`;
    if (offset !== app.offset && !existsSync(join(build, got))) return `flash_args names ${got}, which does not exist`;
  }
  if (!image && [...rows.values()].some((f) => f.includes('model/'))) return 'flash_args writes a model without --image';
  return null;
}

// sdkconfig.defaults lines the configured sdkconfig does not hold: a name Kconfig does not know (or that
// depends on something unset), or a value it did not take.
export function ignoredLines(project: string, configureOutput = ''): string[] {
  const json = JSON.parse(readFileSync(join(project, 'build', 'config', 'sdkconfig.json'), 'utf8')) as Record<string, unknown>;
  // what Kconfig says it did not take: a symbol it does not know, or one whose dependencies are unset
  const notTaken = new Set([...configureOutput.matchAll(/unknown kconfig symbol '(\w+)'|(\w+) has user-set value .* but is not visible/g)].map((m) => m[1] ?? m[2]));
  const out: string[] = [];
  for (const line of readFileSync(join(project, 'sdkconfig.defaults'), 'utf8').split('\n')) {
    const set = /^CONFIG_([A-Z0-9_]+)=(.*)$/.exec(line);
    const unset = /^# CONFIG_([A-Z0-9_]+) is not set$/.exec(line);
    if (!set && !unset) continue;
    const key = (set ?? unset)![1];
    const want = set ? set[2] : 'n';
    const got = json[key];
    const same = got === undefined ? false
      : typeof got === 'boolean' ? (want === 'y') === got
        : typeof got === 'number' ? Number(want) === got
          : JSON.stringify(got) === want;
    // an unset bool that Kconfig does not show at all is unset too
    if ((!same && !(unset && got === undefined)) || notTaken.has(key)) out.push(line);
  }
  return out;
}

// The images the --image variants take: one per board, packed by the CLI from the bundled tiny model.
export function packImages(dir: string, boards: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const board of boards) {
    const file = join(dir, `${board}.efimg`);
    const r = spawnSync(process.execPath, [fromRoot('bin', 'edge-flash.js'), 'pack', fromRoot('models', 'kjv-esp32-260k'), '--board', board, '--quant', 'tb1', '--kv', 'int4', '--ctx', '64', '--force', '-o', file], { encoding: 'utf8', timeout: 120_000 });
    if (r.status !== 0) throw new Error(`packing an image for ${board} failed: ${(r.stderr || '').trim().split('\n').pop()}`);
    out.set(board, file);
  }
  return out;
}

// The images of --image variants: one per board and engine, packed for the board's ESP-IDF firmware
// (`firmware --image` plans with its figures, and refuses an image packed for another firmware).
const imageKey = (v: Variant) => `${v.board}-${v.aot ? 'aot' : 'wasm3'}`;
function firmwareImages(dir: string, variants: Variant[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const v of variants) {
    const key = imageKey(v);
    if (out.has(key)) continue;
    const file = join(dir, `${key}.efimg`);
    const r = spawnSync(process.execPath, [fromRoot('bin', 'edge-flash.js'), 'pack', fromRoot('models', 'kjv-esp32-260k'), '--board', v.board, '--firmware', 'esp-idf', '--engine', v.aot ? 'aot' : 'wasm3', '--quant', 'tb1', '--kv', 'int4', '--ctx', '64', '--force', '-o', file], { encoding: 'utf8', timeout: 120_000 });
    if (r.status !== 0) throw new Error(`packing an image for ${key} failed: ${(r.stderr || '').trim().split('\n').pop()}`);
    out.set(key, file);
  }
  return out;
}

export async function checkMatrix(runs: Array<{ tree: IdfTree; variant: Variant }>, opts: { jobs?: number; work?: string; log?: (s: string) => void } = {}): Promise<CheckResult[]> {
  const env = toolEnv();
  const work = opts.work ?? mkdtempSync(join(tmpdir(), 'edge-flash-idf-'));
  const images = firmwareImages(work, runs.map((x) => x.variant).filter((v) => v.image));
  const slots = new Slots(opts.jobs ?? 2);
  return Promise.all(runs.map(async ({ tree, variant }) => {
    const res = await checkVariant(tree, variant, work, env, slots, images.get(imageKey(variant)));
    opts.log?.(`${tree.version} ${res.variant}: ${res.ok ? `ok, ${res.files.length} files` : `FAILED at ${res.stage ?? 'compile'}`} (${res.seconds.toFixed(0)} s)${res.ignored.length ? `; sdkconfig lines ignored: ${res.ignored.join(' | ')}` : ''}\n`);
    return res;
  }));
}

// The storage and slot layer on ESP-IDF's `linux` target: the generated esp32c3 firmware's own
// partition_storage.c, board_config.h, partitions.csv and core/ slot code, with test/esp-idf-linux/
// storage_main.c, built with the host's gcc against esp_partition's flash emulation and run. Its lines
// ("ok ..." / "FAIL ...") come back; ok when it exits 0.
export interface LinuxResult { version: string; ok: boolean; stage?: string; lines: string[]; error?: string; seconds: number }
export async function linuxStorageCheck(tree: IdfTree, work: string, env: NodeJS.ProcessEnv, slots: Slots, image: string, board = 'esp32c3'): Promise<LinuxResult> {
  const t0 = Date.now();
  const r: LinuxResult = { version: tree.version, ok: false, lines: [], seconds: 0 };
  const fail = (stage: string, error: string) => Object.assign(r, { stage, error, seconds: (Date.now() - t0) / 1000 });
  const gen = join(work, tree.version, `linux-${board}-generated`);
  const g = spawnSync(process.execPath, [fromRoot('bin', 'edge-flash.js'), 'firmware', '--board', board, '-o', gen, '--force'], { encoding: 'utf8', timeout: 120_000 });
  if (g.status !== 0) return fail('generate', (g.stderr || '').trim());
  const project = join(work, tree.version, `linux-${board}`);
  rmSync(project, { recursive: true, force: true });
  mkdirSync(join(project, 'main', 'core'), { recursive: true });
  const copy = (from: string, to: string) => writeFileSync(join(project, to), readFileSync(from));
  copy(join(gen, 'partitions.csv'), 'partitions.csv');
  for (const f of ['partition_storage.c', 'partition_storage.h', 'board_config.h']) copy(join(gen, 'main', f), join('main', f));
  const core = runtimeSources().CORE.map((f) => f.slice('core/'.length));
  for (const f of readdirSync(join(gen, 'main', 'core')).filter((n) => n.endsWith('.h') || core.includes(n))) copy(join(gen, 'main', 'core', f), join('main', 'core', f));
  copy(fromRoot('test', 'esp-idf-linux', 'storage_main.c'), join('main', 'storage_main.c'));
  const flashMiB = Math.round(boardByName(board).flash.size / (1 << 20));
  writeFileSync(join(project, 'CMakeLists.txt'), `# the storage and slot layer on ESP-IDF's linux target (tools/esp-idf-check.ts)
cmake_minimum_required(VERSION 3.16)
include($ENV{IDF_PATH}/tools/cmake/project.cmake)
set(COMPONENTS main)
project(ef-storage)
# glibc 2.36 has no strlcpy, which esp_partition's linux emulation calls: libbsd has it
target_link_libraries(\${CMAKE_PROJECT_NAME}.elf PRIVATE bsd)
`);
  writeFileSync(join(project, 'sdkconfig.defaults'), `CONFIG_IDF_TARGET="linux"
CONFIG_PARTITION_TABLE_CUSTOM=y
CONFIG_PARTITION_TABLE_CUSTOM_FILENAME="partitions.csv"
CONFIG_ESPTOOLPY_FLASHSIZE_${flashMiB}MB=y
`);
  writeFileSync(join(project, 'main', 'CMakeLists.txt'), `idf_component_register(SRCS "storage_main.c" "partition_storage.c" ${core.map((f) => `"core/${f}"`).join(' ')}
                       INCLUDE_DIRS "."
                       PRIV_REQUIRES esp_partition)
`);
  const idfEnv = { ...env, IDF_PATH: tree.dir };
  const build = join(project, 'build');
  const cfg = await slots.run(() => sh('cmake', ['-S', project, '-B', build, '-G', 'Ninja', '-DIDF_TARGET=linux', '-DPYTHON_DEPS_CHECKED=1',
    ...(tree.stubcomps ? [`-DEXTRA_COMPONENT_DIRS=${tree.stubcomps}`] : [])], { env: idfEnv, timeoutMs: CONFIGURE_TIMEOUT_MS }));
  if (cfg.code !== 0) return fail('configure', errorLines(cfg.out));
  const nj = await slots.run(() => sh('ninja', ['-C', build, '-j1'], { env: idfEnv, timeoutMs: CONFIGURE_TIMEOUT_MS }));
  if (nj.code !== 0) return fail('build', errorLines(nj.out));
  const run = await sh(join(build, 'ef-storage.elf'), [], { cwd: build, env: { ...env, EF_IMAGE: image }, timeoutMs: 60_000 });
  r.lines = run.out.split('\n').filter((l) => /^(ok|FAIL) /.test(l));
  r.ok = run.code === 0 && r.lines.length > 0 && r.lines.every((l) => l.startsWith('ok '));
  if (!r.ok) r.error = lastLines(run.out, 20);
  r.seconds = (Date.now() - t0) / 1000;
  return r;
}

function usage(msg: string): never {
  process.stderr.write(`esp-idf-check: ${msg}\nusage: npx tsx tools/esp-idf-check.ts [--idf DIR]... [--all] [--only REGEX] [--jobs N] [--keep DIR] [--linux] [--json]\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const idf: string[] = [];
  let linux = false, all = false, json = false, only: RegExp | undefined, jobs = 2, keep: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const val = () => args[++i] ?? usage(`${a} needs a value`);
    if (a === '--idf') idf.push(val());
    else if (a === '--all') all = true;
    else if (a === '--json') json = true;
    else if (a === '--only') only = new RegExp(val());
    else if (a === '--jobs') { jobs = Number(val()); if (!Number.isInteger(jobs) || jobs < 1 || jobs > 64) usage('--jobs must be an integer in 1..64'); }
    else if (a === '--keep') keep = val();
    else if (a === '--linux') linux = true;
    else usage(`unknown argument '${a}'`);
  }
  const trees = idf.length
    ? idf.map((d) => {
      if (!existsSync(join(d, 'tools', 'cmake', 'project.cmake'))) usage(`${d} is not an ESP-IDF tree (no tools/cmake/project.cmake)`);
      return findTrees({ IDF_PATH: d }).find((t) => t.dir === realpathSync(d))!;
    })
    : findTrees();
  if (!trees.length) usage('no ESP-IDF tree found: none in ../shared/esp-idf/ beside the checkout, and IDF_PATH is not set (or pass --idf DIR)');
  const missing = missingTools();
  if (missing) usage(missing);
  let runs = matrix(trees, all);
  if (only) runs = runs.filter((x) => only!.test(`${x.tree.version} ${variantName(x.variant)}`));
  if (!runs.length) usage('--only matches no variant');
  if (keep) mkdirSync(keep, { recursive: true });
  const work = keep ?? mkdtempSync(join(tmpdir(), 'edge-flash-idf-'));
  process.stderr.write(`esp-idf-check: ${runs.length} projects on ${[...new Set(runs.map((x) => x.tree.version))].join(', ')}, ${jobs} jobs at a time\n`);
  const t0 = Date.now();
  const results = await checkMatrix(runs, { jobs, work, log: (s) => process.stderr.write(s) });
  const failed: Array<{ ok: boolean }> = results.filter((x) => !x.ok);
  const linuxResults: LinuxResult[] = [];
  if (linux) {
    const env = toolEnv();
    const image = packImages(work, ['esp32c3']).get('esp32c3')!;
    const slots = new Slots(jobs);
    linuxResults.push(...await Promise.all(trees.map((t) => linuxStorageCheck(t, work, env, slots, image))));
    failed.push(...linuxResults.filter((x) => !x.ok));
  }
  if (json) process.stdout.write(`${JSON.stringify({ results, linux: linuxResults, seconds: (Date.now() - t0) / 1000 }, null, 1)}\n`);
  else {
    for (const x of results) {
      process.stdout.write(`${x.ok ? 'ok  ' : 'FAIL'} ${x.version} ${x.variant}: ${x.files.length} C files${x.ignored.length ? `, sdkconfig ignores: ${x.ignored.join(' | ')}` : ''}\n`);
      if (x.error) process.stdout.write(`     ${x.stage}: ${x.error.split('\n').join('\n     ')}\n`);
      for (const f of x.files.filter((y) => !y.ok)) process.stdout.write(`     ${f.file}: ${(f.error ?? '').split('\n').join('\n     ')}\n`);
    }
    for (const x of linuxResults) {
      process.stdout.write(`${x.ok ? 'ok  ' : 'FAIL'} ${x.version} linux target: storage and slots, ${x.lines.length} checks${x.ok ? '' : `\n     ${x.stage ?? 'run'}: ${(x.error ?? '').split('\n').join('\n     ')}`}\n`);
    }
    process.stdout.write(`${results.filter((x) => x.ok).length} of ${results.length} projects configure and compile${linux ? `; the linux-target storage check passes on ${linuxResults.filter((x) => x.ok).length} of ${linuxResults.length} trees` : ''} (${((Date.now() - t0) / 1000).toFixed(0)} s)\n`);
  }
  if (!keep) rmSync(work, { recursive: true, force: true });
  process.exit(failed.length ? 1 : 0);
}

if (process.argv[1]?.endsWith('esp-idf-check.ts')) {
  main().catch((e) => { process.stderr.write(`esp-idf-check: ${(e as Error).message}\n`); process.exit(2); });
}
