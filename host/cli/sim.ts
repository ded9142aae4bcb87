// `edge-flash sim [--board B] [--slot-file F] [--baud B] [--faults drop=R,flip=R,disconnect-at=N%,seed=S]
// [--engine wasm3|aot]`: starts the virtual board (host/board/sim.ts) on a pty, prints the pty's stable
// path on stdout and serves until stopped (Ctrl-C). Its line runs at --baud and injects the faults asked
// for; --engine aot runs the runtime with the app compiled ahead of time (edge-flash-runtime-aot).
import type { Command } from 'commander';
import { basename, dirname, join } from 'node:path';
import { tmpdir } from 'node:os';
import { boardByName } from '../board/boards.ts';
import { parseBaud } from '../board/connect.ts';
import { startVirtualBoard, virtualCapacity } from '../board/sim.ts';
import { UserError } from '../errors.ts';
import { ENGINES, fmtBytes, linearLimit } from '../image/plan.ts';
import { deviceFootprint } from '../image/pack.ts';
import { log } from '../log.ts';
import { choiceFlag, parseFaults, type Faults } from './flags.ts';

// The pty's stable name beside the slot file: one virtual board, one pair of names.
export function linkFor(slotFile: string): string {
  return join(dirname(slotFile), `${basename(slotFile).replace(/\.bin$/, '')}.tty`);
}

export function registerSim(program: Command): void {
  program
    .command('sim')
    .description('start the virtual board (the C runtime on a pty); prints the pty path, serves until stopped')
    .option('--board <name>', 'board profile it plays (id, slot size, erase block, linear memory: an image that would not run on the board does not run here)', 'esp32')
    .option('--slot-file <path>', 'its flash (created if missing); the pty link is made beside it (.tty)')
    .option('--baud <rate>', 'run the line at this baud rate, 10 bits a byte each way (default: as fast as the pty)', (v) => parseBaud(v))
    .option('--faults <list>', 'inject faults: drop=R,flip=R (per-byte probabilities), disconnect-at=N% (of an upload, once per image), seed=S', (v) => parseFaults(v))
    .option('--engine <name>', 'the runtime it runs: wasm3 (default) or aot (edge-flash-runtime-aot, the app compiled ahead of time: only images packed with the build/device.wasm it was built from)', choiceFlag('--engine', ENGINES), 'wasm3')
    .addHelpText('after', `
The path printed is a symlink to the pty; after a link drop (disconnect-at) it points at a new pty, so
running flash again on the same path resumes the upload. Like a UART it never sees a host leave: flash and
chat end their session with BYE, so a terminal on the same path (picocom PATH) gets the banner on Enter.
One virtual board per slot file: a second sim on it refuses, naming the first one's pid. Examples:
  edge-flash sim --board esp32 --baud 921600
  edge-flash sim --faults drop=1e-5,flip=1e-5,seed=7
  edge-flash sim --faults disconnect-at=50%      (then: edge-flash flash IMAGE --port PATH, twice)
  edge-flash sim --engine aot                    (after make -C boards/runtime aot)`)
    .action(async (o) => {
      const b = boardByName(o.board);
      const slotFile: string = o.slotFile ?? join(tmpdir(), `edge-flash-sim-${b.name}.bin`);
      const faults: Faults | undefined = o.faults;
      const vb = await startVirtualBoard({
        board: b, slotFile, link: linkFor(slotFile), baud: o.baud ?? null, faults, engine: o.engine,
        log: (l) => log(l),
      });
      process.stdout.write(`${vb.path}\n`);
      const line = o.baud ? `${o.baud} baud` : 'unthrottled';
      const f = faults ? `, faults drop=${faults.drop} flip=${faults.flip}${faults.disconnectAt !== null ? ` disconnect-at=${faults.disconnectAt}%` : ''} seed=${faults.seed}` : '';
      const cap = virtualCapacity(b);
      log(`sim: ${b.name}${o.engine === 'aot' ? ' (the AOT runtime)' : ''} on ${vb.path} (${vb.events[0]?.pty}), ${line}${f}; slots of ${(cap / 1048576).toFixed(2)} MiB${cap < b.imageCapacity ? ' (a file board\'s slot, capped in the virtual board)' : ''} in ${slotFile}, linear memory up to ${fmtBytes(linearLimit({ board: b, app: deviceFootprint(), engine: o.engine }))} as on the board; Ctrl-C stops it`);
      let stopping = false;
      const stop = () => {
        stopping = true;
        void vb.stop();
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
      const code = await vb.exited;
      const s = vb.events.find((e) => e.event === 'stopped');
      // the line's counts, as the manual describes them: with faults, what they did to the bytes
      if (s && faults) log(`sim: line: ${s.rx_bytes} bytes in (${s.rx_dropped} dropped, ${s.rx_flipped} flipped), ${s.tx_bytes} out (${s.tx_dropped} dropped, ${s.tx_flipped} flipped)`);
      else if (s) log(`sim: line: ${s.rx_bytes} bytes in, ${s.tx_bytes} out; stopped`);
      if (!stopping && code !== 0) throw new UserError(`the virtual board exited with status ${code}`);
    });
}
