// `edge-flash monitor --port P [--frames]`: a raw serial monitor (the board's text on stdout, what is
// typed to the board); with --frames, frames are decoded into one line each. On a terminal, stdin is
// raw, as picocom and miniterm run it: each key goes to the board as typed (Enter as CR, Ctrl-C as
// 0x03) and only the board echoes it, so a line shows once. Ctrl-] quits, and so does Ctrl-D at the
// start of a line; from a pipe, the end of input quits too.
import type { Command } from 'commander';
import { boardBaud } from '../board/connect.ts';
import { boardByName } from '../board/boards.ts';
import { errorName } from '../board/frames.ts';
import { Decoder } from '../board/framing.ts';
import { openSerial } from '../board/transport.ts';
import { log } from '../log.ts';

export const QUIT_KEY = 0x1d;  // Ctrl-]
export const EOF_KEY = 0x04;   // Ctrl-D

// What typed bytes do: the bytes to send, and whether a quit key came (and where the sending stops).
export class KeyFilter {
  private lineEmpty = true;
  feed(bytes: Uint8Array): { send: Uint8Array; quit: boolean } {
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i];
      if (b === QUIT_KEY || (b === EOF_KEY && this.lineEmpty)) return { send: bytes.subarray(0, i), quit: true };
      if (b === 13 || b === 10 || b === 3) this.lineEmpty = true;
      else if (b >= 0x20 && b !== 0x7f) this.lineEmpty = false;
    }
    return { send: bytes, quit: false };
  }
}

export function registerMonitor(program: Command): void {
  program
    .command('monitor')
    .description('show what a board sends (and send it what you type); --frames decodes protocol frames')
    .requiredOption('--port <path>', 'serial port, or the virtual board\'s pty')
    .option('--baud <rate>', 'baud rate (default: the board\'s profile rate (serial.baud, `edge-flash boards`) where the board is known: --board; otherwise 115200)')
    .option('--board <name>', 'the board on the port, for its serial rate (see `edge-flash boards`)')
    .option('--frames', 'decode frames (one line each) instead of printing raw bytes')
    .addHelpText('after', '\nKeys go to the board as typed (Enter, Backspace, Ctrl-C too); Ctrl-] quits, as does Ctrl-D at the start of a line.')
    .action(async (o) => {
      const { baud, from } = boardBaud(o.baud, o.board === undefined ? undefined : boardByName(o.board));
      const t = await openSerial(o.port, baud);
      const stdin = process.stdin;
      const tty = !!stdin.isTTY;
      // raw before the first word, so that no key typed after it is echoed by the terminal too
      if (tty) stdin.setRawMode(true);
      log(`monitor: ${o.port} at ${baud} baud (${from}); Ctrl-] quits (or Ctrl-D at the start of a line)${tty ? '' : ', as does the end of input'}`);
      const dec = new Decoder('to_host', 65535);
      const keys = new KeyFilter();
      let why = '';
      await new Promise<void>((resolve) => {
        const done = (w: string) => {
          why ||= w;
          resolve();
        };
        t.onData((b) => {
          if (!o.frames) return void process.stdout.write(b);
          for (const e of dec.push(b)) {
            if (e.kind === 'skip') process.stdout.write(Buffer.from(e.bytes).toString('latin1'));
            else if (e.kind === 'error') process.stdout.write(`\n[bad frame: ${errorName(e.code)} type 0x${e.reqType.toString(16)} seq ${e.seq}]\n`);
            else process.stdout.write(`\n[${e.type.name} seq ${e.seq} ${JSON.stringify(e.fields, (_k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString(/TOKEN|LOG|ERROR/.test(e.type.name) ? 'utf8' : 'hex') : v))}]\n`);
          }
        });
        t.onClose((w) => done(`the port closed (${w})`));
        stdin.on('data', (d: Buffer) => {
          const { send, quit } = keys.feed(new Uint8Array(d));
          if (send.length) void t.write(send).catch(() => {});
          if (quit) done('quit');
        });
        stdin.on('end', () => done('end of input'));
        process.once('SIGINT', () => done('interrupted'));
      });
      if (tty) stdin.setRawMode(false);
      stdin.pause();
      stdin.destroy();
      await t.close();
      log(`\nmonitor: ${why}: closed ${o.port}`);
    });
}
