// The system packages the build and the tests need on a Debian or Ubuntu machine: ONE table
// (tool -> check -> Debian packages -> why), read by
//   - `npm test`'s set-up step (test/run.mjs: `setUp()` below), before anything is built,
//   - tools/install-system-deps.sh (`node tools/system-deps.mjs install`),
//   - test/system-deps.test.ts, which checks the logic (which packages for which missing tool, the
//     root and non-root answers) on a fake machine, removing nothing.
// Plain JavaScript (with tools/system-deps.d.mts for the types): it runs before `npm ci` has brought tsx.
//
// A check is declarative, so that a test can answer it: `commands` on PATH, `files` that exist,
// `globs` (one `*` per path part) that match, `libs` in the linker cache (ldconfig -p), or a shell
// line that must exit 0 (`sh`). A row's `packages` may depend on the machine (the multilib package
// follows the installed gcc). A row with no packages (Rust) is not Debian's to give: its `hint` says how.
// `start: true` rows are what the CLI itself needs (the virtual board and the wasm3 addon): `npm start`
// sets up those alone (`node tools/system-deps.mjs start`, its prestart script) and never stops on them.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync } from 'node:fs';
import { arch } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** @type {import('./system-deps.d.mts').SystemDep[]} */
export const SYSTEM_DEPS = [
  { tool: 'cc', start: true, check: { commands: ['cc'] }, packages: ['build-essential'],
    why: "the native benchmark baseline, wasm3's C sources, the device runtime (virtual board)" },
  { tool: 'make', start: true, check: { commands: ['make'] }, packages: ['make'],
    why: 'boards/runtime/Makefile: the device runtime and its AOT and cross builds' },
  { tool: 'clang', start: true, check: { commands: ['clang'] }, packages: ['clang'],
    why: 'compiles wasm3 into faster code than gcc (tools/build.mjs falls back to cc)' },
  { tool: 'libclang', start: true, check: { libs: ['libclang'], globs: ['/usr/lib/llvm-*/lib/clang/*/include/stddef.h'] }, packages: ['libclang-dev'],
    why: "bindgen, for the wasm3-node addon: the library and clang's own headers (stddef.h)" },
  { tool: 'cargo >= 1.85', start: true, check: { sh: `cargo --version 2>/dev/null | awk '{ split($2, v, "."); exit !(v[1] > 1 || (v[1] == 1 && v[2] >= 85)) }'` }, packages: [],
    hint: 'install Rust >= 1.85 with rustup (https://rustup.rs; Debian 12\'s rustc is too old)',
    why: 'builds the wasm3-node addon (tools/wasm3-node)' },
  { tool: 'cmake', check: { commands: ['cmake'] }, packages: ['cmake'],
    why: "test/firmware.test.ts reads the generated ESP-IDF projects' CMake files; ESP-IDF's own build" },
  { tool: 'ninja', check: { commands: ['ninja'] }, packages: ['ninja-build'],
    why: "ESP-IDF's CMake generator (the firmware checked against real ESP-IDF trees)" },
  { tool: 'cc -m32', x86_64: true, check: { sh: "echo 'int main(void){return 0;}' | cc -m32 -x c - -o /dev/null" },
    packages: (m) => [`gcc-${m.gccMajor() ?? 12}-multilib`],
    why: "the C headers and firmware stand-ins built 32-bit (boards are); gcc-N-multilib, as Debian's gcc-multilib conflicts with the cross compilers" },
  { tool: 'aarch64-linux-gnu-gcc', check: { commands: ['aarch64-linux-gnu-gcc'] }, packages: ['gcc-aarch64-linux-gnu'],
    why: 'the Raspberry Pi runtime, 64-bit (edge-flash runtime build --cross aarch64)' },
  { tool: 'arm-linux-gnueabihf-gcc', check: { commands: ['arm-linux-gnueabihf-gcc'] }, packages: ['gcc-arm-linux-gnueabihf'],
    why: 'the Raspberry Pi runtime, 32-bit (edge-flash runtime build --cross armhf)' },
  { tool: 'qemu-aarch64, qemu-arm', check: { commands: ['qemu-aarch64', 'qemu-arm'] }, packages: ['qemu-user'],
    why: 'runs the cross-built Pi runtimes in test/runtime-cross.test.ts' },
  { tool: 'clang --target=wasm32-wasi', check: { sh: "echo 'int main(void){return 0;}' | clang --target=wasm32-wasi --sysroot=/usr -O2 -x c - -o /dev/null" },
    packages: ['lld', 'wasi-libc', 'libclang-rt-dev-wasm32'],
    why: "`bench --peers` builds llama2.c's run.c to wasm32-wasi: wasm-ld, wasi-libc, compiler-rt" },
  { tool: 'wasm2c', check: { commands: ['wasm2c'], files: ['/usr/include/wasm-rt.h'] }, packages: ['wabt'],
    why: 'the AOT runtime and `firmware --aot`: the app translated to C (wasm-rt.h is its header)' },
  { tool: 'riscv64-unknown-elf-gcc', check: { commands: ['riscv64-unknown-elf-gcc'] }, packages: ['gcc-riscv64-unknown-elf'],
    why: 'the bare-metal ESP32-C3 firmware and the RV32IMC instruction counts' },
  { tool: 'picolibc (riscv)', check: { files: ['/usr/lib/picolibc/riscv64-unknown-elf/picolibc.specs'] }, packages: ['picolibc-riscv64-unknown-elf'],
    why: "the bare-metal ESP32-C3 firmware's C library" },
  { tool: 'xtensa-lx106-elf-gcc', check: { commands: ['xtensa-lx106-elf-gcc'] }, packages: ['gcc-xtensa-lx106'],
    why: 'an Xtensa compiler for the firmware C (the code size and build checks of the ESP32 firmware)' },
  { tool: 'newlib headers', check: { files: ['/usr/include/newlib/stdlib.h'] }, packages: ['libnewlib-dev'],
    why: "the Xtensa build's C library headers" },
  { tool: 'libbsd', check: { files: ['/usr/include/bsd/string.h'] }, packages: ['libbsd-dev'],
    why: "ESP-IDF's linux target (the storage layer checked on the host)" },
  { tool: 'picocom', check: { commands: ['picocom'] }, packages: ['picocom'],
    why: "a person's plain terminal after a flash, as the tests drive it" },
  // Espressif's QEMU (../shared/esp-qemu) runs the ESP32's and ESP32-C3's ROMs: ROM flashing, bare-metal boot
  ...[['libglib-2.0.so.0', 'libglib2.0-0'], ['libgcrypt.so.20', 'libgcrypt20'], ['libfdt.so.1', 'libfdt1'], ['libz.so.1', 'zlib1g']].map(([lib, pkg]) => (
    { tool: lib, check: { libs: [lib] }, packages: [pkg], why: "Espressif's QEMU (../shared/esp-qemu), which runs the chips' ROMs" })),
  { tool: 'python3 -m venv', check: { sh: "python3 -c 'import venv, ensurepip'" }, packages: ['python3-venv'],
    why: "the ESP-IDF checks' venv (esp-idf-kconfig, made by the project's own script)" },
];

