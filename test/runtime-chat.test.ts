// A person's terminal on the C runtime with a real packed image booted (boards/runtime/core/protocol.c,
// chat.c): a typed line is a chat turn whose reply is byte for byte what `edge-flash run <image> -m chat
// --engine wasm3` gives on the same image and settings, streamed, then the stats line; Ctrl-C cancels a
// reply, and the runtime keeps serving.
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fromRoot } from '../host/paths.ts';
import { cli } from './helpers.ts';
import { makeRuntime, runBin } from './runtime-helpers.ts';

const bin = join(makeRuntime(), 'edge-flash-runtime');
const dir = mkdtempSync(join(tmpdir(), 'edge-flash-rt-chat-'));
const MODEL = fromRoot('models', 'kjv-esp32-260k', 'model.bin');
const BOARD = ['--board-id', '1', '--capacity', '262144', '--erase-block', '4096', '--board-name', 'host'];

// The runtime in terminal mode over stdio: its text as it arrives, and a wait for a pattern.
function serve(slotFile: string, extra: string[] = []) {
  const proc = spawn(bin, ['--slot-file', slotFile, ...BOARD, ...extra, '--serve', '--stdio'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let text = '';
  // the banner ends in a 0x00 (a framed host's delimiter); a person's terminal shows nothing for it
  proc.stdout!.on('data', (d: Buffer) => { text += d.toString('latin1').replace(/\0/g, ''); });
  const wait = async (re: RegExp, ms = 10_000) => {
    const end = Date.now() + ms;
    while (!re.test(text)) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${re}; got ${JSON.stringify(text)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    return text;
  };
  return { proc, wait, write: (s: string) => proc.stdin!.write(s), clear: () => { text = ''; } };
}

test('a typed prompt with a packed demo image booted: the reply is run -m chat\'s, streamed, then the stats line; Ctrl-C cancels; serving goes on', async () => {
  const image = join(dir, 'kjv.efimg');
  const p = cli('pack', MODEL, '--board', 'host', '--quant', 'tb1', '--kv', 'int4', '-o', image);
  assert.is(p.code, 0, p.err);
  // the same image on the host's wasm3, through the app's own chat turn (run -m chat)
  const r = cli('run', image, '--engine', 'wasm3', '-m', 'chat', '-t', '0', '-n', '256', '--reply-tokens', '0', '-i', 'In the beginning', '--json');
  assert.is(r.code, 0, r.err);
  const expected = JSON.parse(r.out).text as string;
  assert.match(expected, /^Assistant: .+\n\n$/s);
  const reply = expected.slice('Assistant: '.length, -2).replace(/\n/g, '\r\n');

  const slot = join(dir, 'slot.bin');
  const inst = runBin(bin, ['--slot-file', slot, ...BOARD, '--install', image]);
  assert.is(inst.code, 0, inst.err);
  const b = serve(slot);
  try {
    await b.wait(/edge-flash 0\.1\.0 on host: type a prompt, \/help for commands\r\n> $/);
    b.write('/info\r');
    // the self-test (model_init and a few tokens) passed: the image is confirmed, its app loaded
    const info = await b.wait(/last reply: .*\r\n> $/s);
    assert.match(info, /slot A: confirmed, slot B: empty, booted: A\r\n/);
    assert.not.match(info, /linear memory: 0 bytes/);
    b.clear();
    b.write('/temp 0\r');
    await b.wait(/temperature 0\r\n> $/);
    b.clear();
    b.write('In the beginning\r');
    const out = await b.wait(/\]\r\n> $/);
    const m = /^In the beginning\r\n(.*)\r\n\[(\d+) tokens, [\d.]+ tok\/s, linear memory (\d+) KiB, heap free \d+ KiB(, [^\]]*)?\]\r\n> $/s.exec(out);
    assert.ok(m, JSON.stringify(out));
    assert.is(m![1], reply);
    assert.ok(Number(m![2]) > 0 && Number(m![3]) > 0);
    // Ctrl-C right behind the line: the reply is cancelled before its first token
    b.clear();
    b.write('/new\rAnd God said\r\x03');
    const c = await b.wait(/cancelled\]\r\n> $/);
    assert.match(c, /And God said\r\n\^C\r\n\[0 tokens, 0\.0 tok\/s, linear memory \d+ KiB, heap free \d+ KiB, cancelled\]\r\n> $/);
    // and it keeps serving: the same prompt in a new conversation gives the same reply again
    b.clear();
    b.write('/new\rIn the beginning\r');
    const again = await b.wait(/\]\r\n> $/);
    assert.ok(again.includes(`In the beginning\r\n${reply}\r\n[`), JSON.stringify(again));
    b.clear();
    b.write('/help\r');
    await b.wait(/\/new  a new conversation\r\n> $/);
  } finally {
    b.proc.kill();
  }
});

test('a trap inside a reply is an error line and a stats line; the runtime reloads the app and serves on', async () => {
  // the image installed and confirmed above; a wasm3 stack too small for a decode step makes chat_next trap
  const b = serve(join(dir, 'slot.bin'), ['--stack', '2048']);
  try {
    await b.wait(/for commands\r\n> $/);
    b.clear();
    b.write('In the beginning\r');
    const out = await b.wait(/\]\r\n> $/);
    assert.match(out, /^In the beginning\r\n.*\r\nerror: app trapped in 'chat_next': \[trap\] stack overflow\r\n\[0 tokens, 0\.0 tok\/s, linear memory \d+ KiB, heap free \d+ KiB, error\]\r\n> $/s);
    b.clear();
    b.write('/info\r');
    const info = await b.wait(/last reply: .*\r\n> $/s);
    assert.match(info, /slot A: confirmed/);
    assert.not.match(info, /linear memory: 0 bytes/); // the app was loaded again
  } finally {
    b.proc.kill();
  }
});

test('framed: a trap is the CHAT\'s error (exit 2, one line), and the board answers the next request', async () => {
  const proc = spawn(bin, ['--slot-file', join(dir, 'slot.bin'), ...BOARD, '--stack', '2048', '--serve', '--pty'], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const pty = await new Promise<string>((resolve, reject) => {
      let out = '';
      proc.stdout!.on('data', (d: Buffer) => {
        out += d;
        const m = /"pty":"([^"]+)"/.exec(out);
        if (m) resolve(m[1]);
      });
      proc.once('exit', (c) => reject(new Error(`runtime exited ${c}`)));
    });
    for (const mode of ['chat', 'generate']) {
      const r = cli('chat', '--port', pty, '-m', mode, '-i', 'In the beginning', '-n', '30', '--json');
      assert.is(r.code, 2, r.err);
      assert.match(r.err, /^edge-flash: error: .*the app trapped: app trapped in '(chat_next|chat_turn|gen_begin|gen_next)': \[trap\] stack overflow\n$/);
      assert.is(r.out, '');
    }
    const info = cli('chat', '--port', pty, '-m', 'generate', '-i', '', '-n', '1', '--json');
    assert.match(info.err, /the app trapped|^$/); // still answering frames after two traps
  } finally {
    proc.kill();
  }
});

test.run();
