// `edge-flash flash --rom --port P --board B [--firmware DIR/build] [--image IMAGE] [--baud B]`: the
// verb's side for a bare ESP32-family chip (host/board/rom-flash.ts does the work): every check before
// the port opens, a progress bar (bytes, rate, ETA) on stderr, one line per region on stdout, exit 0
// only when every region's MD5 matched.
import { boardByName } from '../board/boards.ts';
import { planRegions, romFlash, type Region } from '../board/rom-flash.ts';
import { UserError } from '../errors.ts';
import { log, progress } from '../log.ts';
import { fmtBytes } from '../image/plan.ts';

export interface RomFlashFlags {
  port: string;
  board?: string;
  firmware?: string;
  image?: string;
  baud: number;
  reset: boolean;
  stub: boolean;                   // false: --no-stub (the ROM loader only, as esptool's --no-stub)
  trace: boolean;
}

export async function flashRom(f: RomFlashFlags): Promise<void> {
  if (!f.board) throw new UserError('flash --rom needs --board (esp32, esp32s3, esp32c3 or a PSRAM variant): the chip is checked against it and the slot offset comes from it');
  const board = boardByName(f.board);
  const regions = planRegions(board, { firmware: f.firmware, image: f.image });
  const total = regions.reduce((n, r) => n + r.data.byteLength, 0);
  for (const r of regions) log(`${r.name}: ${r.data.byteLength} bytes at 0x${r.offset.toString(16)} (${r.file})${r.note ? `; ${r.note}` : ''}`);
  const bar = progress(total, 'flash --rom');
  const done = new Map<Region, number>();
  let shown = 0, first = 0;
  const t0 = performance.now();
  try {
    const res = await romFlash({
      port: f.port, board, regions, baud: f.baud, reset: f.reset, stub: f.stub, log, trace: f.trace,
      onProgress: (r, written) => {
        done.set(r, Math.min(written, r.data.byteLength));
        const n = [...done.values()].reduce((a, b) => a + b, 0);
        first ||= performance.now(); // the rate from the first block, not from the connect
        const s = (performance.now() - first) / 1000;
        const rate = s > 0 ? n / s : 0;
        bar.tick(n - shown, `${r.name} ${(rate / 1024).toFixed(1)} KiB/s ETA ${rate > 0 ? ((total - n) / rate).toFixed(0) : '?'} s`);
        shown = n;
      },
    });
    bar.done();
    for (const r of res.regions) {
      process.stdout.write(`${r.name}: ${r.bytes} bytes at 0x${r.offset.toString(16)} in ${(r.ms / 1000).toFixed(1)} s, MD5 ${r.md5} matches the flash\n`);
    }
    const s = (performance.now() - t0) / 1000;
    // "reset" only when DTR/RTS did one; a port without them (a pty, some adapters) cannot
    const reset = res.reset === 'done' ? ', reset' : res.reset === 'no lines' ? `; not reset (${f.port} has no DTR/RTS lines): tap EN (RST) to start the firmware` : '';
    const resent = res.regions.reduce((n, r) => n + r.resent, 0);
    process.stdout.write(`${f.port}: ${res.chip} (${board.name}), ${res.regions.length} region${res.regions.length === 1 ? '' : 's'}, ${fmtBytes(total)} through the ${res.loader === 'stub' ? 'stub' : 'ROM'} loader in ${s.toFixed(1)} s${resent ? ` (${resent} block${resent === 1 ? '' : 's'} resent)` : ''}, every MD5 matched${reset}\n`);
  } finally {
    bar.done();
  }
}
