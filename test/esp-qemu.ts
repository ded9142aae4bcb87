// Espressif's QEMU for tests: an emulated ESP32 or ESP32-C3 running the chip's real mask ROM, started in
// download mode (the ROM's serial bootloader) or booting from its flash file, UART0 on a pty (or on the
// emulator's stdout). Found as a user has it: ../shared/esp-qemu/ beside the repository (bin/ and the
// ROMs in pc-bios/), else qemu-system-xtensa / qemu-system-riscv32 on PATH (the ROMs from the
// installation's pc-bios/ or share/qemu/ next to bin/, else QEMU's own data folder). See
// ../shared/esp-qemu/README.md for what this QEMU does and does not do (no ESP32-S3 machine).
//
//   const q = findEspQemu('esp32c3');             // EspQemuFound, or a one-line reason it is missing
//   if (typeof q === 'string') return missingPart(q);   // one line; throws when CI is set
//   const emu = await startEspQemu({ chip: 'esp32c3', mode: 'download', flashSize: 4 << 20 });
//   ... open emu.pty as the chip's serial port ...
//   await emu.stop();                              // QEMU exits, its flash file is then complete
//   const flash = emu.readFlash();                 // the whole SPI flash as the chip left it
//
// Every wait here has a timeout; a QEMU left running when the test process exits is killed.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fromRoot } from '../host/paths.ts';

export type EspQemuChip = 'esp32' | 'esp32c3';

// Per machine: the QEMU binary, the ROM file it loads (to find the ROM folder), the GPIO strap value
// that selects the ROM's download mode (leave the strap out: SPI flash boot), and where the ROM looks
// for the app image when it boots from flash (the second-stage bootloader's offset in ESP-IDF).
export const ESP_QEMU_MACHINES: Record<EspQemuChip, { bin: string; rom: string; downloadStrap: number; bootOffset: number }> = {
  esp32: { bin: 'qemu-system-xtensa', rom: 'esp32-v3-rom.bin', downloadStrap: 0x0f, bootOffset: 0x1000 },
  esp32c3: { bin: 'qemu-system-riscv32', rom: 'esp32c3-rom.bin', downloadStrap: 0x02, bootOffset: 0x0 },
};

export interface EspQemuFound {
  bin: string;                 // the qemu-system-* executable
  roms?: string;               // folder passed as -L (absent: QEMU's built-in data folder)
  from: string;                // where it was found, for messages: '../shared/esp-qemu' or 'PATH'
}

// The emulator for a chip, or one line saying what is missing and where it was looked for.
export function findEspQemu(chip: EspQemuChip): EspQemuFound | string {
  const m = ESP_QEMU_MACHINES[chip];
  const shared = fromRoot('..', 'shared', 'esp-qemu');
  const sharedBin = join(shared, 'bin', m.bin);
  if (existsSync(sharedBin)) return { bin: sharedBin, roms: join(shared, 'pc-bios'), from: '../shared/esp-qemu' };
  for (const dir of (process.env.PATH ?? '').split(delimiter).filter(Boolean)) {
    const bin = join(dir, m.bin);
    if (!existsSync(bin)) continue;
    const roms = [join(dir, '..', 'pc-bios'), join(dir, '..', 'share', 'qemu')].find((d) => existsSync(join(d, m.rom)));
    return { bin, roms, from: 'PATH' };
  }
  return `Espressif's QEMU (${m.bin}) is in neither ../shared/esp-qemu/bin nor PATH`;
}

// A real part that is not there: one line on stderr, and a failure when CI is set (CI has ../shared).
export function missingPart(why: string): void {
  if (process.env.CI) throw new Error(`${why} (CI is set: the test needs it)`);
  process.stderr.write(`warning: not tested: ${why}\n`);
}

export interface EspQemuOptions {
  chip: EspQemuChip;
  mode: 'download' | 'flash-boot';   // the ROM's serial bootloader, or SPI flash boot (an app image at bootOffset)
  flash?: Uint8Array;                // the flash's initial contents (2, 4, 8 or 16 MiB); default flashSize of 0xFF
  flashSize?: number;                // default 4 MiB
  flashFile?: string;                // use (and keep) this file as the flash instead of a temporary one
  serial?: 'pty' | 'stdio';          // UART0 on a pty (default) or on QEMU's stdout (see EspQemu.uart)
  icount?: number;                   // -icount shift=N: the guest clock counts 2^N ns per instruction
  found?: EspQemuFound;              // default findEspQemu(chip); throws when missing
  startTimeoutMs?: number;           // default 10 s for QEMU to come up (print its pty)
}

