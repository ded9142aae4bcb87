// The device runtime cross-built for the Raspberry Pi (make -C boards/runtime cross-aarch64 cross-armhf,
// Debian's cross compilers, linked static) and run under qemu-user: the same protocol and image vector
// checks as the native build (test/runtime-vectors.ts), a few hundred of the mutated images (32-bit armhf
// is where a size computation could wrap), and a session over a pty with the host's serial stack and
// `edge-flash flash`: HELLO, INFO, upload, VERIFY, COMMIT, RESET, and the packed demo image booted (its
// app loaded by wasm3 on the emulated CPU, the self-test passed). The native build runs the session too,
// as the reference. The AOT runtimes (`runtime build --aot --cross ARCH`: the app translated by wasm2c
// and cross-compiled) run the same session, whose short chat gives `run --engine wasm3`'s tokens.
// Without a cross compiler, qemu-user or wasm2c this fails in CI and warns elsewhere.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { boardByName, boards } from '../host/board/boards.ts';
import { fromRoot } from '../host/paths.ts';
import { cli } from './helpers.ts';
import { CROSS, crossBuild, nativeBuild } from './runtime-helpers.ts';
import { cobsVectors, decodeVectors, frameVectors, imageVectors, mutationAgreement, ptySession, type RuntimeBuild } from './runtime-vectors.ts';

const dir = mkdtempSync(join(tmpdir(), 'edge-flash-rt-cross-'));
const image = join(dir, 'kjv.efimg');

test('the demo image for the sessions packs', () => {
  const p = cli('pack', fromRoot('models', 'kjv-esp32-260k', 'model.bin'), '--board', 'host', '--quant', 'tb1', '--kv', 'int4', '-o', image);
  assert.is(p.code, 0, p.err);
});

