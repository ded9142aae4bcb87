// The bare-metal ESP32-C3 firmware end to end on the chip's real ROM (Espressif's QEMU, ../shared/esp-qemu):
// the emulated C3 in download mode; `flash --rom --no-stub --firmware bare-metal[-aot]` writes the prebuilt
// firmware (build/esp32c3/*.bin, tools/build.mjs) and the kjv demo image through the ROM's serial
// bootloader; the chip restarts from flash (the ROM's flash boot loads the firmware's RAM part, the
// firmware maps its flash part, adopts the image in slot A, self-tests and confirms it); `chat --port` on
// the emulated UART0 gives exactly the text `run IMAGE --engine wasm3` gives, greedy and sampled, for the
// wasm3 and the AOT firmware; INFO's heap and linear memory are printed beside the planner's figures.
// Missing QEMU or firmware: one line, a failure when CI is set. QEMU runs without -icount (quick); every
// emulator is stopped on every path (esp-qemu.ts kills what is left at exit), every wait has a timeout.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { boardByName } from '../host/board/boards.ts';
import { connectBoard } from '../host/board/connect.ts';
import { info } from '../host/board/commands.ts';
import { baremetalBinPath, baremetalLayout, type BaremetalEngine } from '../host/firmware/baremetal.ts';
import { fromRoot } from '../host/paths.ts';
import { findEspQemu, missingPart, startEspQemu, type EspQemu } from './esp-qemu.ts';

const dir = mkdtempSync(join(tmpdir(), 'edge-flash-c3-'));
const board = boardByName('esp32c3');
const layout = baremetalLayout(board);
const MODEL = fromRoot('models', 'kjv-esp32-260k', 'model.bin');
// wasm3 needs ~240 KiB of its own on the C3 (boards/esp32c3.json): the 260K model at context 128 fits
// beside it; the AOT firmware has room for the model's whole context
const CASES: Array<{ engine: BaremetalEngine; ctx: number; pack: string[] }> = [
  { engine: 'wasm3', ctx: 128, pack: [] },
  { engine: 'aot', ctx: 512, pack: ['--engine', 'aot'] },
];
const PROMPT = 'In the beginning';

function cli(args: string[], timeoutMs = 120_000): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const env = { ...process.env };
    delete env.SOURCE_DATE_EPOCH;
    const p = spawn(process.execPath, [fromRoot('bin', 'edge-flash.js'), ...args], { env, stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
    let out = '', err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.on('close', (code) => resolve({ code, out, err }));
  });
}

async function ok(args: string[], what: string, timeoutMs?: number) {
  const r = await cli(args, timeoutMs);
  assert.is(r.code, 0, `${what}: exit ${r.code}\n${r.err}`);
  return r;
}

async function withQemu<T>(mode: 'download' | 'flash-boot', flashFile: string, f: (q: EspQemu) => Promise<T>, fresh = false): Promise<T> {
  const q = await startEspQemu({ chip: 'esp32c3', mode, flashFile, ...(fresh ? { flash: new Uint8Array(layout.flashSize).fill(0xff) } : {}) });
  try {
    return await f(q);
  } finally {
    await q.stop();
  }
}

// The ROM loader in this QEMU on a busy machine sometimes stops answering mid-write (a block sent three
// times without a reply): as a user would, the chip is put in its bootloader again and the flash run
// again on a blank flash, at most three times; what it says each time is kept for the failure message.
async function romFlash(flashFile: string, args: string[]): Promise<string> {
  const said: string[] = [];
  for (let attempt = 1; attempt <= 3; attempt++) {
    const r = await withQemu('download', flashFile, (q) => cli(['flash', '--rom', '--no-stub', '--board', 'esp32c3', '--port', q.pty, ...args], 300_000), true);
    if (r.code === 0) {
      if (attempt > 1) process.stderr.write(`esp32c3: flash --rom took ${attempt} runs (${said.join(' | ')})\n`);
      return r.out;
    }
    said.push(r.err.trim().split('\n').pop() ?? `exit ${r.code}`);
    if (!/stopped answering/.test(r.err)) break;
  }
  throw new Error(`flash --rom failed: ${said.join(' | ')}`);
}