// ---------------------------------------------------------------- the machine, as the checks see it

/** The real machine. Each answer is cached; every external command has a timeout. */
export function realMachine() {
  let ldcache;
  const sh = (line) => spawnSync('sh', ['-c', line], { stdio: 'ignore', timeout: 60_000 }).status === 0;
  return {
    arch: arch() === 'x64' ? 'x86_64' : arch(),
    uid: typeof process.getuid === 'function' ? process.getuid() : -1,
    hasApt: () => onPath('apt-get'),
    command: (name) => onPath(name),
    file: (path) => existsSync(path),
    glob: (pattern) => globMatches(pattern),
    lib: (name) => {
      ldcache ??= spawnSync('sh', ['-c', 'ldconfig -p 2>/dev/null || /sbin/ldconfig -p'], { encoding: 'utf8', timeout: 30_000 }).stdout ?? '';
      // `libclang` matches libclang.so, libclang-14.so.1 ...; a full soname matches itself
      return name.includes('.so') ? ldcache.includes(`${name} `) : new RegExp(`\\b${name}[-.0-9]*\\.so`).test(ldcache);
    },
    sh,
    gccMajor: () => {
      const r = spawnSync('gcc', ['-dumpversion'], { encoding: 'utf8', timeout: 10_000 });
      const m = /^(\d+)/.exec(r.stdout ?? '');
      return m ? Number(m[1]) : undefined;
    },
  };
}

