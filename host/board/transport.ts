// The transport: bytes to and from a board, nothing more. A serial port (a tty, a USB CDC device or the
// virtual board's pty, all opened by the `serialport` package) or any duplex stream (tests).
import { statSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import { UserError } from '../errors.ts';

export interface Transport {
  readonly name: string;
  write(bytes: Uint8Array): Promise<void>;
  onData(fn: (bytes: Uint8Array) => void): void;
  onClose(fn: (why: string) => void): void;
  close(): Promise<void>;
  // A hex dump of the wire with timestamps (--trace), on stderr.
  trace?: boolean;
}

function traceLine(dir: '>' | '<', bytes: Uint8Array): void {
  const t = (performance.now() / 1000).toFixed(3).padStart(9);
  for (let i = 0; i < bytes.byteLength; i += 32) {
    process.stderr.write(`${t} ${dir} ${Buffer.from(bytes.subarray(i, i + 32)).toString('hex').replace(/(..)/g, '$1 ').trim()}\n`);
  }
}

// A write to a port that closed or failed (the cable, the board, or a virtual board's link drop).
export class PortGoneError extends UserError {
  constructor(name: string, readonly why: string) {
    super(`${name}: the board went away (${why})`, 'is it still connected? run the command again to continue');
    this.name = 'PortGoneError';
  }
}

// A transport over a duplex stream: a socket, or a pair in one process.
export class StreamTransport implements Transport {
  trace = false;
  private closeFns: Array<(why: string) => void> = [];
  private closed = false;

  constructor(readonly name: string, private stream: Duplex) {
    const end = (why: string) => {
      if (this.closed) return;
      this.closed = true;
      for (const f of this.closeFns) f(why);
    };
    stream.on('close', () => end('closed'));
    stream.on('end', () => end('closed by the other end'));
    stream.on('error', (e) => end(e.message));
  }

  write(bytes: Uint8Array): Promise<void> {
    if (this.trace) traceLine('>', bytes);
    if (this.closed) return Promise.reject(new PortGoneError(this.name, 'the port is closed'));
    return new Promise((resolve, reject) => this.stream.write(bytes, (e) => (e ? reject(new PortGoneError(this.name, `write failed: ${e.message}`)) : resolve())));
  }

  onData(fn: (bytes: Uint8Array) => void): void {
    this.stream.on('data', (b: Buffer) => {
      if (this.trace) traceLine('<', b);
      fn(new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
    });
  }

  onClose(fn: (why: string) => void): void {
    this.closeFns.push(fn);
  }

  async close(): Promise<void> {
    this.closed = true;
    // A SerialPort is closed through its own close(): destroy() alone can leave the port open, its
    // poller keeping the process alive after the verb is done (seen on a pty fed in small pieces)
    const port = this.stream as Duplex & { isOpen?: boolean; close?: (cb: (e?: Error | null) => void) => void };
    if (port.isOpen && typeof port.close === 'function') {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 1000);
        port.close!(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    this.stream.destroy();
  }
}

// Opens a serial port (a tty such as /dev/ttyUSB0, COM3, or a pty path such as the virtual board's)
// in raw mode at `baud`. The native binding loads only here, so verbs without a port never need it.
export async function openSerial(path: string, baud: number): Promise<Transport> {
  let SerialPort: typeof import('serialport').SerialPort;
  try {
    ({ SerialPort } = await import('serialport'));
  } catch (e) {
    throw new UserError(`cannot load the serialport package: ${(e as Error).message}`, 'run npm ci');
  }
  notAPort(path);
  const port = new SerialPort({ path, baudRate: baud, autoOpen: false });
  await new Promise<void>((resolve, reject) => port.open((e) => (e ? reject(serialOpenError(path, e)) : resolve())));
  return new SerialTransport(path, port);
}

// A serial port's close waits for the binding to close the descriptor (a bounded wait): destroy()
// alone could leave the binding's poller holding the process open after a verb finished.
class SerialTransport extends StreamTransport {
  constructor(name: string, private port: import('serialport').SerialPort) {
    super(name, port as unknown as Duplex);
  }

  override async close(): Promise<void> {
    if (this.port.isOpen) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 1000);
        this.port.close(() => { clearTimeout(t); resolve(); });
      });
    }
    await super.close();
  }
}

// A path that exists but is a plain file, a directory or a FIFO is no port: said before the serial
// library tries a baud rate on it ("Inappropriate ioctl for device").
function notAPort(path: string): void {
  let st: import('node:fs').Stats;
  try {
    st = statSync(path);
  } catch {
    return; // missing (the open says so) or not a file path at all (COM3)
  }
  if (st.isCharacterDevice()) return;
  const what = st.isFile() ? 'a plain file' : st.isDirectory() ? 'a directory' : st.isFIFO() ? 'a FIFO' : st.isSocket() ? 'a socket' : 'not a device';
  throw new UserError(`cannot open ${path}: not a serial port (${what})`, 'see `edge-flash ports`; `edge-flash sim` prints a virtual board\'s pty');
}

// Why a port did not open, in words, with what to do about it.
export function serialOpenError(path: string, e: Error): UserError {
  const why = /ENOENT|No such file/.test(e.message) ? 'no such port'
    : /ENOTTY|Inappropriate ioctl/.test(e.message) ? 'not a serial port (a device that takes no baud rate, such as /dev/null)'
    : /EACCES|Permission denied/.test(e.message) ? 'permission denied'
      : /EBUSY|Resource busy|lock/i.test(e.message) ? 'the port is busy (another program has it open?)' : e.message;
  const hint = /permission/.test(why) ? 'on Linux add yourself to the dialout group: sudo usermod -aG dialout $USER, then log in again'
    : why === 'no such port' || why.startsWith('not a serial port') ? 'see `edge-flash ports`' : undefined;
  return new UserError(`cannot open ${path}: ${why}`, hint);
}
