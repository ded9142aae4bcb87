// What a person's terminal sees on the virtual board's port after a framed session (docs/protocol.md
// section 1): a raw client on the pty, as picocom is (raw mode, Enter sends CR), after `edge-flash flash`,
// after `edge-flash chat`, after Ctrl-C of a flash, and after a host that was killed (the idle rule): the
// banner on Enter, `/info`, a prompt and its reply. The virtual board, like a UART, never sees a host
// leave. Also: flash through a line that drops and flips 1 byte in 1000 each way (the chunk size adapts),
// and one virtual board per slot file.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { boardByName } from '../host/board/boards.ts';
import { startVirtualBoard, type VirtualBoard } from '../host/board/sim.ts';
import { openSerial, type Transport } from '../host/board/transport.ts';
import { parseFaults } from '../host/cli/flags.ts';
import { fromRoot } from '../host/paths.ts';
import { cli } from './helpers.ts';
import { makeRuntime } from './runtime-helpers.ts';

makeRuntime();
const dir = mkdtempSync(join(tmpdir(), 'edge-flash-term-'));
const esp32 = boardByName('esp32');
let n = 0;
const fresh = () => join(dir, `board${++n}.bin`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const IMAGE = join(dir, 'kjv.efimg');
function image(): string {
  if (!existsSync(IMAGE)) {
    const p = cli('pack', fromRoot('models', 'kjv-esp32-260k', 'model.bin'), '--board', 'esp32', '--quant', 'tb1', '--kv', 'int4', '--ctx', '64', '-o', IMAGE);
    assert.is(p.code, 0, p.err);
  }
  return IMAGE;
}
const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

// `edge-flash ...` as a child (the virtual board's events keep arriving meanwhile); killed after ms.
function edgeFlash(args: string[], ms = 60_000): { child: ChildProcess; done: Promise<{ code: number | null; signal: string | null; out: string; err: string }> } {
  const child = spawn(process.execPath, [fromRoot('bin', 'edge-flash.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const t = setTimeout(() => child.kill('SIGKILL'), ms);
  const done = new Promise<{ code: number | null; signal: string | null; out: string; err: string }>((resolve) => child.on('close', (code, signal) => {
    clearTimeout(t);
    resolve({ code, signal, out, err });
  }));
  return { child, done };
}

async function withSim<T>(fn: (vb: VirtualBoard) => Promise<T>, o: { faults?: string; baud?: number } = {}): Promise<T> {
  const slotFile = fresh();
  const vb = await startVirtualBoard({ board: esp32, slotFile, link: `${slotFile}.tty`, baud: o.baud ?? null, faults: o.faults ? parseFaults(o.faults) : undefined });
  try {
    return await fn(vb);
  } finally {
    await vb.stop();
  }
}

// Until the slot file is written to (the first chunk of an upload arrived): the host is well under way
// (a loaded machine may take seconds to start a CLI).
async function uploadUnderway(vb: VirtualBoard, ms = 30_000): Promise<void> {
  const file = vb.path.replace(/\.tty$/, '');   // withSim's link is the slot file + .tty
  const before = statSync(file).mtimeMs;
  const until = Date.now() + ms;
  while (statSync(file).mtimeMs === before) {
    if (Date.now() > until) throw new Error(`no upload reached ${file} within ${ms} ms`);
    await sleep(50);
  }
}

// A person at a raw terminal: what arrives as text; Enter is CR, as picocom sends it.
class Terminal {
  text = '';
  private constructor(private t: Transport) {
    t.onData((b) => (this.text += Buffer.from(b).toString('latin1')));
  }
  static async open(path: string): Promise<Terminal> {
    return new Terminal(await openSerial(path, 115200));
  }
  async type(s: string): Promise<void> {
    await this.t.write(new TextEncoder().encode(s));
  }
  // Waits until what arrived since `from` matches; returns that text.
  async expect(re: RegExp, from: number, ms = 10_000): Promise<string> {
    const until = Date.now() + ms;
    while (!re.test(this.text.slice(from))) {
      if (Date.now() > until) throw new Error(`the terminal did not show ${re} within ${ms} ms; it shows ${JSON.stringify(this.text.slice(from))}`);
      await sleep(20);
    }
    return this.text.slice(from);
  }
  // Nothing more arrives for ms (what was left in the pty before it opened is read by then).
  async quiet(ms = 300): Promise<void> {
    let len = -1;
    while (len !== this.text.length) {
      len = this.text.length;
      await sleep(ms);
    }
  }
  close(): Promise<void> {
    return this.t.close();
  }
}

const BANNER = /edge-flash \d+\.\d+\.\d+ on esp32: type a prompt, \/help for commands\r\n> $/;
const STATS_LINE = /\r\n\[\d+ tokens, \d+\.\d tok\/s, linear memory \d+ KiB, heap free \d+ KiB[^\]]*\]\r\n> $/;

// The person's session: Enter shows the banner, /info its lines, a prompt streams a reply and its stats line.
async function personSession(path: string, imageSha: string | null): Promise<void> {
  const term = await Terminal.open(path);
  try {
    await term.quiet();
    let at = term.text.length;
    await term.type('\r');
    await term.expect(BANNER, at);
    at = term.text.length;
    await term.type('/info\r');
    const info = await term.expect(/last reply: [\d.]+ tok\/s\r\n> $/, at);
    assert.match(info, /^\/info\r\nboard: esp32 \(id \d+\)\r\nruntime: /, 'echoed, then the board');
    if (imageSha) {
      assert.match(info, /slot A: confirmed, slot B: empty, booted: A\r\n/);
      assert.match(info, new RegExp(`image sha256: ${imageSha}\\r\\n`));
    } else assert.match(info, /slot A: receiving, slot B: empty, booted: none\r\n/, info);
    at = term.text.length;
    await term.type('/temp 0\r');
    await term.expect(/temperature 0\r\n> $/, at);
    at = term.text.length;
    await term.type('In the beginning\r');
    if (!imageSha) {
      await term.expect(/^In the beginning\r\nerror: no image is running: flash one \(edge-flash flash\)\r\n> $/, at);
      return;
    }
    const reply = await term.expect(STATS_LINE, at, 30_000);
    assert.ok(reply.startsWith('In the beginning\r\n'), JSON.stringify(reply));
    const body = reply.slice('In the beginning\r\n'.length).replace(STATS_LINE, '');
    assert.ok(body.trim().length > 0, `a reply: ${JSON.stringify(reply)}`);
    assert.not.match(reply, /\x00/, 'terminal mode never sends 0x00');
  } finally {
    await term.close();
  }
}

test('after `edge-flash flash`, a terminal on the port gets the banner, /info, a prompt and its reply', async () => {
  const img = image();
  await withSim(async (vb) => {
    const r = await edgeFlash(['flash', img, '--port', vb.path]).done;
    assert.is(r.code, 0, r.err);
    await personSession(vb.path, sha(img));
    // and a host after the person: framed again, as the protocol says (a 0x00 takes over the line)
    const again = await edgeFlash(['chat', '--port', vb.path, '-i', 'And God said', '-n', '24', '-t', '0', '-m', 'generate']).done;
    assert.is(again.code, 0, again.err);
    assert.ok(again.out.startsWith('And God said'), again.out);
  });
});

test('after `edge-flash chat -i`, the same', async () => {
  const img = image();
  await withSim(async (vb) => {
    assert.is((await edgeFlash(['flash', img, '--port', vb.path]).done).code, 0);
    const r = await edgeFlash(['chat', '--port', vb.path, '-i', 'And God said', '-n', '24', '-t', '0', '-m', 'generate']).done;
    assert.is(r.code, 0, r.err);
    await personSession(vb.path, sha(img));
  });
});

test('Ctrl-C during a flash ends the session: exit 130, one line, the terminal works, flash again resumes', async () => {
  const img = image();
  await withSim(async (vb) => {
    const f = edgeFlash(['flash', img, '--port', vb.path, '--baud', '115200']);
    // the line runs at 115200 baud: the upload takes about 15 s; interrupt it once it is under way
    await uploadUnderway(vb);
    await sleep(500);
    f.child.kill('SIGINT');
    const r = await f.done;
    assert.is(r.code, 130, r.err);
    const lines = r.err.trim().split('\n').filter((l) => /interrupted/.test(l));
    assert.is(lines.length, 1, r.err);
    assert.match(lines[0], /^flash: interrupted at \d+ of \d+ bytes; the session with the board was ended; the same flash command resumes from there$/, r.err);
    await personSession(vb.path, null);
    const again = await edgeFlash(['flash', img, '--port', vb.path, '--baud', '115200'], 120_000).done;
    assert.is(again.code, 0, again.err);
    assert.match(again.out, /\(resumed at \d+\)/, 'the upload went on where Ctrl-C stopped it');
  }, { baud: 115200 });
});

test('a host that dies without BYE (SIGKILL mid-upload): after a quiet second, a typed line gets the terminal back', async () => {
  const img = image();
  await withSim(async (vb) => {
    const f = edgeFlash(['flash', img, '--port', vb.path, '--baud', '115200']);
    await uploadUnderway(vb);
    f.child.kill('SIGKILL');
    await f.done;
    const term = await Terminal.open(vb.path);
    try {
      await term.quiet(1200);   // the chunks the host left in the pty arrive, then more than the idle time (1 s) of quiet
      const at = term.text.length;
      await term.type('/info\r');
      const got = await term.expect(/last reply: [\d.]+ tok\/s\r\n> $/, at);
      // the banner the person did not see, their line as if echoed, then its answer
      assert.match(got, /^\r\nedge-flash \d+\.\d+\.\d+ on esp32: type a prompt, \/help for commands\r\n> \/info\r\nboard: esp32/, JSON.stringify(got));
      assert.match(got, /slot A: receiving, slot B: empty, booted: none\r\n/);
    } finally {
      await term.close();
    }
  }, { baud: 115200 });
});

test('flash through drop=0.001,flip=0.001 both ways completes and verifies; --json reports the retries and the smaller chunks', async () => {
  const img = image();
  await withSim(async (vb) => {
    const r = await edgeFlash(['flash', img, '--port', vb.path, '--json'], 120_000).done;
    assert.is(r.code, 0, r.err);
    const j = JSON.parse(r.out);
    assert.is(j.sha256, sha(img));
    assert.is(j.verified, true);
    assert.is(j.booted, true);
    assert.is(j.chunk_max, 4096);
    assert.ok(j.retries.resends > 0, JSON.stringify(j.retries));
    assert.ok(j.retries.resent_bytes > 0 && j.sent_bytes === j.bytes + j.retries.resent_bytes, JSON.stringify(j));
    const sizes = Object.keys(j.chunk_sizes).map(Number);
    assert.ok(Math.min(...sizes) < 4096, `the chunk size came down: ${JSON.stringify(j.chunk_sizes)}`);
    // every chunk size is a halving of the board's max_chunk (down to 32)
    for (const s of sizes) assert.ok(s === 32 || Number.isInteger(Math.log2(4096 / s)), String(s));
    const s = await vb.stop();
    assert.ok((s!.rx_dropped as number) > 50 && (s!.rx_flipped as number) > 50, JSON.stringify(s));
  }, { faults: 'drop=0.001,flip=0.001,seed=4' });
});

// picocom itself on the port (under `script`, which gives it the terminal it insists on): the person's
// keys go in on its terminal, the port's bytes come out on it. Without picocom this fails in CI and warns
// elsewhere (tools/install-system-deps.sh installs it).
const which = (t: string) => spawnSync('sh', ['-c', `command -v ${t}`], { encoding: 'utf8' }).stdout.trim();
test('picocom after `edge-flash flash`: Enter shows the banner, /info and a prompt are answered; after it, a host again', async () => {
  const picocom = which('picocom'), script = which('script');
  if (!picocom || !script) {
    const why = `picocom or script is not installed (tools/install-system-deps.sh installs them)`;
    if (process.env.CI) assert.unreachable(why);
    process.stderr.write(`warning: picocom is not tested: ${why}\n`);
    return;
  }
  const img = image();
  await withSim(async (vb) => {
    assert.is((await edgeFlash(['flash', img, '--port', vb.path]).done).code, 0);
    const p = spawn(script, ['-qfec', `${picocom} -q -b 115200 ${vb.path}`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let shown = '';
    p.stdout!.on('data', (d) => (shown += d.toString('latin1')));
    const exited = new Promise<number | null>((r) => p.on('close', (c) => r(c)));
    const kill = setTimeout(() => p.kill('SIGKILL'), 40_000);
    const until = async (re: RegExp, ms = 15_000) => {
      const t = Date.now() + ms;
      while (!re.test(shown)) {
        if (Date.now() > t) throw new Error(`picocom did not show ${re}; it shows ${JSON.stringify(shown)}`);
        await sleep(20);
      }
    };
    try {
      await sleep(800);            // picocom opens the port and reads what waited there
      const from = shown.length;
      p.stdin!.write('\r');
      await until(new RegExp(`^[^]{${from}}[^]*\r\nedge-flash \\d+\\.\\d+\\.\\d+ on esp32: type a prompt, /help for commands\r\n> $`));
      p.stdin!.write('/info\r');
      await until(new RegExp(`> /info\r\nboard: esp32 \\(id \\d+\\)\r\n[^]*image sha256: ${sha(img)}\r\n[^]*last reply: [\\d.]+ tok/s\r\n> $`));
      p.stdin!.write('/temp 0\rIn the beginning\r');
      await until(STATS_LINE, 30_000);
      p.stdin!.write('\x01\x18');   // C-a C-x: picocom exits
      assert.is(await exited, 0, shown);
    } finally {
      clearTimeout(kill);
      p.kill('SIGKILL');
    }
    // the person left without a word (as people do): a host takes the line back with its 0x00
    const again = await edgeFlash(['chat', '--port', vb.path, '-i', 'And God said', '-n', '16', '-t', '0', '-m', 'generate']).done;
    assert.is(again.code, 0, again.err);
  });
});

test('one virtual board per slot file: the second sim refuses naming the first one\'s pid; a stale lock is taken over', async () => {
  const slotFile = fresh();
  const first = edgeFlash(['sim', '--slot-file', slotFile]);
  let out = '';
  first.child.stdout!.on('data', (d) => (out += d));
  try {
    const until = Date.now() + 10_000;
    while (!out.includes('\n') && Date.now() < until) await sleep(20);
    assert.ok(out.includes('.tty'), out);
    const holder = Number(readFileSync(`${slotFile}.lock`, 'utf8').split(' ')[0]);
    assert.ok(readFileSync(`/proc/${holder}/cmdline`, 'utf8').includes(slotFile), 'the lock names the running runtime');
    const second = await edgeFlash(['sim', '--slot-file', slotFile], 10_000).done;
    assert.is(second.code, 2, second.err);
    const lines = second.err.trim().split('\n');
    assert.is(lines.length, 1, second.err);
    assert.is(lines[0], `edge-flash: error: another virtual board (pid ${holder}) is serving esp32 on ${slotFile.replace(/\.bin$/, '.tty')} from ${slotFile}: stop it (kill ${holder}) or give another slot file`);
    assert.is(second.out, '');
  } finally {
    first.child.kill('SIGINT');
    await first.done;
  }
  assert.not.ok(existsSync(`${slotFile}.lock`), 'removed when the board stops');
  // a lock left by a process that is gone (SIGKILL): taken over
  const dead = spawn('true');
  await new Promise((r) => dead.on('close', r));
  writeFileSync(`${slotFile}.lock`, `${dead.pid} esp32 ${slotFile.replace(/\.bin$/, '.tty')}\n`);
  const vb = await startVirtualBoard({ board: esp32, slotFile, link: slotFile.replace(/\.bin$/, '.tty') });
  try {
    assert.is(Number(readFileSync(`${slotFile}.lock`, 'utf8').split(' ')[0]), vb.child.pid);
  } finally {
    await vb.stop();
  }
});

test.run();