// `edge-flash runtime build` with PATH holding only the named tools: what is missing is named, with
// the package that has it, before make runs
function buildWith(tools: string[], ...args: string[]) {
  const bin = join(dir, `path-${tools.join('-')}`);
  if (!existsSync(bin)) mkdirSync(bin);
  for (const t of tools.filter((x) => !existsSync(join(bin, x)))) {
    const at = spawnSync('sh', ['-c', `command -v ${t}`], { encoding: 'utf8' }).stdout.trim();
    symlinkSync(at, join(bin, t));
  }
  const r = spawnSync(process.execPath, [fromRoot('bin', 'edge-flash.js'), 'runtime', 'build', ...args], { encoding: 'utf8', env: { ...process.env, PATH: bin } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('runtime build: a bad --cross, no make, no cross compiler, --aot without wasm2c: one line each, exit 2, nothing built', () => {
  const cases: Array<[string[], string[], RegExp]> = [
    [['sh', 'make'], ['--cross', 'sparc'], /^edge-flash: error: --cross must be aarch64 or armhf, got 'sparc'\n$/],
    [['sh'], [], /^edge-flash: error: make not found \(on Debian or Raspberry Pi OS: sudo apt install build-essential\)\n$/],
    [['sh', 'make'], ['--cross', 'aarch64'], /^edge-flash: error: aarch64-linux-gnu-gcc not found \(on Debian: sudo apt install gcc-aarch64-linux-gnu\)\n$/],
    [['sh', 'make'], ['--cross', 'armhf'], /^edge-flash: error: arm-linux-gnueabihf-gcc not found \(on Debian: sudo apt install gcc-arm-linux-gnueabihf\)\n$/],
    [['sh', 'make'], ['--jobs', 'x'], /^edge-flash: error: --jobs must be an integer in 1\.\.256, got 'x'\n$/],
    [['sh', 'make', 'cc'], ['--aot'], /^edge-flash: error: --aot needs wasm2c, which is not on PATH: it is in the wabt package \(on Debian or Raspberry Pi OS: sudo apt install wabt\)\n$/],
  ];
  for (const [tools, args, want] of cases) {
    const r = buildWith(tools, ...args);
    assert.is(r.code, 2, `${args}: ${r.err}`);
    assert.match(r.err, want);
    assert.is(r.out, '');
  }
});

test('runtime build: this machine\'s runtime, the path on stdout', () => {
  const r = cli('runtime', 'build');
  assert.is(r.code, 0, r.err);
  assert.is(r.out, `${fromRoot('boards', 'runtime', 'build', 'edge-flash-runtime')}\n`);
});

// boards/rpi/: the systemd unit and one environment file a board, read as systemd reads them
const RPI = fromRoot('boards', 'rpi');
const rpiBoards = boards().filter((b) => b.name.startsWith('rpi'));
function envFile(name: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(join(RPI, `${name}.env`), 'utf8').split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line);
    if (m) env[m[1]] = m[2];
  }
  return env;
}
// ExecStart= as systemd expands it: $VAR splits into words at whitespace, ${VAR} stays one word
function execStart(env: Record<string, string>): string[] {
  const line = /^ExecStart=(.*)$/m.exec(readFileSync(join(RPI, 'edge-flash-runtime.service'), 'utf8'))![1];
  return line.split(/\s+/).flatMap((w) => {
    const braced = /^\$\{([A-Z_]+)\}$/.exec(w), bare = /^\$([A-Z_]+)$/.exec(w);
    if (braced) return [env[braced[1]]];
    if (bare) return env[bare[1]].split(/\s+/);
    return [w];
  });
}

test('boards/rpi: an environment file for every Raspberry Pi profile, with the profile\'s board id and name', () => {
  assert.equal(rpiBoards.map((b) => b.name), ['rpi-zero2w', 'rpi4', 'rpi5']);
  for (const b of rpiBoards) {
    const env = envFile(b.name);
    assert.equal(Object.keys(env).sort(), ['EDGE_FLASH_BAUD', 'EDGE_FLASH_BOARD', 'EDGE_FLASH_PORT']);
    const opts = env.EDGE_FLASH_BOARD.split(/\s+/);
    const opt = (k: string) => opts[opts.indexOf(k) + 1];
    assert.equal([opt('--board-name'), Number(opt('--board-id'))], [b.name, boardByName(b.name).id], b.name);
    assert.ok(Number(opt('--capacity')) <= b.imageCapacity, `${b.name}: the slot is within the profile's image capacity`);
    assert.is(Number(env.EDGE_FLASH_BAUD), b.serial.baud, `${b.name}: the profile's baud`);
    assert.match(env.EDGE_FLASH_PORT, b.serial.transport === 'usb-cdc' ? /^\/dev\/ttyGS0$/ : /^\/dev\/ttyAMA\d+$/);
  }
});

test('boards/rpi: the unit\'s ExecStart, expanded with each board\'s file, is a command line the runtime takes', () => {
  for (const b of rpiBoards) {
    const env = envFile(b.name);
    const argv = execStart({ ...env, EDGE_FLASH_PORT: '/dev/null' });
    assert.is(argv[0], '/usr/local/bin/edge-flash-runtime');
    const slots = join(dir, `${b.name}-slots.bin`);
    assert.is(argv[argv.indexOf('--slot-file') + 1], '/var/lib/edge-flash/slots.bin');
    argv[argv.indexOf('--slot-file') + 1] = slots;
    // serving /dev/null: the runtime opens the port, reads its end and exits 0, its slots in place
    const r = spawnSync(fromRoot('boards', 'runtime', 'build', 'edge-flash-runtime'), argv.slice(1), { encoding: 'utf8', timeout: 20_000 });
    assert.is(r.status, 0, `${b.name}: ${r.stderr}`);
    const capacity = Number(env.EDGE_FLASH_BOARD.split(/\s+/)[env.EDGE_FLASH_BOARD.split(/\s+/).indexOf('--capacity') + 1]);
    assert.is(statSync(slots).size, 2 * 4096 + 2 * capacity);
  }
});

test('native: a pty session with the host CLI: HELLO, INFO, flash (upload, VERIFY, COMMIT, RESET), the image boots, chat gives the tokens of run', () => ptySession(nativeBuild(), image));

for (const arch of Object.keys(CROSS) as Array<keyof typeof CROSS>) {
  let build: RuntimeBuild | string = 'not built';
  test(`${arch}: \`edge-flash runtime build --cross ${arch}\` builds it with -Wall -Wextra -Werror, static`, () => {
    build = crossBuild(arch);
    if (typeof build === 'string') {
      if (process.env.CI) assert.unreachable(`${arch}: ${build}`);
      process.stderr.write(`warning: the ${arch} runtime is not tested: ${build}\n`);
    }
  });
  const run = (what: string, check: (b: RuntimeBuild) => void | Promise<void>) =>
    test(`${arch} under qemu-user: ${what}`, async () => { if (typeof build !== 'string') await check(build); });
  run('COBS, frame and decode vectors', (b) => { cobsVectors(b); frameVectors(b); decodeVectors(b); });
  run('every image vector', imageVectors);
  run('C and TypeScript readers agree on 300 mutated images', (b) => {
    const { codes, lenient } = mutationAgreement(b, 300, 1616);
    assert.ok(lenient <= 2, `${lenient} name divergences`);
    assert.ok(codes.size >= 6, JSON.stringify(Object.fromEntries(codes)));
  });
  run('a pty session with the host CLI: HELLO, INFO, flash (upload, VERIFY, COMMIT, RESET), the image boots, chat gives the tokens of run', (b) => ptySession(b, image));

  // the AOT runtime: built, then one session (its short chat is the check; the vectors are the wasm3 build's programs)
  let aot: RuntimeBuild | string = 'not built';
  test(`${arch}: \`edge-flash runtime build --aot --cross ${arch}\` builds edge-flash-runtime-aot, static`, () => {
    aot = crossBuild(arch, true);
    if (typeof aot === 'string') {
      if (process.env.CI) assert.unreachable(`${arch} --aot: ${aot}`);
      process.stderr.write(`warning: the ${arch} AOT runtime is not tested: ${aot}\n`);
    } else assert.is(aot.runtime, 'edge-flash-runtime-aot');
  });
  test(`${arch} --aot under qemu-user: a pty session, the image boots (the AOT app's self-test), chat gives the tokens of run --engine wasm3`, async () => {
    if (typeof aot !== 'string') await ptySession(aot, image);
  });
}

test.run();
