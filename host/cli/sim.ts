// `edge-flash sim [--board B] [--slot-file F]`: starts the virtual board (the C runtime built for this
// machine, boards/runtime/build/edge-flash-runtime) on a pty, prints the pty's path on stdout and
// serves until stopped. Fault injection (--faults) and the baud throttle are not implemented yet.
import type { Command } from 'commander';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { boardByName } from '../board/boards.ts';
import { UserError } from '../errors.ts';
import { fromRoot } from '../paths.ts';
import { runtimeArgs } from '../board/virtual.ts';

export const RUNTIME_BIN = fromRoot('boards', 'runtime', 'build', 'edge-flash-runtime');

export function registerSim(program: Command): void {
  program
    .command('sim')
    .description('start the virtual board (the C runtime on a pty); prints the pty path, serves until stopped')
    .option('--board <name>', 'board profile it plays', 'esp32')
    .option('--slot-file <path>', 'its flash (created if missing)')
    .action(async (o) => {
      const b = boardByName(o.board);
      if (!existsSync(RUNTIME_BIN)) throw new UserError(`the virtual board is not built (${RUNTIME_BIN} is missing)`, 'run npm run build (needs cc and make)');
      const slot = o.slotFile ?? join(tmpdir(), `edge-flash-sim-${b.name}.bin`);
      // the board profile's arguments, as the demo and the tests start it (host/board/virtual.ts)
      const child = spawn(RUNTIME_BIN, [...runtimeArgs(b, slot), '--serve', '--pty'], { stdio: ['ignore', 'pipe', 'inherit'] });
      let buf = '';
      child.stdout.on('data', (d: Buffer) => {
        buf += d.toString();
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          try {
            const ev = JSON.parse(line);
            if (ev.event === 'pty') process.stdout.write(`${ev.pty}\n`);
            else process.stderr.write(line + '\n');
          } catch {
            process.stderr.write(line + '\n');
          }
        }
      });
      const stop = () => child.kill('SIGTERM');
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
      const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
      if (code !== 0 && code !== null) throw new UserError(`the virtual board exited with status ${code}`);
    });
}
