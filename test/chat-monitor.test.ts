// chat and monitor as a person uses them (issue 27), on the virtual board (the C runtime on a pty):
// chat's banner and its own /commands (never sent to the model as prompts), every setting checked on
// the host in the wire's ranges; monitor on a pty (python3's pty module stands in for a terminal, as
// picocom's user types): raw keys, each typed line echoed once (by the board), Ctrl-] and Ctrl-D at the
// start of a line quit.
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { boardByName } from '../host/board/boards.ts';
import { startVirtualBoard, type VirtualBoard } from '../host/board/sim.ts';
import { KeyFilter } from '../host/cli/monitor.ts';
import { fromRoot } from '../host/paths.ts';
import { cli } from './helpers.ts';
import { makeRuntime } from './runtime-helpers.ts';

makeRuntime();
const dir = mkdtempSync(join(tmpdir(), 'edge-flash-chat-monitor-'));
const MODEL = fromRoot('models', 'kjv-esp32-260k', 'model.bin');
const BIN = fromRoot('bin', 'edge-flash.js');
const IMAGE = join(dir, 'kjv.efimg');

// The CLI in a child, stdin written by the test, with a hard timeout (a hang is a failure).
function run(args: string[], input: string | null, opts: { cmd?: string[]; timeout?: number } = {}): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const argv = opts.cmd ?? [process.execPath, BIN, ...args];
    const p = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], timeout: opts.timeout ?? 60_000 });
    let out = '', err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.on('close', (code) => resolve({ code, out, err }));
    if (input !== null) p.stdin.end(input);
  });
}

let vb: VirtualBoard;
test.before(async () => {
  const p = cli('pack', MODEL, '--board', 'esp32', '--quant', 'tb1', '--kv', 'int4', '--ctx', '128', '-o', IMAGE);
  assert.is(p.code, 0, p.err);
  vb = await startVirtualBoard({ board: boardByName('esp32'), slotFile: join(dir, 'slots.bin'), link: join(dir, 'board.tty') });
  const f = await run(['flash', IMAGE, '--port', vb.path], null);
  assert.is(f.code, 0, f.err);
  // an unthrottled virtual board moves bytes faster than any baud rate: no "10393 % of 921600 baud" (the esp32 image's profile rate, the default)
  assert.match(f.out, /, faster than 921600 baud: the link is not paced at its baud rate\), verified SHA-256/);
});
test.after(async () => {
  await vb?.stop();
  await term?.stop();
});

test('chat: every flag checked on the host in the wire\'s ranges, before the port is opened', async () => {
  for (const [args, re] of [
    [['-n', '100000'], /-n must be an integer in 0\.\.65535, got '100000'/],
    [['-t', '-1'], /-t must be a number in 0\.\.1000000, got '-1'/],
    [['-p', '1.5'], /-p must be a number in 0\.\.1, got '1\.5'/],
    [['-s', '4294967296'], /-s must be an integer in 0\.\.4294967295, got '4294967296'/],
    [['-m', 'poem'], /-m: 'poem' is not generate or chat/],
  ] as Array<[string[], RegExp]>) {
    const r = await run(['chat', '--port', join(dir, 'no-such-port'), '-i', 'x', ...args], null);
    assert.is(r.code, 2, `${args.join(' ')}: ${r.err}`);
    assert.is(r.err.trim().split('\n').length, 1, r.err);
    assert.match(r.err, re);
    assert.not.match(r.err, /internal error|no such port/);
  }
  // in range at the top of each: the board takes it
  const r = await run(['chat', '--port', vb.path, '-m', 'generate', '-i', 'In', '-n', '65535', '-t', '0', '-s', '4294967295', '-p', '1', '--json'], null);
  assert.is(r.code, 0, r.err);
});