function onPath(name) {
  for (const d of (process.env.PATH ?? '').split(delimiter).filter(Boolean)) {
    try {
      accessSync(join(d, name), constants.X_OK);
      return true;
    } catch { /* next */ }
  }
  return false;
}

// `/usr/lib/llvm-*/lib/clang/*/include/stddef.h`: a `*` stands for one path part
function globMatches(pattern) {
  const parts = pattern.split('/').filter(Boolean);
  const walk = (dir, i) => {
    if (i === parts.length) return true;
    if (!parts[i].includes('*')) return existsSync(join(dir, parts[i])) && walk(join(dir, parts[i]), i + 1);
    const re = new RegExp(`^${parts[i].split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
    let names = [];
    try { names = readdirSync(dir); } catch { return false; }
    return names.some((n) => re.test(n) && walk(join(dir, n), i + 1));
  };
  return walk('/', 0);
}

// ---------------------------------------------------------------- the logic

/** Whether a row's check passes on machine `m`. */
export function present(dep, m) {
  const c = dep.check;
  return (c.commands ?? []).every((x) => m.command(x))
    && (c.files ?? []).every((x) => m.file(x))
    && (c.globs ?? []).every((x) => m.glob(x))
    && (c.libs ?? []).every((x) => m.lib(x))
    && (c.sh === undefined || m.sh(c.sh));
}

/** The rows that apply to machine `m` and fail their check. */
export function missingDeps(m, deps = SYSTEM_DEPS) {
  return deps.filter((d) => (!d.x86_64 || m.arch === 'x86_64') && !present(d, m));
}

/** The Debian packages for these rows, in table order, each once. */
export function packagesFor(rows, m) {
  const out = [];
  for (const d of rows) for (const p of typeof d.packages === 'function' ? d.packages(m) : d.packages) if (!out.includes(p)) out.push(p);
  return out;
}

/**
 * What the set-up does on machine `m`: nothing; install (root, apt); or stop with one line naming the
 * exact packages and the command (not root, or not Debian), or what only rustup gives.
 * @returns {import('./system-deps.d.mts').SetupPlan}
 */
export function setupPlan(m, deps = SYSTEM_DEPS) {
  return planFor(m, deps, 'npm test');
}

/** `npm start`'s set-up: the rows the CLI itself needs. */
export const START_DEPS = SYSTEM_DEPS.filter((d) => d.start);

function planFor(m, deps, again) {
  const rows = missingDeps(m, deps);
  const apt = rows.filter((d) => (typeof d.packages === 'function' ? d.packages(m) : d.packages).length > 0);
  const other = rows.filter((d) => !apt.includes(d));
  const packages = packagesFor(apt, m);
  const hints = other.map((d) => `${d.tool}: ${d.hint}`);
  if (rows.length === 0) return { action: 'none', packages: [], missing: [], line: '' };
  const tools = apt.map((d) => d.tool).join(', ');
  const missing = rows.map((d) => d.tool);
  if (packages.length > 0 && m.uid === 0 && m.hasApt()) {
    return {
      action: 'install', packages, missing, hints,
      command: ['apt-get', 'install', '-y', '-qq', '-o', 'DPkg::Lock::Timeout=600', ...packages],
      line: `set-up: installing ${packages.join(' ')} (for ${tools})`,
    };
  }
  if (packages.length > 0 && m.hasApt()) {
    return {
      action: 'stop', packages, missing, hints,
      line: `set-up: missing system packages ${packages.join(' ')} (for ${tools}): run \`sudo apt-get update && sudo apt-get install -y ${packages.join(' ')}\` (or ${again} as root, which installs them), then ${again} again${hints.length ? `; and ${hints.join('; ')}` : ''}`,
    };
  }
  if (packages.length > 0) {
    // not Debian: no package names to give that are sure to be right
    return {
      action: 'warn', packages, missing, hints,
      line: `set-up: not a Debian machine (no apt-get); missing: ${tools} (Debian's ${packages.join(' ')}): the tests that need them warn, and fail when CI is set${hints.length ? `; and ${hints.join('; ')}` : ''}`,
    };
  }
  return { action: 'stop', packages: [], missing, hints, line: `set-up: ${hints.join('; ')}, then ${again} again` };
}

/**
 * `npm test`'s set-up step: check, install where it can, else say what to do. Returns the exit code
 * to stop with (0: go on). `log` gets one line per event; `exec` runs a command (apt-get) and returns
 * its exit status; after an install the machine is asked again (`m.refresh()`, a new real machine).
 */
