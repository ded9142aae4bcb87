// `edge-flash demo` (and `npm start`): the whole path on this machine with no board attached. It starts
// the virtual board (the C device runtime on a pty, host/board/sim.ts), packs the bundled demo
// model for the board it plays, flashes it over the pty with the progress bar, chats with it (a
// scripted prompt, then interactive when stdin is a terminal), prints the measured tok/s beside the
// planner's estimate for a real ESP32 and ESP32-S3, and stops the virtual board on every way out.
import type { Command } from 'commander';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { boardByName } from '../board/boards.ts';
import type { Client } from '../board/client.ts';
import { chat, formatStats, info, type ChatSettings } from '../board/commands.ts';
import { connectBoard } from '../board/connect.ts';
import { startVirtualBoard, type VirtualBoard } from '../board/sim.ts';
import { UserError } from '../errors.ts';
import { imageChoices } from '../image/options.ts';
import { deviceApp, packModel } from '../image/pack.ts';
import { fmtBytes, fmtRate, planBoard } from '../image/plan.ts';
import { applyChoice } from './pack.ts';
import { loadSource } from '../image/source.ts';
import { measureHostSpeed } from '../image/speed.ts';
import { log } from '../log.ts';
import { fromRoot } from '../paths.ts';
import { packageVersion } from '../version.ts';
import { interactiveChat } from './chat.ts';
import { flashWithProgress } from './flash.ts';
import { intFlag } from './flags.ts';

