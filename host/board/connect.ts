// Opens a board for a CLI verb: the port at a baud rate, then HELLO (a silent board is named in 2 s).
// Every session it opens is ended with BYE (docs/protocol.md section 1) when the verb closes it, on an
// error, and on Ctrl-C (SIGINT) or SIGTERM: the runtime is undecided again and a person's terminal on the
// same port works right after.
import { BoardError, Client } from './client.ts';
import { boards, type BoardProfile } from './boards.ts';
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
    // a silent port: the profiles' other line rates are the ones to try
    if (e instanceof BoardError && e.code === null && /^no answer/.test(e.message)) throw new BoardError(e.message, null, `${e.hint ?? ''}${otherRates(baud)}`);
    throw e;
  }
  return c;
}

export function parseBaud(v: string | undefined, dflt = DEFAULT_BAUD): number {
  return v === undefined ? dflt : parseNumber('--baud', v, { integer: true, min: 300, max: 12_000_000, what: 'a baud rate' });
}

// The rate when neither --baud nor a board says one: ESP-IDF's default console rate, and the Raspberry
// Pi runtimes' (their profiles' serial.baud).
export const DEFAULT_BAUD = 115200;

// The rate a verb opens a board's port at: --baud as given; else the profile's serial.baud where the board
// is known (--board, or the board the image names; a virtual board's 0 means unpaced, so the default);
// else DEFAULT_BAUD. `from` says which, for the verb's first line.
export function boardBaud(given: string | undefined, board?: BoardProfile): { baud: number; from: string } {
  if (given !== undefined) return { baud: parseBaud(given), from: '--baud' };
  if (board && board.serial.baud > 0) return { baud: board.serial.baud, from: `the ${board.name} profile's rate` };
  return { baud: DEFAULT_BAUD, from: 'the default' };
}

// ' try --baud R (B1, B2: their profiles' rate)' for each rate a UART board's profile has other than `baud`
// (over USB the rate is nominal: any works).
export function otherRates(baud: number): string {
  const by = new Map<number, string[]>();
  for (const b of boards()) if (b.serial.transport === 'uart' && b.serial.baud > 0 && b.serial.baud !== baud) by.set(b.serial.baud, [...(by.get(b.serial.baud) ?? []), b.name]);
  if (baud !== DEFAULT_BAUD && !by.has(DEFAULT_BAUD)) by.set(DEFAULT_BAUD, ['the default']);
  return [...by].map(([r, names]) => `; try --baud ${r} (${names.join(', ')}${names[0] === 'the default' ? '' : names.length > 1 ? ': their profiles\' rate' : ': its profile\'s rate'})`).join('');
}