test('chat: a banner, then its own /commands; prompts between them are the same turns as -i gives', async () => {
  const input = ['/help', '/temp -1', '/temp 0', '/steps 100000', '/steps 64', '/seed 7', '/info', 'In the beginning', '/bogus', '/quit', 'never sent'].join('\n') + '\n';
  const r = await run(['chat', '--port', vb.path, '--image', IMAGE], input);
  assert.is(r.code, 0, r.err);
  const e = r.err;
  assert.match(e, /^edge-flash chat: esp32 on .*board\.tty \(runtime [^)]+\), image [0-9a-f]{16} in slot [AB]\n/);
  assert.match(e, /\nmodel: .*kjv\.efimg: dim 64, 5 layers, vocab 512, tb1 weights, KV int4; context 128 positions\n/);
  assert.match(e, /\nCtrl-C cancels a reply, Ctrl-D quits, \/help lists the commands\n/);
  for (const c of ['/help', '/info', '/temp T', '/topp P', '/seed N', '/steps N', '/new', '/quit']) assert.match(e, new RegExp(`\\n(> )?${c.replace('/', '\\/')} `));
  assert.match(e, /error: \/temp must be a number in 0\.\.1000000, got '-1'/);
  assert.match(e, /temperature 0\n/);
  assert.match(e, /error: \/steps must be an integer in 0\.\.65535, got '100000'/);
  assert.match(e, /steps 64\n/);
  assert.match(e, /seed 7\n/);
  assert.match(e, /board: +esp32 \(id \d+\)/);
  assert.match(e, /settings: temperature 0, top-p 0\.9, seed 7, steps 64, mode chat/);
  assert.match(e, /error: unknown command \/bogus/);
  assert.not.match(e, /never sent/);
  // the one reply is the -i reply with the same settings: no /command reached the model
  const one = await run(['chat', '--port', vb.path, '-i', 'In the beginning', '-n', '64', '-t', '0', '-s', '7', '--json'], null);
  assert.is(one.code, 0, one.err);
  const want = JSON.parse(one.out).text;
  assert.ok(want.length > 0);
  assert.is(r.out, `${want}\n`);
  // without --image: the banner says how to name the model, and the context after a reply
  const plain = await run(['chat', '--port', vb.path], '/info\n');
  assert.is(plain.code, 0, plain.err);
  assert.match(plain.err, /model: not known here \(pass --image FILE, the image you flashed\); context shown after the first reply/);
});

test('chat: the stats of a reply say how it ended: cut by -n, end of text, context full', async () => {
  const stats = async (args: string[]) => {
    const r = await run(['chat', '--port', vb.path, '-i', 'In the beginning', '-t', '0', ...args], null);
    assert.is(r.code, 0, r.err);
    const line = r.err.trim().split('\n').pop()!;
    assert.match(line, /^\[\d+ tokens, [\d.-]+ tok\/s, prefill \d+ tokens in \d+ ms, linear memory \d+ KiB, heap free \d+ KiB(, [a-z0-9 -]+)?\]$/);
    return line;
  };
  // generate: -n 10 positions, 9 of them the prompt; a chat turn cut at -n 30 (the board says 'context')
  assert.match(await stats(['-m', 'generate', '-n', '10']), /, cut by -n 10\]$/);
  assert.match(await stats(['-m', 'chat', '-n', '30']), /, cut by -n 30\]$/);
  // the image's 128 positions, with -n 0 or past them
  assert.match(await stats(['-m', 'generate', '-n', '0']), /, context full\]$/);
  assert.match(await stats(['-m', 'generate', '-n', '300']), /, context full\]$/);
  assert.match(await stats(['-m', 'chat', '-n', '0']), /, end of text\]$/);
});

test('monitor: the key filter quits on Ctrl-] anywhere and on Ctrl-D at the start of a line only', () => {
  const k = new KeyFilter();
  assert.equal(k.feed(Buffer.from('ab\x04c')), { send: Buffer.from('ab\x04c'), quit: false });
  assert.equal(k.feed(Buffer.from('\r\x04rest')), { send: Buffer.from('\r'), quit: true });
  const q = new KeyFilter();
  assert.equal(q.feed(Buffer.from('xy\x1dz')), { send: Buffer.from('xy'), quit: true });
  assert.equal(new KeyFilter().feed(Buffer.from('\x04')).quit, true);
});

// monitor on a pty: python3's pty.spawn makes one and relays our bytes to it as a terminal's keys.
const onPty = (args: string[]) => ['python3', '-c', 'import os, pty, sys; st = pty.spawn(sys.argv[1:]); sys.exit(os.waitstatus_to_exitcode(st))', process.execPath, BIN, ...args];

// A board a framed host (flash, chat) never talked to: its line is a terminal's (a framed host's first
// 0x00 makes it framed until it restarts).
let term: VirtualBoard | undefined;
async function terminalBoard(): Promise<VirtualBoard> {
  term ??= await startVirtualBoard({ board: boardByName('esp32'), slotFile: join(dir, 'term.bin'), link: join(dir, 'term.tty') });
  return term;
}

async function monitorSession(keys: Array<string | number>): Promise<{ code: number | null; out: string; err: string; alive: boolean[] }> {
  const board = await terminalBoard();
  return new Promise((resolve) => {
    const argv = onPty(['monitor', '--port', board.path]);
    const p = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], timeout: 30_000 });
    let out = '', err = '', exited = false;
    const alive: boolean[] = [];
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.on('close', (code) => resolve({ code, out, err, alive }));
    p.on('exit', () => { exited = true; });
    const waitFor = async (re: RegExp) => {
      for (let i = 0; i < 200 && !re.test(out); i++) await new Promise((r) => setTimeout(r, 50));
    };
    void (async () => {
      await waitFor(/Ctrl-\] quits/);
      for (const k of keys) {
        if (typeof k === 'number') {
          await new Promise((r) => setTimeout(r, k));
          alive.push(!exited);
        } else {
          p.stdin.write(k);
          await new Promise((r) => setTimeout(r, 150));
        }
      }
    })();
  });
}