export const DEMO_MODEL = fromRoot('models', 'kjv-esp32-260k', 'model.bin');
export const DEMO_PROMPT = 'In the beginning God created';
const VIRTUAL_BAUD = 921600;                          // a pty ignores it (the client's timeouts scale with it)

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('the whole path with no board: a virtual board on a pty, pack the demo model with the formats the planner chooses, flash it, chat, measured tok/s beside the planner\'s estimate for the board it plays')
    .option('--board <name>', 'board profile the virtual board plays (the image is packed for it)', 'esp32')
    .option('-i <prompt>', 'the scripted prompt', DEMO_PROMPT)
    .option('-n <steps>', 'positions of the scripted reply, prompt included', intFlag('-n', { min: 1, max: 65535 }), 96)
    .option('-s <seed>', 'seed of the scripted reply', intFlag('-s', { min: 1, max: 2 ** 32 - 1 }), 42)
    .option('--no-interactive', 'stop after the scripted reply even when stdin is a terminal')
    .option('--json', 'one JSON object at the end (the reply, measured and estimated tok/s, memory)')
    .addHelpText('after', `
Nothing is needed but this package: the virtual board is the same C runtime a Raspberry Pi runs
(boards/runtime/, built by npm install), serving the serial protocol on a pseudo-terminal. Its slot
file lives in a temporary directory and is removed at exit; the board stops on exit, on Ctrl-C and
on an error. A real board: see the README, "The journey".

Examples:
  edge-flash demo
  npm start
  edge-flash demo --no-interactive -i "And God said" -n 64`)
    .action(async (o) => {
      const board = boardByName(o.board);
      const dir = mkdtempSync(join(tmpdir(), 'edge-flash-demo-'));
      let vb: VirtualBoard | undefined;
      const boardLog: string[] = [];
      let client: Client | undefined;
      const stop = async () => {
        await client?.close().catch(() => {});
        client = undefined;
        await vb?.stop();
        vb = undefined;
        rmSync(dir, { recursive: true, force: true });
      };
      const onSignal = () => void stop().then(() => process.exit(130));
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        log(`demo: starting the virtual board (${board.name}: the C runtime on a pty)`);
        vb = await startVirtualBoard({ board, slotFile: join(dir, 'slots.bin'), link: join(dir, 'board.tty'), log: (l) => boardLog.push(l) });
        log(`demo: virtual board on ${vb.path}`);

        
        const src = loadSource(DEMO_MODEL);
        const ch = imageChoices({ board: board.name });
        // the formats and context `pack` chooses with no flags (one line on stderr says which and why)
        applyChoice('demo', src.model, ch, {});
        const packed = packModel(src.model, { ...ch, app: deviceApp(), created: null, tool: `edge-flash ${packageVersion()}`, source: src.label });
        log(`demo: packed ${DEMO_MODEL} for ${board.name}`);
        const imagePath = join(dir, 'demo.efimg');
        writeFileSync(imagePath, packed.bytes);
        log(`demo: image ${fmtBytes(packed.bytes.byteLength)}, ctx ${packed.image.config.ctx}, linear memory ${fmtBytes(packed.plan.linear)} planned`);

        client = await connectBoard(vb.path, VIRTUAL_BAUD);
        const flashed = await flashWithProgress(client, packed.bytes, { port: vb.path, baud: VIRTUAL_BAUD, trace: false, reset: true });
        // a pty moves bytes as fast as both ends go: no line rate to compare with (see `edge-flash bench` for the throttled link)
        log(`demo: flashed ${packed.bytes.byteLength} bytes to ${flashed.board.board} slot ${flashed.slot} in ${(flashed.upload.ms / 1000).toFixed(2)} s, verified SHA-256 ${flashed.sha256.slice(0, 16)}, booted`);
        if (client.closed) client = await connectBoard(vb.path, VIRTUAL_BAUD);

        const base: Omit<ChatSettings, 'prompt' | 'newConversation'> = { seed: o.s, temperature: 1.0, topP: 0.9, steps: o.n, mode: 'generate' };
        log(`demo: > ${o.i}`);
        const reply = await chat(client, { ...base, prompt: o.i, newConversation: true }, o.json ? undefined : (t) => process.stdout.write(t)).done;
        if (!o.json) process.stdout.write('\n');
        log(formatStats(reply.stats, { steps: base.steps, context: reply.context }));
        const board2 = await info(client);

        // the planner's estimate for the board it plays (the plan of the image flashed), as `plan` gives it
        const speed = await measureHostSpeed(packed.plan.request.model, ch.kv, ch.act, undefined, ch.topk);
        const est = 'error' in speed ? null : planBoard({ ...packed.plan.request, speed });
        const estimates: Record<string, number | null> = { [board.name]: est?.tokPerSec?.value ?? null };
        const measured = reply.stats.tokPerS;
        const fmt = (x: number | null) => (x === null ? '-' : x.toFixed(1));
        const why = 'error' in speed ? `no estimate: ${speed.error}` : est!.tokPerSec ? `~${fmtRate(est!.tokPerSec.value)} tok/s (${est!.tokPerSec.basis.split(':')[0]}; plan ${board.name} has the basis)` : est!.speedNote!;
        log(`demo: decode ${fmt(measured)} tok/s measured on the virtual board (this machine); ${board.title.split(' (')[0]}: ${why}`);
        log(`demo: device memory: linear ${fmtBytes(board2.linearMemory)} (planned ${fmtBytes(packed.plan.linear)}), wasm3 heap planned ${fmtBytes(packed.plan.heap)}`);
        if (o.json) {
          process.stdout.write(JSON.stringify({
            board: board.name, pty: vb.path, image: { bytes: packed.bytes.byteLength, sha256: flashed.sha256, ctx: packed.image.config.ctx },
            flash: { ms: flashed.upload.ms, bytes: packed.bytes.byteLength },
            reply: { prompt: o.i, text: reply.text, tokens: reply.tokens, stats: reply.stats },
            tok_s: { measured, estimate: estimates },
            memory: { linear: board2.linearMemory, planned_linear: packed.plan.linear, planned_wasm3_heap: packed.plan.heap },
          }) + '\n');
        }
        if (o.interactive !== false && process.stdin.isTTY && !o.json) {
          log('demo: your turn (chat turns)');
          await interactiveChat(client, { ...base, mode: 'chat', steps: 0, seed: 0 }, { port: vb.path, image: { path: `the demo image (${DEMO_MODEL})`, image: packed.image, sha256: flashed.sha256 } });
        }
      } catch (e) {
        if (vb && !(e instanceof UserError)) log(`demo: the virtual board's log:\n${boardLog.join('\n')}`);
        throw e;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        await stop();
      }
    });
}
