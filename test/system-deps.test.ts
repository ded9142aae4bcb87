// The fresh-machine set-up (tools/system-deps.mjs, run first by `npm test` and by
// tools/install-system-deps.sh): which Debian packages for which missing tool, and what happens as root
// with apt-get (install, then ask again), as a user (one line naming the packages and the command), on
// a machine without apt-get, and where only rustup helps. On a fake machine: nothing is removed here.
import { spawnSync } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { START_DEPS, SYSTEM_DEPS, packagesFor, missingDeps, realMachine, setUp, setUpStart, setupPlan, type Machine } from '../tools/system-deps.mjs';
import { fromRoot } from '../host/paths.ts';

// A machine on which everything the table checks is present except `gone` (command names, file
// paths, glob patterns, sonames or shell lines); `after` is what it has once apt-get has run.
function fake(gone: string[], o: { arch?: string; uid?: number; apt?: boolean; gcc?: number; after?: string[] } = {}): Machine {
  const has = (x: string) => !gone.includes(x);
  return {
    arch: o.arch ?? 'x86_64',
    uid: o.uid ?? 1000,
    hasApt: () => o.apt ?? true,
    command: has, file: has, glob: has, lib: has, sh: has,
    gccMajor: () => o.gcc ?? 12,
    refresh: () => fake(o.after ?? [], { ...o, after: undefined }),
  };
}
const checkOf = (tool: string) => SYSTEM_DEPS.find((d) => d.tool === tool)!.check;
const pk = (gone: string[], o = {}) => packagesFor(missingDeps(fake(gone, o)), fake(gone, o));

test('a machine with everything: nothing to do, nothing run', () => {
  assert.is(setupPlan(fake([])).action, 'none');
  const ran: string[][] = [];
  assert.is(setUp(fake([], { uid: 0 }), () => assert.unreachable('no line'), (a) => (ran.push(a), 0)), 0);
  assert.equal(ran, []);
});

test('each missing tool gives its own Debian packages, in table order, each once', () => {
  assert.equal(pk(['wasm2c']), ['wabt']);
  assert.equal(pk(['/usr/include/wasm-rt.h']), ['wabt']);
  assert.equal(pk(['wasm2c', '/usr/include/wasm-rt.h']), ['wabt']);
  assert.equal(pk(['libclang']), ['libclang-dev']);
  assert.equal(pk(['/usr/lib/llvm-*/lib/clang/*/include/stddef.h']), ['libclang-dev']);
  assert.equal(pk(['qemu-arm']), ['qemu-user']);
  assert.equal(pk(['cc', 'make', 'aarch64-linux-gnu-gcc']), ['build-essential', 'make', 'gcc-aarch64-linux-gnu']);
  assert.equal(pk([checkOf('clang --target=wasm32-wasi').sh!]), ['lld', 'wasi-libc', 'libclang-rt-dev-wasm32']);
  // the packages other parts of the project need: the ESP32-C3 bare-metal build, the Xtensa build,
  // ESP-IDF's generator and linux target, a person's terminal, Espressif's QEMU, the ESP-IDF venv
  assert.equal(pk(['riscv64-unknown-elf-gcc', '/usr/lib/picolibc/riscv64-unknown-elf/picolibc.specs']), ['gcc-riscv64-unknown-elf', 'picolibc-riscv64-unknown-elf']);
  assert.equal(pk(['xtensa-lx106-elf-gcc', '/usr/include/newlib/stdlib.h']), ['gcc-xtensa-lx106', 'libnewlib-dev']);
  assert.equal(pk(['ninja', '/usr/include/bsd/string.h', 'picocom']), ['ninja-build', 'libbsd-dev', 'picocom']);
  assert.equal(pk(['libfdt.so.1']), ['libfdt1']);
  assert.equal(pk(['libglib-2.0.so.0', 'libgcrypt.so.20', 'libz.so.1']), ['libglib2.0-0', 'libgcrypt20', 'zlib1g']);
  assert.equal(pk([checkOf('python3 -m venv').sh!]), ['python3-venv']);
});