test('monitor on a pty: says how to quit, echoes a typed line once, quits on Ctrl-]', async () => {
  const r = await monitorSession(['/seed 12345\r', 300, '\x1d']);
  assert.is(r.code, 0, r.out + r.err);
  assert.match(r.out, /monitor: .*term\.tty at 115200 baud \(the default\); Ctrl-\] quits \(or Ctrl-D at the start of a line\)/);
  assert.is(r.out.split('/seed 12345').length - 1, 1, `echoed once: ${JSON.stringify(r.out)}`);
  assert.match(r.out, /\r+\nseed 12345\r+\n/); // the pty adds a CR to the board's CR LF
  assert.equal(r.alive, [true]);
  assert.match(r.out, /monitor: quit: closed/);
});

test('monitor on a pty: Ctrl-D quits at the start of a line, not inside one', async () => {
  const r = await monitorSession(['/topp', '\x04', 400, ' 0.5\r', '\x04']);
  assert.is(r.code, 0, r.out + r.err);
  assert.equal(r.alive, [true], 'Ctrl-D inside a line does not quit');
  assert.match(r.out, /top-p 0\.5\r+\n/);
  assert.match(r.out, /monitor: quit: closed/);
});

test('the demo\'s chat on a terminal: the banner with the demo image\'s model and context, /help, /steps, a reply, /quit', async () => {
  const argv = onPty(['demo', '-n', '16']);
  const p = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], timeout: 120_000 });
  let out = '';
  p.stdout.on('data', (d) => { out += d; });
  const code = new Promise<number | null>((r) => p.on('close', r));
  const waitFor = async (re: RegExp) => {
    for (let i = 0; i < 1800 && !re.test(out); i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(out, re);
  };
  try {
    await waitFor(/Ctrl-C cancels a reply, Ctrl-D quits, \/help lists the commands/);
    assert.match(out, /edge-flash chat: esp32 on .*, image [0-9a-f]{16} in slot [AB]/);
    assert.match(out, /model: the demo image \(.*kjv-esp32-260k.*\): dim 64, 5 layers, vocab 512, tb1 weights, KV int4; context \d+ positions/);
    p.stdin.write('/help\r');
    await waitFor(/\/topp P/);
    p.stdin.write('/steps 40\r');
    await waitFor(/steps 40\r?\n/);
    p.stdin.write('Who made the earth?\r');
    await waitFor(/\[\d+ tokens, [^\]]*\]/);
    p.stdin.write('/quit\r');
    assert.is(await code, 0, out);
  } finally {
    p.kill();
  }
});

test('Ctrl-C during flash says where it stopped and that flash resumes; the next flash does; stopping sim prints the line\'s counts', async () => {
  const slot = join(dir, 'paced.bin');
  const sim = spawn(process.execPath, [BIN, 'sim', '--slot-file', slot, '--baud', '230400'], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
  let simOut = '', simErr = '';
  sim.stdout.on('data', (d) => { simOut += d; });
  sim.stderr.on('data', (d) => { simErr += d; });
  const simExit = new Promise<number | null>((r) => sim.on('close', r));
  try {
    for (let i = 0; i < 400 && !simOut.includes('\n'); i++) await new Promise((r) => setTimeout(r, 50));
    const port = simOut.trim();
    assert.ok(port, simErr);
    // interrupted once its upload is under way (--trace: the wire's lines, chunks among them)
    const f = spawn(process.execPath, [BIN, 'flash', IMAGE, '--port', port, '--baud', '230400', '--trace'], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
    let err = '';
    f.stderr.on('data', (d) => { err += d; });
    const code = new Promise<number | null>((r) => f.on('close', r));
    for (let i = 0; i < 600 && err.split('\n').length < 1500; i++) await new Promise((r) => setTimeout(r, 25));
    f.kill('SIGINT');
    assert.is(await code, 130, err.slice(-2000));
    const m = /flash: interrupted at (\d+) of (\d+) bytes; the session with the board was ended; the same flash command resumes from there\n/.exec(err);
    assert.ok(m, err.slice(-2000));
    assert.ok(Number(m![1]) > 0 && Number(m![1]) < Number(m![2]), m![0]);
    const again = await run(['flash', IMAGE, '--port', port, '--baud', '230400'], null);
    assert.is(again.code, 0, again.err);
    assert.match(again.err, /resumed at \d+ of \d+ bytes/);
    const pct = /\((?:[\d.]+) KiB\/s, (\d+) % of 230400 baud\)/.exec(again.out);
    assert.ok(pct && Number(pct[1]) > 0 && Number(pct[1]) <= 110, again.out);
  } finally {
    sim.kill('SIGINT');
  }
  assert.is(await simExit, 0, simErr);
  assert.match(simErr, /sim: line: \d+ bytes in, \d+ out; stopped\n/);
});

test.run();
