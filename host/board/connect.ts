// Opens a board for a CLI verb: the port at a baud rate, then HELLO (a silent board is named in 2 s).
import { Client } from './client.ts';
import { openSerial } from './transport.ts';
import { parseNumber } from '../cli/flags.ts';

export async function connectBoard(port: string, baud: number, trace = false): Promise<Client> {
  const t = await openSerial(port, baud);
  t.trace = trace;
  const c = new Client(t, baud);
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
