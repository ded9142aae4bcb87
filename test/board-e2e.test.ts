// End to end over a pty, as a user runs it: `edge-flash pack`, the virtual board (the C runtime on a
// pty, host/board/sim.ts, under wasm3 and with the app compiled ahead of time), `edge-flash flash --port`, then `edge-flash chat --port -i ... --json`,
// whose reply must be exactly what `edge-flash run <image> --engine wasm3` gives on the same image,
// seed and settings: tokens and text, greedy and sampled, generate and chat turns, for the demo model,
// an f32 model and a quantized one. Then the prompt errors, each its own, with the board still serving.
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { boardByName } from '../host/board/boards.ts';
import { chat as chatOn } from '../host/board/commands.ts';
import { connectBoard } from '../host/board/connect.ts';
import { AOT_RUNTIME_BIN, RUNTIME_BIN, startVirtualBoard, type VirtualBoard } from '../host/board/sim.ts';
import { ENGINES, type Engine } from '../host/image/plan.ts';
import { fromRoot } from '../host/paths.ts';
import { makeRuntime } from './runtime-helpers.ts';

// Every case runs on both device runtimes: wasm3 (edge-flash-runtime) and the app compiled ahead of
// time (edge-flash-runtime-aot, `sim --engine aot`), built from the build/device.wasm that pack puts in.
const RUNTIMES: readonly Engine[] = ENGINES;
makeRuntime();
makeRuntime('aot');
const dir = mkdtempSync(join(tmpdir(), 'edge-flash-e2e-'));

// The CLI in a child process, without blocking this one (the board's pty output is read here).
function cli(...args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const env = { ...process.env };
    delete env.SOURCE_DATE_EPOCH;
    // a hang is a failure, not a stuck suite
    const p = spawn(process.execPath, [fromRoot('bin', 'edge-flash.js'), ...args], { env, stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
    let out = '', err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.on('close', (code) => resolve({ code, out, err }));
  });
}

async function ok(args: string[], what: string) {
  const r = await cli(...args);
  assert.is(r.code, 0, `${what}: exit ${r.code}\n${r.err}`);
  return r;
}

interface Case { name: string; model: string; board: string; pack: string[] }
const CASES: Case[] = [
  { name: 'the demo model (ternary tb1, int4 KV, for esp32)', model: fromRoot('models', 'kjv-esp32-260k', 'model.bin'), board: 'esp32', pack: ['--quant', 'tb1', '--kv', 'int4', '--ctx', '128'] },
  { name: 'an f32 model (f32 weights and KV, host board)', model: fromRoot('models', 'kjv-esp32-260k-fp', 'model.bin'), board: 'host', pack: ['--quant', 'f32', '--kv', 'f32'] },
  { name: 'a quantized model (i4g32, int4 KV, esp32s3)', model: fromRoot('models', 'kjv-esp32-260k-fp', 'model.bin'), board: 'esp32s3', pack: ['--quant', 'i4g32', '--kv', 'int4'] },
];

const SETTINGS = [
  { what: 'greedy', args: ['-t', '0', '-s', '7'] },
  { what: 'sampled', args: ['-t', '1.0', '-p', '0.9', '-s', '42'] },
];

async function boardWith(image: string, board: string, slot: string, engine: Engine): Promise<VirtualBoard> {
  const log: string[] = [];
  const vb = await startVirtualBoard({ board: boardByName(board), slotFile: join(dir, slot), link: join(dir, `${slot}.tty`), engine, log: (l) => log.push(l) });
  assert.is(vb.child.spawnfile, engine === 'aot' ? AOT_RUNTIME_BIN : RUNTIME_BIN);
  const f = await cli('flash', image, '--port', vb.path);
  if (f.code !== 0) {
    await vb.stop();
    assert.unreachable(`flash: exit ${f.code}\n${f.err}\n${log.join('\n')}`);
  }
  assert.match(f.out, /verified SHA-256 [0-9a-f]{16}, booted\n$/);
  return vb;
}

// Each image is packed once and `run --engine wasm3` asked once; every runtime is checked against them.
const made = new Map<string, Promise<unknown>>();
function once<T>(key: string, make: () => Promise<T>): Promise<T> {
  if (!made.has(key)) made.set(key, make());
  return made.get(key) as Promise<T>;
}

const PROMPT = 'In the beginning';
async function expected(i: number, c: Case) {
  return once(`case${i}`, async () => {
    const image = join(dir, `case${i}.efimg`);
    await ok(['pack', c.model, '--board', c.board, ...c.pack, '-o', image], 'pack');
    const runs = [];
    for (const s of SETTINGS) runs.push(JSON.parse((await ok(['run', image, '--engine', 'wasm3', '-i', PROMPT, '-n', '40', ...s.args, '--json'], `run ${s.what}`)).out));
    const turn = JSON.parse((await ok(['run', image, '--engine', 'wasm3', '-m', 'chat', '-i', 'Who made the light?', '-n', '64', '-t', '1.0', '-s', '5', '--reply-tokens', '0', '--json'], 'run -m chat')).out);
    return { image, runs, turn };
  });
}

