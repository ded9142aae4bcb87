// The native stack a generated firmware needs, measured on its stand-in build (test/esp-idf-stubs/):
// the smallest process stack limit (`ulimit -s`, KiB) at which the firmware boots an image flashed into
// slot A and completes a greedy chat. A proxy for the board's main task stack: it includes libc's start-up
// and the stand-ins, and x86's call frames are not Xtensa's windowed ones.
//   npx tsx tools/firmware-stack.ts FIRMWARE PROJECT BOARD IMAGE [STEPS]
// FIRMWARE: the stand-in build (e.g. boards/runtime/build/firmware/esp32-aot/host-32/firmware after
// `node test/run.mjs firmware`), PROJECT: its generated project, IMAGE: an image for BOARD.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import { boardByName } from '../host/board/boards.ts';
import { Client } from '../host/board/client.ts';
import { chat } from '../host/board/commands.ts';
import { StreamTransport } from '../host/board/transport.ts';
import { firmwareLayout, SLOT_PARTITIONS, STATE_PARTITION } from '../host/firmware/project.ts';

const [exe, project, boardName, image, stepsArg] = process.argv.slice(2);
if (!image) {
  process.stderr.write('usage: npx tsx tools/firmware-stack.ts FIRMWARE PROJECT BOARD IMAGE [STEPS]\n');
  process.exit(2);
}
const board = boardByName(boardName);
const steps = Number(stepsArg ?? 64);
const dir = mkdtempSync(join(tmpdir(), 'edge-flash-stack-'));

// flash as `idf.py flash` of a project generated with --image writes it: the image in slot A, the slot record erased
const layout = firmwareLayout(board);
const flashBytes = new Uint8Array(board.flash.size).fill(0xff);
flashBytes.set(readFileSync(image), layout.partitions.find((p) => p.name === SLOT_PARTITIONS[0])!.offset);
const at = layout.partitions.find((p) => p.name === STATE_PARTITION)!.offset;
flashBytes.fill(0xff, at, at + 0x2000);

// one run under `ulimit -s kib`: whether the chat completed with `steps` tokens
async function runsWith(kib: number): Promise<boolean> {
  const file = join(dir, `flash-${kib}.bin`);
  writeFileSync(file, flashBytes);
  const proc = spawn('sh', ['-c', `ulimit -s ${kib} && exec "$0"`, exe], {
    env: { ...process.env, EF_STUB_PARTITIONS: join(project, 'partitions.csv'), EF_STUB_FLASH: file, EF_STUB_FLASH_SIZE: String(board.flash.size), EF_STUB_PSRAM: String(board.memory.psram ?? 0) },
    stdio: ['pipe', 'pipe', 'ignore'],
  });
  const exited = new Promise<void>((r) => proc.on('exit', () => r()));
  const client = new Client(new StreamTransport(`firmware at ${kib} KiB`, Duplex.from({ readable: proc.stdout!, writable: proc.stdin! })), 115200);
  try {
    await client.hello();
    const r = await chat(client, { prompt: 'In the beginning', seed: 1, temperature: 0, topP: 0.9, steps, mode: 'generate', newConversation: true }).done;
    return r.tokens.length > 0 && r.stats.reason === 'steps';
  } catch {
    return false;
  } finally {
    await client.close().catch(() => {});
    proc.kill();
    await exited;
  }
}

// a firmware that dies of its stack limit leaves the client's pending requests to fail after the run
process.on('unhandledRejection', (e) => {
  if (!(e instanceof Error && /the board went away/.test(e.message))) throw e;
});

// the smallest limit in 4 KiB steps that works, by bisection between 4 KiB and 1 MiB
let lo = 4, hi = 1024;
if (!(await runsWith(hi))) {
  process.stderr.write(`firmware-stack: ${exe} does not complete the chat even at ${hi} KiB\n`);
  process.exit(1);
}
while (hi - lo > 4) {
  const mid = Math.round((lo + hi) / 8) * 4;
  if (await runsWith(mid)) hi = mid;
  else lo = mid;
}
rmSync(dir, { recursive: true, force: true });
process.stdout.write(`${exe}: a ${steps}-position chat completes with ulimit -s ${hi} KiB, not ${lo} KiB\n`);
