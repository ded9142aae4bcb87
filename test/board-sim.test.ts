// Uploads end to end over the virtual board: `edge-flash sim` (the C runtime on a pty, its line at a
// baud rate with injected faults: boards/runtime/posix/line.c) and `edge-flash flash` of a real packed
// image (the kjv demo for esp32). Drops and flips are absorbed by the protocol's CRC and go-back-N, a
// link drop at 1, 50 and 99 % is resumed by running flash again, a different image starts over, the
// board's VERIFY SHA-256 is the file's, and COMMIT before VERIFY is refused. Small images: seconds each.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { boardByName } from '../host/board/boards.ts';
import { BoardError } from '../host/board/client.ts';
import { info, upload } from '../host/board/commands.ts';
import { boardBaud, connectBoard } from '../host/board/connect.ts';
import { imageBoard } from '../host/cli/flash.ts';
import { ERR } from '../host/board/frames.ts';
import { aotRuntime, startVirtualBoard, type VirtualBoard } from '../host/board/sim.ts';
import { parseFaults } from '../host/cli/flags.ts';
import { UserError } from '../host/errors.ts';
import { fromRoot } from '../host/paths.ts';
import { cli } from './helpers.ts';
import { makeRuntime, runBin } from './runtime-helpers.ts';

makeRuntime();
const dir = mkdtempSync(join(tmpdir(), 'edge-flash-sim-'));
const MODEL = fromRoot('models', 'kjv-esp32-260k', 'model.bin');
const esp32 = boardByName('esp32');
let n = 0;
const fresh = () => join(dir, `board${++n}.bin`);

function pack(ctx: number): string {
  const out = join(dir, `kjv-ctx${ctx}.efimg`);
  if (!existsSync(out)) {
    const p = cli('pack', MODEL, '--board', 'esp32', '--quant', 'tb1', '--kv', 'int4', '--ctx', String(ctx), '-o', out);
    assert.is(p.code, 0, p.err);
  }
  return out;
}
const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

// `edge-flash ...` without blocking this process (the virtual board's events keep arriving meanwhile).
function cliAsync(...args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [fromRoot('bin', 'edge-flash.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code) => resolve({ code, out, err }));
  });
}

async function withSim<T>(faults: string | null, fn: (vb: VirtualBoard) => Promise<T>, baud: number | null = null): Promise<T> {
  const slotFile = fresh();
  const vb = await startVirtualBoard({ board: esp32, slotFile, link: `${slotFile}.tty`, baud, faults: faults ? parseFaults(faults) : undefined });
  try {
    return await fn(vb);
  } finally {
    await vb.stop();
  }
}

test('flash through drops and flips both ways completes; the board verified the file\'s SHA-256', async () => {
  const image = pack(64);
  await withSim('drop=2e-5,flip=2e-5,seed=11', async (vb) => {
    const r = await cliAsync('flash', image, '--port', vb.path);
    assert.is(r.code, 0, r.err);
    // the summary names the SHA-256 the board computed from what it read back; flash compared all of it
    const m = /verified SHA-256 ([0-9a-f]{16}), booted/.exec(r.out);
    assert.ok(m, r.out);
    assert.is(m![1], sha(image).slice(0, 16));
    const c = await connectBoard(vb.path, 115200);
    try {
      const i = await info(c);
      assert.is(i.bootedSha256, sha(image));
      assert.is(i.slots.A, 'confirmed');
    } finally {
      await c.close();
    }
    const s = await vb.stop();
    // the faults happened: bytes were dropped and flipped on the way in (and the counts add up)
    assert.ok(s, 'stopped event');
    assert.ok((s!.rx_dropped as number) + (s!.rx_flipped as number) > 0, JSON.stringify(s));
    assert.ok((s!.rx_bytes as number) > readFileSync(image).byteLength, JSON.stringify(s));
  });
});