export function setUp(m = realMachine(), log = (s) => process.stderr.write(`${s}\n`), exec = runCommand, deps = SYSTEM_DEPS) {
  const plan = planFor(m, deps, deps === SYSTEM_DEPS ? 'npm test' : 'npm start');
  if (plan.action === 'none') return 0;
  log(plan.line);
  if (plan.action === 'warn') return 0;
  if (plan.action === 'stop') return 1;
  const upd = exec(['apt-get', 'update', '-qq'], 15 * 60_000);
  const inst = upd === 0 ? exec(plan.command, 30 * 60_000) : undefined;
  if (upd !== 0 || inst !== 0) {
    log(`set-up: apt-get ${upd !== 0 ? 'update' : 'install'} failed (exit ${upd !== 0 ? upd : inst}): install ${plan.packages.join(' ')} by hand`);
    return 1;
  }
  const still = planFor(m.refresh ? m.refresh() : realMachine(), deps, 'npm test');
  if (still.action !== 'none') {
    log(still.action === 'install' ? `set-up: still missing after apt-get install: ${still.missing.join(', ')} (${still.packages.join(' ')})` : still.line);
    return 1;
  }
  log(`set-up: installed ${plan.packages.join(' ')}`);
  return 0;
}

/**
 * `npm start`'s set-up (its prestart script): the CLI's own packages installed where it can (root, apt),
 * then the parts built from them that are missing (the wasm3 addon, the virtual board). Never stops the
 * demo: what cannot be set up is one line, and the demo runs on what there is (V8 without the addon).
 * `build` runs `node tools/build.mjs STEP` and returns its exit status.
 */
export function setUpStart(m = realMachine(), log = (s) => process.stderr.write(`${s}\n`), exec = runCommand, has = existsSync, build = buildStep) {
  setUp(m, log, exec, START_DEPS);
  const missing = [['addon', 'build/wasm3-node.node'], ['runtime', 'boards/runtime/build/edge-flash-runtime']].filter(([, f]) => !has(join(ROOT, f)));
  for (const [step, file] of missing) {
    log(`set-up: ${file} is missing: node tools/build.mjs ${step}`);
    build(step);
  }
  return 0;
}

const ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..');

function buildStep(step) {
  return spawnSync(process.execPath, [join(ROOT, 'tools', 'build.mjs'), step], { stdio: ['ignore', 'inherit', 'inherit'], timeout: 20 * 60_000 }).status ?? -1;
}

function runCommand(argv, timeout) {
  const r = spawnSync(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, timeout });
  return r.status ?? -1;
}

// `node tools/system-deps.mjs [check|install|table]`
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const what = process.argv[2] ?? 'check';
  const m = realMachine();
  if (what === 'table') {
    console.log('| tool | check | Debian packages | why |\n| --- | --- | --- | --- |');
    for (const d of SYSTEM_DEPS) {
      const c = d.check;
      const check = [...(c.commands ?? []).map((x) => `\`${x}\` on PATH`), ...(c.files ?? []).map((x) => `\`${x}\``), ...(c.globs ?? []).map((x) => `\`${x}\``),
        ...(c.libs ?? []).map((x) => `\`${x}\` (ldconfig)`), ...(c.sh ? [`\`${c.sh.replace(/\|/g, '\\|')}\``] : [])].join(', ');
      const pk = typeof d.packages === 'function' ? d.packages({ ...m, gccMajor: () => 'N' }) : d.packages;
      console.log(`| ${d.tool}${d.x86_64 ? ' (x86-64)' : ''} | ${check} | ${pk.join(' ') || d.hint} | ${d.why} |`);
    }
  } else if (what === 'check') {
    // what a user would be told: installs nothing, so never the root wording
    const plan = setupPlan({ ...m, uid: m.uid === 0 ? 1000 : m.uid });
    console.log(plan.action === 'none' ? 'set-up: every system package is installed' : plan.line);
    process.exitCode = plan.action === 'none' ? 0 : 1;
  } else if (what === 'start') {
    process.exitCode = setUpStart(m);
  } else if (what === 'install') {
    process.exitCode = setUp(m);
    if (process.exitCode === 0) process.stderr.write('set-up: every system package is installed\n');
  } else {
    process.stderr.write(`system-deps: unknown command '${what}' (check, install, start or table)\n`);
    process.exitCode = 2;
  }
}