// The chip after a (re)start: the ROM's boot, then the firmware adopts, self-tests and confirms an image
// before it answers (seconds under wasm3 on a busy machine): HELLO until it answers, at most 60 s.
async function boardInfo(q: EspQemu) {
  const until = Date.now() + 60_000;
  for (;;) {
    let c;
    try {
      c = await connectBoard(q.pty, 115200);
    } catch (e) {
      if (Date.now() > until || q.exited()) throw e;
      continue;
    }
    try { return await info(c); } finally { await c.close(); }
  }
}

const missing = (() => {
  const q = findEspQemu('esp32c3');
  if (typeof q === 'string') return q;
  const fw = CASES.map((c) => baremetalBinPath(c.engine)).filter((p) => !existsSync(p));
  return fw.length ? `no prebuilt bare-metal firmware (${fw.join(', ')}): node tools/build.mjs esp32c3 needs riscv64-unknown-elf-gcc` : null;
})();

const s = suite('ESP32-C3 bare metal in the emulator');

for (const c of CASES) {
  s(`${c.engine} firmware: flashed through the ROM, booted from flash, chats with run's tokens (greedy and sampled); INFO beside the plan`, async () => {
    if (missing) return missingPart(`esp32c3 bare metal: ${missing}`);
    const image = join(dir, `kjv-${c.engine}.efimg`);
    await ok(['pack', MODEL, '--board', 'esp32c3', '--quant', 'tb1', '--kv', 'int4', '--ctx', String(c.ctx), ...c.pack, '-o', image], 'pack');
    const flashFile = join(dir, `flash-${c.engine}.bin`);
    const out = await romFlash(flashFile, ['--firmware', c.engine === 'aot' ? 'bare-metal-aot' : 'bare-metal', image]);
    assert.match(out, /firmware \(bare metal, \w+\): \d+ bytes at 0x0 .* MD5 [0-9a-f]{32} matches the flash/);
    assert.match(out, new RegExp(`image \\(slot A\\): \\d+ bytes at 0x${layout.slotA.toString(16)} .* matches the flash`));
    const plan = JSON.parse((await ok(['plan', image, '--board', 'esp32c3', '--engine', c.engine, '--ctx', String(c.ctx), '--json'], 'plan')).out);
    assert.ok(plan.fits, 'the planner says it fits');
    await withQemu('flash-boot', flashFile, async (q) => {
      // the ROM boots the firmware, which adopts, self-tests and confirms the image before its banner
      const i = await boardInfo(q);
      assert.is(i.board, 'esp32c3');
      assert.is(i.bootedSlot, 'A');
      assert.is(i.slots.A, 'confirmed');
      assert.ok(i.appLoaded, 'the app is loaded');
      assert.is(i.linearMemory, plan.totals.linear, 'linear memory is what the plan gave the image');
      process.stderr.write(`esp32c3 ${c.engine}: INFO heap free ${i.heapFree} B, largest block ${i.heapLargest} B, linear memory ${i.linearMemory} B; ` +
        `plan: linear ${plan.totals.linear} B (limit ${plan.limits.linear}), linear + ${c.engine} ${plan.totals.heap} B of ${plan.limits.heap} B (heapTotal ${board.memory.heapTotal} B)\n`);
      // the planner's heap (linear memory, the engine's own, the native stack) is within what the chip has:
      // what it counted beside linear memory and what INFO still reports free add up to no more than heapTotal
      assert.ok(plan.totals.heap + i.heapFree <= board.memory.heapTotal + 16 * 1024, `plan ${plan.totals.heap} + free ${i.heapFree} vs heapTotal ${board.memory.heapTotal}`);
      for (const [what, flags] of [['greedy', ['-t', '0']], ['sampled', ['-t', '1', '-p', '0.9', '-s', '42']]] as const) {
        const want = await ok(['run', image, '--engine', 'wasm3', '-i', PROMPT, '-n', '40', ...flags], `run ${what}`);
        const got = await ok(['chat', '--port', q.pty, '-m', 'generate', '-i', PROMPT, '-n', '40', ...flags], `chat ${what}`);
        assert.is(got.out, want.out, `${c.engine} ${what}: the chip's text is run's`);
        assert.ok(want.out.trim().length > PROMPT.length, `${what}: some text came`);
      }
    });
  });
}