for (const [i, c] of CASES.entries()) {
  for (const engine of RUNTIMES) {
    test(`${engine}: pack -> flash -> chat gives run's tokens and text: ${c.name}`, async () => {
      const { image, runs, turn } = await expected(i, c);
      const vb = await boardWith(image, c.board, `case${i}-${engine}.bin`, engine);
      try {
        for (const [k, s] of SETTINGS.entries()) {
          const run = runs[k];
          const chat = JSON.parse((await ok(['chat', '--port', vb.path, '-m', 'generate', '-i', PROMPT, '-n', '40', ...s.args, '--json'], `chat ${s.what}`)).out);
          // run's tokens start with BOS, which is never printed; the board streams every printed token
          assert.equal(chat.tokens, run.tokens.slice(1), `${s.what}: tokens`);
          assert.is(chat.text, run.text, `${s.what}: text`);
          assert.ok(chat.stats.tokens > 0 && chat.stats.tokens <= 40, `${s.what}: ${chat.stats.tokens} tokens sampled`);
          assert.ok(chat.stats.linearMemory > 0);
          assert.is(chat.context, run.image.ctx);
        }
        // a chat turn (the Llama 2 template, sampling at every position) against run -m chat
        const chat = JSON.parse((await ok(['chat', '--port', vb.path, '-m', 'chat', '-i', 'Who made the light?', '-n', '64', '-t', '1.0', '-s', '5', '--json'], 'chat -m chat')).out);
        assert.is(`Assistant: ${chat.text}\n\n`, turn.text);
        if (c.board === 'host') {
          // CANCEL between tokens: the f32 model decodes slowly enough to stop it long before the context ends
          const client = await connectBoard(vb.path, 921600);
          try {
            let cancelled: Promise<void> | undefined;
            const h = chatOn(client, { prompt: PROMPT, seed: 3, temperature: 1, topP: 0.9, steps: 0, mode: 'generate', newConversation: true }, () => { cancelled ??= h.cancel(); });
            const r = await h.done;
            await cancelled;
            assert.is(r.stats.reason, 'cancelled');
            assert.ok(r.tokens.length < 200, `${r.tokens.length} tokens before the cancel took`);
            // BUSY is over and the board answers the next request at once (the greedy setting's run)
            const again = await chatOn(client, { prompt: PROMPT, seed: 7, temperature: 0, topP: 0.9, steps: 40, mode: 'generate', newConversation: true }).done;
            assert.is(again.text, runs[0].text);
          } finally {
            await client.close();
          }
        }
      } finally {
        await vb.stop();
      }
    });
  }
}

for (const engine of RUNTIMES) {
  test(`${engine}: a prompt longer than the context and one larger than the prompt buffer: each its own error, the board serves on`, async () => {
    const image = await once('ctx32', async () => {
      const path = join(dir, 'ctx32.efimg');
      await ok(['pack', fromRoot('models', 'kjv-esp32-260k', 'model.bin'), '--board', 'host', '--quant', 'tb1', '--kv', 'int4', '--ctx', '32', '-o', path], 'pack');
      return path;
    });
    const vb = await boardWith(image, 'host', `ctx32-${engine}.bin`, engine);
    try {
      const long = 'And God said, Let there be light: and there was light. '.repeat(6); // ~330 bytes, far over 32 tokens
      const a = await cli('chat', '--port', vb.path, '-m', 'generate', '-i', long, '-n', '0', '--json');
      assert.is(a.code, 2, a.err);
      assert.match(a.err, /prompt too long: the prompt is \d+ tokens; the context holds 32/);
      const big = 'x'.repeat(600); // the image's prompt buffer holds 512 bytes
      const b = await cli('chat', '--port', vb.path, '-m', 'generate', '-i', big, '--json');
      assert.is(b.code, 2, b.err);
      assert.match(b.err, /the prompt is 600 bytes; the device's prompt buffer holds 512/);
      const c = await cli('chat', '--port', vb.path, '-m', 'chat', '-i', long, '--json');
      assert.is(c.code, 2, c.err);
      assert.match(c.err, /does not fit a conversation of 32 positions/);
      // still serving
      const d = JSON.parse((await ok(['chat', '--port', vb.path, '-m', 'generate', '-i', PROMPT, '-n', '20', '-t', '0', '--json'], 'chat after the errors')).out);
      assert.match(d.text, /^In the beginning/);
      assert.ok(d.stats.tokens > 0);
    } finally {
      await vb.stop();
    }
  });
}

test('bench --board-decode: the virtual board against run --engine wasm3 on one image, and its memory beside the plan', async () => {
  const image = join(dir, 'case0.efimg'); // packed by the first case
  const r = await ok(['bench', '--board-decode', image, '--steps', '16', '--repeat', '1', '--json'], 'bench');
  const [row] = JSON.parse(r.out);
  assert.is(row.board, 'esp32');
  assert.is(row.tokens, 16);
  assert.ok(row.host.median > 0 && row.device.median > 0 && row.ratio > 0);
  assert.is(row.memory.linear, row.memory.plannedLinear);
  assert.ok(row.memory.wasm3Heap > 0 && row.memory.plannedWasm3Heap > 0);
  const bad = await cli('bench', '--board-decode', join(dir, 'missing.efimg'));
  assert.is(bad.code, 2);
  assert.match(bad.err, /^edge-flash: error: .*missing\.efimg/m);
});

test.run();