for (const pct of [1, 50, 99]) {
  test(`a link drop at ${pct} %: flash fails with the resume hint, flash again resumes past 0 and verifies`, async () => {
    const image = pack(64);
    const size = readFileSync(image).byteLength;
    await withSim(`disconnect-at=${pct}%,seed=3`, async (vb) => {
      const first = await cliAsync('flash', image, '--port', vb.path);
      assert.is(first.code, 2, first.out + first.err);
      // during the upload it names the bytes that arrived; at 99 % the last chunk may complete it and the
      // link drop falls on VERIFY instead: both say to run it again
      assert.match(first.err, pct < 99 ? /the board went away at \d+ of \d+ bytes .*run flash again: it resumes where it stopped/ : /the board went away .*run (flash|the command) again/);
      assert.is(first.err.trim().split('\n').filter((l) => l.startsWith('edge-flash:')).length, 1, first.err);
      const d = await vb.waitEvent('disconnect');
      await vb.waitEvent('pty', 5000, 2); // the link points at the new pty
      assert.ok((d.at as number) * 100 >= pct * size, JSON.stringify(d));
      const again = await cliAsync('flash', image, '--port', vb.path);
      assert.is(again.code, 0, again.err);
      const m = /\(resumed at (\d+)\)/.exec(again.out);
      assert.ok(m, again.out);
      const at = Number(m![1]);
      assert.ok(at > 0 && at >= Math.floor((pct * size) / 100) && at <= size, `resumed at ${at} of ${size}`);
      assert.is(at, d.at, 'resumed where the board said the link dropped');
      assert.match(again.out, new RegExp(`verified SHA-256 ${sha(image).slice(0, 16)}, booted`));
    });
  });
}

test('after a link drop, a different image starts over at 0 (and the link drops again for it: once per image)', async () => {
  const a = pack(64), b = pack(48);
  const sizeB = readFileSync(b).byteLength;
  assert.is.not(sha(a), sha(b));
  await withSim('disconnect-at=50%', async (vb) => {
    const first = await cliAsync('flash', a, '--port', vb.path);
    assert.is(first.code, 2, first.err);
    await vb.waitEvent('pty', 5000, 2); // after the disconnect, the link points at the new pty
    const c = await connectBoard(vb.path, 115200);
    try {
      const before = await info(c);
      assert.is(before.upload?.sha256, sha(a));
      assert.ok(before.upload!.next > 0);
      const begin = await c.request('UPLOAD_BEGIN', { image_size: sizeB, sha256: createHash('sha256').update(readFileSync(b)).digest() }, 3000, 'begin the upload');
      assert.is(begin.next_offset, 0);
      const after = await info(c);
      assert.equal(after.upload, { sha256: sha(b), size: sizeB, next: 0 });
    } finally {
      await c.close();
    }
    const cut = await cliAsync('flash', b, '--port', vb.path);
    assert.is(cut.code, 2, cut.err);
    await vb.waitEvent('pty', 5000, 3);
    const drops = vb.events.filter((e) => e.event === 'disconnect');
    assert.is(drops.length, 2);
    assert.is(drops[1].size, sizeB);
    const done = await cliAsync('flash', b, '--port', vb.path);
    assert.is(done.code, 0, done.err);
    assert.match(done.out, new RegExp(`\\(resumed at ${drops[1].at}\\).*verified SHA-256 ${sha(b).slice(0, 16)}, booted`));
  });
});

test('VERIFY cannot be skipped: COMMIT before it is refused (NOT_VERIFIED), after it the slot is pending', async () => {
  const image = pack(64);
  await withSim(null, async (vb) => {
    const c = await connectBoard(vb.path, 115200);
    try {
      await upload(c, readFileSync(image));
      const e = await c.request('COMMIT', {}, 2000, 'commit the image').then(() => null, (x) => x);
      assert.instance(e, BoardError);
      assert.is((e as BoardError).code, ERR.NOT_VERIFIED);
      assert.match((e as Error).message, /^failed to commit the image: .*VERIFY has not passed/);
      assert.is((await info(c)).slots.A, 'written');
      await c.request('VERIFY', {}, 5000, 'verify the image');
      assert.is((await info(c)).slots.A, 'verified');
      const r = await c.request('COMMIT', {}, 2000, 'commit the image');
      assert.is(r.slot, 0);
      // a repeated COMMIT (its reply lost on a noisy line) answers the same slot (docs/protocol.md section 3)
      assert.is((await c.request('COMMIT', {}, 2000, 'commit the image')).slot, 0);
      assert.is((await info(c)).slots.A, 'pending');
    } finally {
      await c.close();
    }
  });
});

test('--baud paces the line: an upload at 921600 baud takes at least its bytes at 10 bits each', async () => {
  const image = readFileSync(pack(64));
  await withSim(null, async (vb) => {
    const c = await connectBoard(vb.path, 921600);
    try {
      const up = await upload(c, image);
      const lineMs = (image.byteLength * 10 * 1000) / 921600;
      assert.ok(up.ms >= 0.97 * lineMs, `${up.ms.toFixed(0)} ms for ${image.byteLength} bytes; the line needs ${lineMs.toFixed(0)} ms`);
    } finally {
      await c.close();
    }
  }, 921600);
});

