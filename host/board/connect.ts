// Opens a board for a CLI verb: the port at a baud rate, then HELLO (a silent board is named in 2 s).
// Every session it opens is ended with BYE (docs/protocol.md section 1) when the verb closes it, on an
// error, and on Ctrl-C (SIGINT) or SIGTERM: the runtime is undecided again and a person's terminal on the
// same port works right after.
import { Client } from './client.ts';
import { openSerial } from './transport.ts';
import { parseNumber } from '../cli/flags.ts';

const open = new Set<Client>();
let signalsOn = false;

// Ctrl-C or SIGTERM while sessions are open: BYE on each (bounded: TIMEOUTS.byeTries * byeTry), then exit
// 130 (128 + SIGINT) or 143, unless the verb handles the signal itself (demo stops its virtual board).
function onSignal(sig: NodeJS.Signals): void {
  const mine = process.listenerCount(sig) === 1;
  void Promise.all([...open].map((c) => c.end())).then(() => {
    if (!mine) return;
    process.stderr.write(`edge-flash: interrupted (${sig}): the session with the board was ended\n`);
    process.exit(sig === 'SIGINT' ? 130 : 143);
  });
}

function track(c: Client): void {
  open.add(c);
  if (!signalsOn) {
    signalsOn = true;
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
  const close = c.close.bind(c);
  c.close = async () => {
    try {
      await close();
    } finally {
      open.delete(c);
      if (open.size === 0 && signalsOn) {
        signalsOn = false;
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    }
  };
}

export async function connectBoard(port: string, baud: number, trace = false): Promise<Client> {
  const t = await openSerial(port, baud);
  t.trace = trace;
  const c = new Client(t, baud);
  track(c);
  try {
    await c.hello();
  } catch (e) {
    await c.close();
    throw e;
  }
  return c;
}

export function parseBaud(v: string | undefined, dflt = 115200): number {
  return v === undefined ? dflt : parseNumber('--baud', v, { integer: true, min: 300, max: 12_000_000, what: 'a baud rate' });
}
