// `edge-flash demo` (npm start) run as a script would: no terminal on stdin, so the scripted prompt only.
// It must start the virtual board, pack, flash, stream a real reply, print tok/s beside the planner's
// estimate for the board it plays (or why there is none), and leave no virtual board behind: on a normal exit and on Ctrl-C.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fromRoot } from '../host/paths.ts';
import { makeRuntime } from './runtime-helpers.ts';

makeRuntime();

function demo(args: string[], onErr?: (err: string, kill: (sig: NodeJS.Signals) => void) => void) {
  return new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
    const p = spawn(process.execPath, [fromRoot('bin', 'edge-flash.js'), 'demo', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '', err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => {
      err += d;
      onErr?.(err, (s) => p.kill(s));
    });
    p.stdin.end();
    p.on('close', (code) => resolve({ code, out, err }));
  });
}

const ptyOf = (err: string) => /demo: virtual board on (\S+)/.exec(err)?.[1];

async function gone(path: string) {
  for (let i = 0; i < 50 && existsSync(path); i++) await new Promise((r) => setTimeout(r, 20));
  return !existsSync(path);
}

test('demo: virtual board, pack, flash, a streamed reply, tok/s beside the estimate for the board it plays; the board stops at exit', async () => {
  const r = await demo(['-n', '48']);
  assert.is(r.code, 0, r.err);
  const pty = ptyOf(r.err);
  assert.ok(pty, r.err);
  assert.match(r.err, /demo: chose --quant tb1 --kv int4 --ctx \d+ for esp32: ternary-trained float weights kept exactly in tb1, int4 KV/);
  assert.match(r.err, /demo: packed .*kjv-esp32-260k\/model\.bin for esp32/);
  assert.match(r.err, /demo: flashed \d+ bytes to esp32 slot A in [\d.]+ s, verified SHA-256 [0-9a-f]{16}, booted/);
  // the reply: the prompt's own pieces, then sampled text
  assert.match(r.out, /^In the beginning God created\S*\s+\S+/);
  assert.match(r.err, /\[\d+ tokens, [\d.]+ tok\/s, prefill \d+ tokens/);
  // one estimate, for the board it plays (or the reason there is none: a busy machine's calibration spread)
  const m = /demo: decode ([\d.]+) tok\/s measured on the virtual board \(this machine\); ESP32: (?:~([\d.]+) tok\/s \(estimate|no estimate: the calibration's spread was \d+ %, over 25 %)/.exec(r.err);
  assert.ok(m, r.err);
  assert.ok(Number(m![1]) > 0 && (m![2] === undefined || Number(m![2]) > 0));
  assert.not.match(r.err, /ESP32-S3/);
  assert.match(r.err, /demo: device memory: linear [\d.]+ KiB \(planned [\d.]+ KiB\)/);
  assert.ok(await gone(pty!), `${pty} still open after the demo exited`);
});

test('demo: Ctrl-C stops the virtual board too', async () => {
  let sent = false;
  const r = await demo([], (err, kill) => {
    if (!sent && /demo: virtual board on/.test(err)) {
      sent = true;
      kill('SIGINT');
    }
  });
  assert.ok(sent, r.err);
  assert.is(r.code, 130, r.err);
  assert.ok(await gone(ptyOf(r.err)!), 'the pty is still open after Ctrl-C');
});

test('demo: a bad flag is one line, exit 2', async () => {
  const r = await demo(['-n', '0']);
  assert.is(r.code, 2);
  assert.match(r.err, /^edge-flash: .*-n/m);
  assert.not.match(r.err, /virtual board on/);
});

test.run();
