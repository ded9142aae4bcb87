// `edge-flash monitor --port P [--frames]`: a raw serial monitor (the board's text on stdout, stdin's
// lines to the board); with --frames, frames are decoded into one line each.
import type { Command } from 'commander';
import { parseBaud } from '../board/connect.ts';
import { errorName } from '../board/frames.ts';
import { Decoder } from '../board/framing.ts';
import { openSerial } from '../board/transport.ts';

export function registerMonitor(program: Command): void {
  program
    .command('monitor')
    .description('show what a board sends (and send it what you type); --frames decodes protocol frames')
    .requiredOption('--port <path>', 'serial port, or the virtual board\'s pty')
    .option('--baud <rate>', 'baud rate', '115200')
    .option('--frames', 'decode frames (one line each) instead of printing raw bytes')
    .action(async (o) => {
      const t = await openSerial(o.port, parseBaud(o.baud));
      const dec = new Decoder('to_host', 65535);
      await new Promise<void>((resolve) => {
        t.onData((b) => {
          if (!o.frames) return void process.stdout.write(b);
          for (const e of dec.push(b)) {
            if (e.kind === 'skip') process.stdout.write(Buffer.from(e.bytes).toString('latin1'));
            else if (e.kind === 'error') process.stdout.write(`\n[bad frame: ${errorName(e.code)} type 0x${e.reqType.toString(16)} seq ${e.seq}]\n`);
            else process.stdout.write(`\n[${e.type.name} seq ${e.seq} ${JSON.stringify(e.fields, (_k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString(/TOKEN|LOG|ERROR/.test(e.type.name) ? 'utf8' : 'hex') : v))}]\n`);
          }
        });
        t.onClose(() => resolve());
        process.stdin.on('data', (d) => void t.write(new Uint8Array(d)).catch(() => {}));
        process.stdin.on('end', () => resolve());
        process.on('SIGINT', () => resolve());
      });
      await t.close();
    });
}