test('32-bit builds: the multilib package of the installed gcc, asked on x86-64 only', () => {
  const m32 = checkOf('cc -m32').sh!;
  assert.equal(pk([m32], { gcc: 12 }), ['gcc-12-multilib']);
  assert.equal(pk([m32], { gcc: 14 }), ['gcc-14-multilib']);
  assert.equal(pk([m32], { arch: 'aarch64' }), []);
});

test('as root with apt-get: update, install exactly the missing packages, ask again', () => {
  const ran: string[][] = [];
  const lines: string[] = [];
  const m = fake(['wasm2c', 'qemu-aarch64', 'libclang'], { uid: 0 });
  const plan = setupPlan(m);
  assert.is(plan.action, 'install');
  assert.equal(plan.packages, ['libclang-dev', 'qemu-user', 'wabt']);
  assert.is(setUp(m, (s) => lines.push(s), (a) => (ran.push(a), 0)), 0);
  assert.equal(ran[0], ['apt-get', 'update', '-qq']);
  assert.equal(ran[1].slice(0, 2), ['apt-get', 'install']);
  assert.equal(ran[1].slice(-3), ['libclang-dev', 'qemu-user', 'wabt']);
  assert.is(ran.length, 2);
  assert.match(lines[0], /^set-up: installing libclang-dev qemu-user wabt \(for libclang, qemu-aarch64, qemu-arm, wasm2c\)$/);
  assert.match(lines.at(-1)!, /installed libclang-dev qemu-user wabt/);
});

test('as root: a failed apt-get, or a tool still missing after it, stops with one line', () => {
  const lines: string[] = [];
  assert.is(setUp(fake(['wasm2c'], { uid: 0 }), (s) => lines.push(s), (a) => (a[1] === 'install' ? 100 : 0)), 1);
  assert.match(lines.at(-1)!, /^set-up: apt-get install failed \(exit 100\): install wabt by hand$/);
  const l2: string[] = [];
  assert.is(setUp(fake(['wasm2c'], { uid: 0, after: ['wasm2c'] }), (s) => l2.push(s), () => 0), 1);
  assert.is(l2.at(-1), 'set-up: still missing after apt-get install: wasm2c (wabt)');
});

test('not root: one line naming the exact packages and the command, and nothing run', () => {
  const lines: string[] = [];
  const m = fake(['wasm2c', 'qemu-arm'], { uid: 1000 });
  assert.is(setUp(m, (s) => lines.push(s), (): number => { throw new Error('ran a command'); }), 1);
  assert.is(lines.length, 1);
  assert.is(lines[0], 'set-up: missing system packages qemu-user wabt (for qemu-aarch64, qemu-arm, wasm2c): run `sudo apt-get update && sudo apt-get install -y qemu-user wabt` (or npm test as root, which installs them), then npm test again');
});

