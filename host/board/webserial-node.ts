// The Web Serial port that esptool-js's Transport drives (open, readable, writable, setSignals, getInfo,
// close), made of a `serialport` port under Node: WHATWG streams over the port's events, and
// setSignals({dataTerminalReady, requestToSend}) as the port's DTR and RTS lines, which a USB-UART
// bridge wires to the chip's EN and GPIO0 (the auto-reset into the bootloader). A port without modem
// lines (a pty, some adapters) takes the call as a no-op and says so once: the chip must then be put
// in its bootloader by hand. Every write is bounded: a write that has not drained to the other end in
// WRITE_STALL_MS plus four times its time on the line fails with one line (a chip that stopped reading
// fills the port's buffer, and drain() alone would wait forever).
import { UserError } from '../errors.ts';
import { serialOpenError } from './transport.ts';

const WRITE_STALL_MS = 2000;

type SerialPortClass = typeof import('serialport').SerialPort;
type NodePort = InstanceType<SerialPortClass>;

export interface WebSerialSignals {
  dataTerminalReady?: boolean;
  requestToSend?: boolean;
  break?: boolean;
}

export class NodeWebSerialPort {
  readable: ReadableStream<Uint8Array> | null = null;
  writable: WritableStream<Uint8Array> | null = null;
  private port: NodePort | undefined;
  private info: { usbVendorId?: number; usbProductId?: number } = {};
  private noModemLines = false;
  private signals = { dtr: false, rts: false };
  private baud = 115200;

  constructor(readonly path: string, private onNote: (msg: string) => void = () => {}) {}

  getInfo(): { usbVendorId?: number; usbProductId?: number } {
    return this.info;
  }

  async open(o: { baudRate: number }): Promise<void> {
    let SerialPort: SerialPortClass;
    try {
      ({ SerialPort } = await import('serialport'));
    } catch (e) {
      throw new UserError(`cannot load the serialport package: ${(e as Error).message}`, 'run npm ci');
    }
    // The USB ids pick esptool-js's reset: a chip's own USB-Serial/JTAG port resets another way.
    try {
      const found = (await SerialPort.list()).find((p) => p.path === this.path);
      if (found?.vendorId && found.productId) this.info = { usbVendorId: parseInt(found.vendorId, 16), usbProductId: parseInt(found.productId, 16) };
    } catch { /* no USB ids: the classic reset */ }
    const port = new SerialPort({ path: this.path, baudRate: o.baudRate, autoOpen: false });
    await new Promise<void>((resolve, reject) => port.open((e) => (e ? reject(serialOpenError(this.path, e)) : resolve())));
    this.port = port;
    this.baud = o.baudRate;
    this.readable = new ReadableStream<Uint8Array>({
      start(c) {
        port.on('data', (b: Buffer) => c.enqueue(new Uint8Array(b.buffer, b.byteOffset, b.byteLength)));
        port.on('close', () => { try { c.close(); } catch { /* already closed or cancelled */ } });
        port.on('error', (e) => { try { c.error(e); } catch { /* already closed */ } });
      },
      cancel() { /* the port stays open until close() */ },
    });
    this.writable = new WritableStream<Uint8Array>({
      write: (chunk) => new Promise<void>((resolve, reject) => {
        const ms = Math.round(WRITE_STALL_MS + (4 * chunk.byteLength * 10 * 1000) / this.baud);
        const timer = setTimeout(() => reject(new UserError(`${this.path}: a write of ${chunk.byteLength} bytes did not drain in ${(ms / 1000).toFixed(1)} s: the other end stopped reading`)), ms);
        port.write(Buffer.from(chunk), (e) => {
          if (e) {
            clearTimeout(timer);
            reject(new UserError(`${this.path}: write failed: ${e.message}`));
          } else port.drain(() => { clearTimeout(timer); resolve(); });
        });
      }),
    });
  }

  // Whether DTR/RTS reach the chip: true once set, false on a port without them, undefined before.
  get modemLines(): boolean | undefined {
    return this.noModemLines ? false : this.signalsSet ? true : undefined;
  }
  private signalsSet = false;

  async setSignals(s: WebSerialSignals): Promise<void> {
    if (!this.port) throw new UserError(`${this.path}: the port is closed`);
    if (s.dataTerminalReady !== undefined) this.signals.dtr = s.dataTerminalReady;
    if (s.requestToSend !== undefined) this.signals.rts = s.requestToSend;
    if (this.noModemLines) return;
    const port = this.port;
    await new Promise<void>((resolve, reject) =>
      port.set({ dtr: this.signals.dtr, rts: this.signals.rts, brk: !!s.break }, (e) => {
        if (!e) {
          this.signalsSet = true;
          return resolve();
        }
        if (/Inappropriate ioctl|ENOTTY|EINVAL|not supported/i.test(e.message)) {
          this.noModemLines = true;
          this.onNote(`${this.path} has no DTR/RTS lines (${e.message.replace(/^Error: /, '').replace(/, cannot set$/, '')}): no auto-reset; hold BOOT, tap EN (RST), release BOOT to put the chip in its bootloader`);
          return resolve();
        }
        reject(new UserError(`${this.path}: cannot set DTR/RTS: ${e.message}`));
      }));
  }

  // esptool-js's CHANGE_BAUDRATE: the host side follows in place, without reopening the port.
  async setBaudRate(baud: number): Promise<void> {
    const port = this.port;
    if (!port) throw new UserError(`${this.path}: the port is closed`);
    await new Promise<void>((resolve, reject) => port.update({ baudRate: baud }, (e) => (e ? reject(new UserError(`${this.path}: cannot switch to ${baud} baud: ${e.message}`)) : resolve())));
    this.baud = baud;
  }

  async close(): Promise<void> {
    const port = this.port;
    this.port = undefined;
    this.readable = null;
    this.writable = null;
    // bounded: a port with a write that never drained may not answer close() at once
    if (port?.isOpen) await Promise.race([new Promise<void>((resolve) => port.close(() => resolve())), new Promise<void>((resolve) => setTimeout(resolve, 1000).unref())]);
  }
}