test('bench --upload --json: a real row per baud rate, its figures consistent with the line', async () => {
  const image = pack(64);
  const r = await cliAsync('bench', '--upload', image, '--baud', '921600', '--repeat', '2', '--json');
  assert.is(r.code, 0, r.err);
  const rows = JSON.parse(r.out);
  assert.is(rows.length, 1);
  const x = rows[0];
  assert.is(x.bench, 'upload');
  assert.is(x.baud, 921600);
  assert.is(x.image_bytes, readFileSync(image).byteLength);
  assert.is(x.repeats, 2);
  assert.is(x.compressed, false);
  assert.is(x.line_bytes_per_s, 92160);
  assert.ok(x.min_s > 0 && x.min_s <= x.median_s, JSON.stringify(x));
  assert.ok(Math.abs(x.best_bytes_per_s - x.image_bytes / x.min_s) < 1e-6 * x.best_bytes_per_s);
  assert.ok(Math.abs(x.best_line_fraction - x.best_bytes_per_s / 92160) < 1e-9);
  // the line is paced: no upload beats it (the fraction is what the benchmark reports, not a target here)
  assert.ok(x.best_line_fraction > 0 && x.best_line_fraction <= 1.001, JSON.stringify(x));
  assert.ok(x.wire_bytes > x.image_bytes, 'frames and COBS add bytes');
  for (const [args, re] of [
    [['bench', '--baud', '115200'], /--baud goes with --upload/],
    [['bench', '--upload', image, '--baud', '12'], /--baud must be an integer in 300\.\.12000000, got '12'/],
  ] as [string[], RegExp][]) {
    const e = cli(...args);
    assert.is(e.code, 2, args.join(' '));
    assert.match(e.err, re);
  }
});