test('no apt-get (not Debian): one line with what is missing, and the tests go on', () => {
  const lines: string[] = [];
  assert.is(setUp(fake(['wasm2c'], { uid: 0, apt: false }), (s) => lines.push(s), (): number => { throw new Error('ran a command'); }), 0);
  assert.match(lines[0], /not a Debian machine \(no apt-get\); missing: wasm2c \(Debian's wabt\)/);
});

test('Rust is rustup\'s to give: its hint, even as root, with the packages that apt-get can give', () => {
  const cargo = checkOf('cargo >= 1.85').sh!;
  const alone = setupPlan(fake([cargo], { uid: 0 }));
  assert.is(alone.action, 'stop');
  assert.match(alone.line, /^set-up: cargo >= 1.85: install Rust >= 1.85 with rustup .*then npm test again$/);
  const both = setupPlan(fake([cargo, 'wasm2c'], { uid: 1000 }));
  assert.match(both.line, /sudo apt-get install -y wabt`.*; and cargo >= 1.85: install Rust/);
});

test('npm start sets up only what the CLI needs, never stops, and builds the missing addon and board', () => {
  assert.equal(START_DEPS.map((d) => d.tool), ['cc', 'make', 'clang', 'libclang', 'cargo >= 1.85']);
  const ran: string[][] = [];
  const built: string[] = [];
  const lines: string[] = [];
  // root: libclang and wasm2c missing, the addon not built: only libclang-dev is installed (wasm2c is the tests'), then the addon built
  const m = fake(['libclang', 'wasm2c'], { uid: 0, after: ['wasm2c'] });
  const code = setUpStart(m, (s) => lines.push(s), (a) => (ran.push(a), 0), (p) => !p.endsWith('wasm3-node.node'), (step) => (built.push(step), 0));
  assert.is(code, 0);
  assert.equal(ran[1].slice(-1), ['libclang-dev']);
  assert.equal(built, ['addon']);
  assert.match(lines.join('\n'), /set-up: installing libclang-dev \(for libclang\)[^]*build\/wasm3-node.node is missing: node tools\/build.mjs addon/);
  // not root: one line naming the package and `npm start`, nothing installed, and the demo still goes on
  const l2: string[] = [];
  assert.is(setUpStart(fake(['libclang'], { uid: 1000 }), (s) => l2.push(s), (): number => { throw new Error('ran a command'); }, () => true, () => 0), 0);
  assert.equal(l2, ['set-up: missing system packages libclang-dev (for libclang): run `sudo apt-get update && sudo apt-get install -y libclang-dev` (or npm start as root, which installs them), then npm start again']);
  // everything there: silent, nothing built
  const l3: string[] = [];
  assert.is(setUpStart(fake([]), (s) => l3.push(s), (): number => { throw new Error('ran a command'); }, () => true, (): number => { throw new Error('built'); }), 0);
  assert.equal(l3, []);
});

test('this machine: every check answers, and every package is one Debian knows', () => {
  const m = realMachine();
  const plan = setupPlan(m);
  // after `npm test`'s own set-up (CI runs as root) nothing may be missing
  if (process.env.CI) assert.is(plan.action, 'none', plan.line);
  else if (plan.action !== 'none') process.stderr.write(`warning: ${plan.line}\n`);
  if (!m.hasApt()) return;
  const all = packagesFor(SYSTEM_DEPS.filter((d) => !d.x86_64 || m.arch === 'x86_64'), m);
  const r = spawnSync('apt-cache', ['policy', ...all], { encoding: 'utf8', timeout: 60_000 });
  const known = new Set([...r.stdout.matchAll(/^(\S+):\n\s+Installed: .*\n\s+Candidate: (?!\(none\))/gm)].map((x) => x[1]));
  assert.equal(all.filter((p) => !known.has(p)), [], r.stdout);
});

test('tools/install-system-deps.sh and `node tools/system-deps.mjs` read the same table', () => {
  const check = spawnSync(process.execPath, [fromRoot('tools', 'system-deps.mjs'), 'check'], { encoding: 'utf8', timeout: 120_000 });
  const real = realMachine();
  const plan = setupPlan({ ...real, uid: real.uid === 0 ? 1000 : real.uid });
  assert.is(check.status, plan.action === 'none' ? 0 : 1, check.stderr);
  assert.is(check.stdout.trim(), plan.action === 'none' ? 'set-up: every system package is installed' : plan.line);
  const table = spawnSync(process.execPath, [fromRoot('tools', 'system-deps.mjs'), 'table'], { encoding: 'utf8', timeout: 120_000 });
  assert.is(table.stdout.trim().split('\n').length, 2 + SYSTEM_DEPS.length);
  assert.match(table.stdout, /\| wasm2c \| `wasm2c` on PATH, `\/usr\/include\/wasm-rt.h` \| wabt \|/);
  const bad = spawnSync(process.execPath, [fromRoot('tools', 'system-deps.mjs'), 'frobnicate'], { encoding: 'utf8', timeout: 60_000 });
  assert.is(bad.status, 2);
  assert.is(bad.stderr, "system-deps: unknown command 'frobnicate' (check, install, start or table)\n");
  if (plan.action === 'none') {
    const sh = spawnSync('bash', [fromRoot('tools', 'install-system-deps.sh')], { encoding: 'utf8', timeout: 120_000 });
    assert.is(sh.status, 0, sh.stderr);
    assert.is(sh.stderr, 'set-up: every system package is installed\n');
  }
});

test.run();
