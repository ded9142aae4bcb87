// A prompt to the C runtime with a real packed image booted (boards/runtime/core/protocol.c). The app
// in the image has its generate/chat entry points, and `edge-flash run <image> --engine wasm3` drives
// them; the C runtime cannot yet: model_init needs the descriptor the host planner writes (kernel ids,
// scratch, staging), which the image does not carry. Until it does, a typed prompt gets that one error
// line and the runtime keeps serving. When CHAT lands, this test becomes the byte comparison of the
// runtime's reply with `edge-flash run <image> --engine wasm3 -t 0`.
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
function serve(slotFile: string) {
  const proc = spawn(bin, ['--slot-file', slotFile, ...BOARD, '--serve', '--stdio'], { stdio: ['pipe', 'pipe', 'pipe'] });
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

test('a typed prompt with a packed demo image booted: the app loads, the prompt gets the one line saying why there is no reply', async () => {
  const image = join(dir, 'kjv.efimg');
  const p = cli('pack', MODEL, '--board', 'host', '--quant', 'tb1', '--kv', 'int4', '-o', image);
  assert.is(p.code, 0, p.err);
  // the same image runs on the host's wasm3 through the app's own entry points
  const r = cli('run', image, '--engine', 'wasm3', '-t', '0', '-n', '12', '-i', 'In the beginning');
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /^In the beginning/);

  const slot = join(dir, 'slot.bin');
  const inst = runBin(bin, ['--slot-file', slot, ...BOARD, '--install', image]);
  assert.is(inst.code, 0, inst.err);
  const b = serve(slot);
  try {
    await b.wait(/edge-flash 0\.1\.0 on host: type a prompt, \/help for commands\r\n> $/);
    b.write('/info\r');
    // the self-test passed: the image's app is loaded, its linear memory within the plan
    const info = await b.wait(/last reply: .*\r\n> $/s);
    assert.match(info, /slot A: confirmed, slot B: empty, booted: A\r\n/);
    assert.not.match(info, /linear memory: 0 bytes/);
    b.clear();
    b.write('In the beginning\r');
    const out = await b.wait(/\r\n> $/);
    assert.is(out, 'In the beginning\r\nerror: the image has no descriptor section for model_init: pack it again with this edge-flash\r\n> ');
    // and it keeps serving
    b.clear();
    b.write('/help\r');
    await b.wait(/\/new  a new conversation\r\n> $/);
  } finally {
    b.proc.kill();
  }
});

test.run();
