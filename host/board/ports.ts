// Serial ports on this machine. On Linux from sysfs (serialport's own list needs udevadm, which
// containers often lack); elsewhere from serialport.
import { existsSync, readFileSync, readdirSync, realpathSync } from 'node:fs';
import { join } from 'node:path';

export interface PortInfo { path: string; vendorId: string | null; productId: string | null; description: string | null; guess: string | null }

// USB vendor/product ids of the bridges ESP32 boards carry and of a Pi in gadget mode.
const KNOWN: Array<[string, string | null, string]> = [
  ['303a', null, 'ESP32 (Espressif USB-Serial/JTAG or CDC)'],
  ['10c4', 'ea60', 'ESP32 board (CP210x bridge)'],
  ['1a86', null, 'ESP32 board (CH340/CH9102 bridge)'],
  ['0403', null, 'ESP32 board (FTDI bridge)'],
  ['1d6b', '0104', 'Raspberry Pi USB gadget (CDC ACM)'],
  ['0525', 'a4a7', 'Raspberry Pi USB gadget (g_serial)'],
];

export function guessBoard(vid: string | null, pid: string | null): string | null {
  if (!vid) return null;
  const k = KNOWN.find(([v, p]) => v === vid.toLowerCase() && (p === null || p === pid?.toLowerCase()));
  return k ? k[2] : null;
}

const read = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8').trim() : null);

export async function listPorts(): Promise<PortInfo[]> {
  if (process.platform === 'linux') {
    const out: PortInfo[] = [];
    const base = '/sys/class/tty';
    for (const name of existsSync(base) ? readdirSync(base).sort() : []) {
      const dev = join(base, name, 'device');
      if (!existsSync(dev)) continue;
      // walk up from the tty's device to the USB device that has idVendor
      let d = realpathSync(dev), vid: string | null = null, pid: string | null = null, desc: string | null = null;
      for (let i = 0; i < 4 && d !== '/'; i++, d = join(d, '..')) {
        vid = read(join(d, 'idVendor'));
        if (vid) {
          pid = read(join(d, 'idProduct'));
          desc = [read(join(d, 'manufacturer')), read(join(d, 'product'))].filter(Boolean).join(' ') || null;
          break;
        }
      }
      if (!vid && /^ttyS\d+$/.test(name) && !existsSync(join(dev, 'driver'))) continue; // legacy ports with no UART behind them
      out.push({ path: `/dev/${name}`, vendorId: vid, productId: pid, description: desc, guess: guessBoard(vid, pid) });
    }
    return out;
  }
  const { SerialPort } = await import('serialport');
  return (await SerialPort.list()).map((p) => ({
    path: p.path, vendorId: p.vendorId ?? null, productId: p.productId ?? null,
    description: [p.manufacturer, (p as { friendlyName?: string }).friendlyName].filter(Boolean).join(' ') || null,
    guess: guessBoard(p.vendorId ?? null, p.productId ?? null),
  }));
}