// The runtime's own upload on the chip (docs/protocol.md), over the emulated UART: the flash prepared
// as flash --rom leaves it (the wasm3 firmware at 0x0, image A in slot A, the slot record erased).
s('wasm3 firmware: an upload cut by stopping the emulator completes after a restart; an image whose self-test fails rolls back', async () => {
  if (missing) return missingPart(`esp32c3 bare metal: ${missing}`);
  const a = join(dir, 'up-a.efimg'), b = join(dir, 'up-b.efimg'), big = join(dir, 'up-big.efimg');
  await ok(['pack', MODEL, '--board', 'esp32c3', '--quant', 'tb1', '--kv', 'int4', '--ctx', '128', '-o', a], 'pack A');
  await ok(['pack', MODEL, '--board', 'esp32c3', '--quant', 'tb1', '--kv', 'int4', '--ctx', '96', '-o', b], 'pack B');
  // planned for the AOT firmware's linear memory: under wasm3 model_init cannot have it (the self-test fails)
  await ok(['pack', MODEL, '--board', 'esp32c3', '--quant', 'tb1', '--kv', 'int4', '--ctx', '512', '--engine', 'aot', '-o', big], 'pack big');
  const flash = new Uint8Array(layout.flashSize).fill(0xff);
  flash.set(readFileSync(baremetalBinPath('wasm3')), layout.firmware);
  flash.set(readFileSync(a), layout.slotA);
  const flashFile = join(dir, 'flash-upload.bin');
  writeFileSync(flashFile, flash);
  const shaOf = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
  const state = boardInfo;
  // 1. the upload of B, cut: the emulator stopped once the progress bar moved
  await withQemu('flash-boot', flashFile, async (q) => {
    assert.is((await state(q)).bootedSha256, shaOf(a), 'A boots');
    const child = spawn(process.execPath, [fromRoot('bin', 'edge-flash.js'), 'flash', b, '--port', q.pty], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
    let err = '';
    child.stderr.on('data', (d) => { err += d; });
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    const t0 = Date.now();
    while (!/\d+(\.\d+)? KiB\//.test(err) && !/\b[1-9]\d*%/.test(err) && Date.now() - t0 < 60_000) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 300));
    await q.stop();
    assert.is.not(await exited, 0, `the cut upload failed: ${err.slice(-300)}`);
  });
  // 2. restarted: A still boots; the upload again, to its end; B boots
  await withQemu('flash-boot', flashFile, async (q) => {
    const i = await state(q);
    assert.is(i.bootedSha256, shaOf(a), 'after the cut A still boots');
    assert.is(i.slots.A, 'confirmed');
    await ok(['flash', b, '--port', q.pty], 'flash B after the cut', 180_000);
    const j = await state(q);
    assert.is(j.bootedSha256, shaOf(b), 'B boots');
    assert.is(j.bootedSlot, 'B');
    assert.is(j.slots.B, 'confirmed');
    // 3. an image the board cannot run: its trial boot's self-test fails (model_init has not the linear
    // memory it was planned for), it is marked invalid, and the previous image boots at the next start
    const r = await cli(['flash', big, '--port', q.pty], 180_000);
    assert.is.not(r.code, 0, 'flash says the new image did not boot');
    assert.match(r.err, /booted no image after the reset \(rolled back\?\)/);
    const k = await state(q);
    assert.is(k.slots.A, 'invalid', 'the image that failed its self-test is marked invalid');
    assert.is(k.slots.B, 'confirmed');
  });
  await withQemu('flash-boot', flashFile, async (q) => {
    const i = await state(q);
    assert.is(i.bootedSha256, shaOf(b), 'at the next start B boots again');
    assert.is(i.slots.A, 'invalid');
  });
});

s.after(() => rmSync(dir, { recursive: true, force: true }));
s.run();