export interface EspQemu {
  readonly chip: EspQemuChip;
  readonly pty: string;              // '/dev/pts/N' in 'pty' mode, '' in 'stdio' mode
  readonly flashFile: string;
  readonly pid: number;
  readonly argv: string[];           // the command line, for messages
  uart(): string;                    // in 'stdio' mode: what the chip wrote to UART0 so far (latin1)
  log(): string;                     // QEMU's own messages (stderr)
  exited(): boolean;
  stop(timeoutMs?: number): Promise<void>; // SIGTERM, then SIGKILL after timeoutMs (default 5 s)
  readFlash(): Uint8Array;           // the flash file (complete once stop() returned)
}

const running = new Set<ChildProcess>();
process.on('exit', () => { for (const p of running) p.kill('SIGKILL'); });

export async function startEspQemu(o: EspQemuOptions): Promise<EspQemu> {
  const found = o.found ?? findEspQemu(o.chip);
  if (typeof found === 'string') throw new Error(found);
  const m = ESP_QEMU_MACHINES[o.chip];
  let tmp: string | undefined;
  let flashFile = o.flashFile;
  if (!flashFile) {
    tmp = mkdtempSync(join(tmpdir(), `esp-qemu-${o.chip}-`));
    flashFile = join(tmp, 'flash.bin');
  }
  if (o.flash || !o.flashFile || !existsSync(flashFile)) {
    const size = o.flash?.length ?? o.flashSize ?? 4 << 20;
    if (![2, 4, 8, 16].some((n) => size === n << 20)) throw new Error(`flash of ${size} bytes: this QEMU takes 2, 4, 8 or 16 MiB`);
    writeFileSync(flashFile, o.flash ?? new Uint8Array(size).fill(0xff));
  }
  const serial = o.serial ?? 'pty';
  const argv = [
    ...(found.roms ? ['-L', found.roms] : []),
    '-display', 'none', '-monitor', 'none', '-nodefaults', '-machine', o.chip,
    '-drive', `file=${flashFile},if=mtd,format=raw`,
    ...(o.mode === 'download' ? ['-global', `driver=${o.chip}.gpio,property=strap_mode,value=0x${m.downloadStrap.toString(16)}`] : []),
    ...(o.icount !== undefined ? ['-icount', `shift=${o.icount}`] : []),
    '-serial', serial === 'pty' ? 'pty' : 'stdio',
  ];
  const p = spawn(found.bin, argv, { stdio: ['pipe', 'pipe', 'pipe'] });
  running.add(p);
  let err = '', out = '', uart = '';
  let exitCode: number | null = null, exitSignal: string | null = null;
  const exitedP = new Promise<void>((resolve) => p.on('exit', (code, sig) => { exitCode = code; exitSignal = sig; running.delete(p); resolve(); }));
  p.on('error', (e) => { err += `${e.message}\n`; });
  p.stderr!.on('data', (b: Buffer) => { err += b.toString(); });
  p.stdout!.on('data', (b: Buffer) => { if (serial === 'stdio') uart += b.toString('latin1'); else out += b.toString(); });
  const cleanup = () => { if (tmp) rmSync(tmp, { recursive: true, force: true }); };
  const stop = async (timeoutMs = 5000) => {
    if (exitCode === null && exitSignal === null) {
      p.kill('SIGTERM');
      const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
      await exitedP;
      clearTimeout(t);
    }
  };
  // QEMU prints "char device redirected to /dev/pts/N (label serial0)" once the pty exists
  let pty = '';
  if (serial === 'pty') {
    const limit = o.startTimeoutMs ?? 10_000;
    const t0 = Date.now();
    while (!pty) {
      pty = /redirected to (\/dev\/\S+)/.exec(err + out)?.[1] ?? '';
      if (pty) break;
      if (exitCode !== null || exitSignal !== null || Date.now() - t0 > limit) {
        await stop();
        cleanup();
        throw new Error(`${found.bin} ${argv.join(' ')}: no pty within ${limit} ms${exitCode !== null ? ` (exit ${exitCode})` : ''}: ${(err + out).trim().split('\n').slice(-3).join(' | ')}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  const file = flashFile;
  return {
    chip: o.chip, pty, flashFile: file, pid: p.pid ?? -1, argv: [found.bin, ...argv],
    uart: () => uart,
    log: () => err,
    exited: () => exitCode !== null || exitSignal !== null,
    stop: async (timeoutMs?: number) => { await stop(timeoutMs); },
    readFlash: () => new Uint8Array(readFileSync(file)),
  };
}

// Removes a temporary flash file's folder after the caller read it (stop() keeps it for readFlash()).
export function removeFlashFile(q: EspQemu): void {
  const d = dirname(q.flashFile);
  if (/esp-qemu-/.test(d)) rmSync(d, { recursive: true, force: true });
}