test('the sim verb: prints its pty link on stdout, serves flash, and Ctrl-C stops it with the line\'s counts and the link removed', async () => {
  const image = pack(64);
  const slotFile = fresh();
  const p = spawn(process.execPath, [fromRoot('bin', 'edge-flash.js'), 'sim', '--slot-file', slotFile, '--faults', 'drop=1e-5,flip=1e-5,seed=5'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  p.stdout.on('data', (d) => (out += d));
  p.stderr.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((r) => p.on('close', (c) => r(c)));
  try {
    const until = Date.now() + 10_000;
    while (!out.includes('\n') && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    const path = out.trim();
    assert.is(path, slotFile.replace(/\.bin$/, '.tty'));
    assert.ok(existsSync(path), err);
    const r = await cliAsync('flash', image, '--port', path);
    assert.is(r.code, 0, r.err);
    assert.match(r.out, new RegExp(`verified SHA-256 ${sha(image).slice(0, 16)}, booted`));
  } finally {
    p.kill('SIGINT');
  }
  assert.is(await exited, 0, err);
  assert.match(err, /sim: esp32 on .*\.tty \(\/dev\/pts\/\d+\), unthrottled, faults drop=0\.00001 flip=0\.00001 seed=5/);
  assert.match(err, /sim: line: \d+ bytes in \(\d+ dropped, \d+ flipped\), \d+ out/);
  assert.not.ok(existsSync(slotFile.replace(/\.bin$/, '.tty')), 'the link is removed');
});

test('the line rate: --baud defaults to the profile rate of the board the image or --board names, else 115200; a silent port\'s line names the rates to try', async () => {
  assert.equal(boardBaud(undefined, esp32), { baud: 921600, from: 'the esp32 profile\'s rate' });
  assert.is(boardBaud('57600', esp32).baud, 57600);
  assert.is(boardBaud(undefined, boardByName('rpi4')).baud, 115200);
  assert.equal(boardBaud(undefined, boardByName('host')), { baud: 115200, from: 'the default' });   // a virtual board's line is unpaced
  assert.equal(boardBaud(undefined), { baud: 115200, from: 'the default' });
  assert.throws(() => boardBaud('fast', esp32), /--baud/);
  const image = pack(128);
  assert.is(imageBoard(readFileSync(image))?.name, 'esp32');
  assert.is(imageBoard(new Uint8Array(64)), undefined);
  // every byte to the virtual board dropped: a silent port
  await withSim('drop=1', async (vb) => {
    const f = await cliAsync('flash', image, '--port', vb.path);
    assert.is(f.code, 2, f.err);
    // one line: the rate it took (the esp32 profile's) is in the error, the line naming its source only once the board answers
    assert.is(f.err.trim().split('\n').length, 1, f.err);
    assert.match(f.err, /no answer from .* \(4 HELLOs at 921600 baud\)/);
    assert.match(f.err, /try --baud 115200 \(rpi5: its profile's rate\)/);
    const c = await cliAsync('chat', '--port', vb.path, '-i', 'hello');
    assert.is(c.code, 2, c.err);
    assert.match(c.err, /no answer from .* at 115200 baud/);
    assert.match(c.err, /try --baud 921600 \(esp32: its profile's rate\)/);
    const b = await cliAsync('chat', '--port', vb.path, '--board', 'esp32', '-i', 'hello');
    assert.match(b.err, /no answer from .* at 921600 baud/);
    assert.match(b.err, /try --baud 115200 \(rpi5: its profile's rate\)/);
    const given = await cliAsync('chat', '--port', vb.path, '--board', 'esp32', '--baud', '230400', '-i', 'hello');
    assert.match(given.err, /no answer from .* at 230400 baud/);
    assert.match(given.err, /try --baud 921600 \(esp32: its profile's rate\); try --baud 115200 \(rpi5: its profile's rate\)/);
  });
});

test('sim: bad --faults and --baud values are one clear line, exit 2, before anything starts', () => {
  for (const [args, re] of [
    [['--faults', 'drop=2'], /--faults drop must be a number in 0\.\.1, got '2'/],
    [['--faults', 'flip=-0.1'], /--faults flip must be a number in 0\.\.1, got '-0\.1'/],
    [['--faults', 'drop=lots'], /--faults drop must be a number in 0\.\.1, got 'lots'/],
    [['--faults', 'disconnect-at=100%'], /--faults disconnect-at must be a percentage between 0 and 100 \(exclusive\), got '100%'/],
    [['--faults', 'disconnect-at=0'], /disconnect-at must be a percentage between 0 and 100/],
    [['--faults', 'disconnect-at=half'], /--faults disconnect-at must be a number/],
    [['--faults', 'seed=1.5'], /--faults seed must be an integer/],
    [['--faults', 'jitter=1'], /--faults: unknown fault 'jitter': expected drop=R, flip=R/],
    [['--faults', 'drop'], /--faults: 'drop' is not key=value/],
    [['--faults', 'drop=0.1,drop=0.2'], /--faults: drop is given twice/],
    [['--faults', ''], /--faults is empty/],
    [['--baud', '12'], /--baud must be an integer in 300\.\.12000000, got '12'/],
    [['--board', 'pdp11'], /unknown board 'pdp11'/],
    [['--engine', 'jit'], /--engine must be one of wasm3, aot, got 'jit'/],
  ] as [string[], RegExp][]) {
    const r = cli('sim', '--slot-file', join(dir, 'never.bin'), ...args);
    assert.is(r.code, 2, `${args.join(' ')}: exit ${r.code}`);
    const lines = r.err.trim().split('\n');
    assert.is(lines.length, 1, `${args.join(' ')}: ${r.err}`);
    assert.match(lines[0], /^edge-flash: /);
    assert.match(lines[0], re, args.join(' '));
    assert.is(r.out, '');
  }
  assert.not.ok(existsSync(join(dir, 'never.bin')));
  // --engine aot where the AOT runtime is not built: one line that says how to build it
  const missing = join(dir, 'no-such-runtime-aot');
  assert.throws(() => aotRuntime(missing), (e: Error) => e instanceof UserError && e.message === `the AOT runtime is not built (${missing}): run \`make -C boards/runtime aot\` (needs wasm2c: tools/install-system-deps.sh)`);
  // the runtime checks its own options too (a caller other than sim)
  const bin = join(makeRuntime(), 'edge-flash-runtime');
  for (const [args, re] of [
    [['--drop', '1.5'], /--drop: expected a probability in \[0, 1\], got 1\.5/],
    [['--disconnect-at', '100'], /--disconnect-at: expected a percentage between 0 and 100/],
    [['--baud', '9600x'], /--baud: expected a whole number/],
  ] as [string[], RegExp][]) {
    const p = runBin(bin, ['--slot-file', join(dir, 'rt.bin'), '--serve', '--pty', ...args]);
    assert.is(p.code, 2, args.join(' '));
    assert.match(p.err, re);
  }
  const stdio = runBin(bin, ['--slot-file', join(dir, 'rt.bin'), '--serve', '--stdio', '--disconnect-at', '50']);
  assert.is(stdio.code, 2);
  assert.match(stdio.err, /--disconnect-at and --pty-link need --pty/);
});

test.run();
