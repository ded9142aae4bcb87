// Upload throughput over the virtual board's throttled line (host/board/sim.ts, boards/runtime/posix/
// line.c: baud / 10 bytes a second each way): UPLOAD_BEGIN to the last chunk's acknowledgement, the
// image's bytes over the time, against the line rate. Each repeat is a fresh board (the upload starts at
// 0). The protocol does not compress: every image byte crosses the line in COBS frames.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { boardByName } from '../board/boards.ts';
import { upload } from '../board/commands.ts';
import { connectBoard } from '../board/connect.ts';
import { startVirtualBoard } from '../board/sim.ts';
import { median } from './stats.ts';
import type { Faults } from '../cli/flags.ts';

export interface UploadRow {
  bench: 'upload';
  board: string;
  baud: number;
  image_bytes: number;
  repeats: number;
  min_s: number;
  median_s: number;
  best_bytes_per_s: number;
  median_bytes_per_s: number;
  line_bytes_per_s: number;        // baud / 10
  best_line_fraction: number;      // best_bytes_per_s / line_bytes_per_s
  median_line_fraction: number;
  wire_bytes: number;              // what the board received in the last repeat: frames, COBS, the HELLO and INFO before
  compressed: false;
  faults: { drop: number; flip: number; seed: number } | null;   // the line's injected faults (both ways)
  resends: number;                 // go-back-N rewinds, all repeats
  chunk_sizes: Record<number, number>;   // chunks sent per data size, all repeats (the size adapts to the line)
}

export interface UploadBenchOptions {
  image: Uint8Array;
  bauds: number[];
  repeat: number;
  board?: string;
  faults?: Faults;
}

export async function benchUpload(o: UploadBenchOptions, onStep: (label: string) => void = () => {}): Promise<UploadRow[]> {
  const board = boardByName(o.board ?? 'esp32');
  const dir = mkdtempSync(join(tmpdir(), 'edge-flash-bench-upload-'));
  const rows: UploadRow[] = [];
  try {
    for (const baud of o.bauds) {
      const secs: number[] = [];
      let wire = 0, resends = 0;
      const sizes: Record<number, number> = {};
      for (let r = 0; r < o.repeat; r++) {
        onStep(`upload ${o.image.byteLength} bytes at ${baud} baud, repeat ${r + 1}/${o.repeat}`);
        const slotFile = join(dir, `b${baud}-${r}.bin`);
        const faults = o.faults ? { ...o.faults, seed: o.faults.seed + r } : undefined;   // each repeat its own faults
        const vb = await startVirtualBoard({ board, slotFile, link: `${slotFile}.tty`, baud, faults });
        try {
          const c = await connectBoard(vb.path, baud);
          try {
            const up = await upload(c, o.image);
            if (up.resumedAt !== 0) throw new Error(`a fresh virtual board resumed at ${up.resumedAt}`);
            secs.push(up.ms / 1000);
            resends += up.rewinds;
            for (const [k, v] of Object.entries(up.chunkSizes)) sizes[Number(k)] = (sizes[Number(k)] ?? 0) + v;
          } finally {
            await c.close();
          }
        } finally {
          const s = await vb.stop();
          wire = (s?.rx_bytes as number) ?? 0;
          rmSync(slotFile, { force: true });
        }
      }
      const line = baud / 10;
      const best = Math.min(...secs), med = median(secs);
      rows.push({
        bench: 'upload', board: board.name, baud, image_bytes: o.image.byteLength, repeats: o.repeat,
        min_s: best, median_s: med,
        best_bytes_per_s: o.image.byteLength / best, median_bytes_per_s: o.image.byteLength / med,
        line_bytes_per_s: line,
        best_line_fraction: o.image.byteLength / best / line, median_line_fraction: o.image.byteLength / med / line,
        wire_bytes: wire, compressed: false,
        faults: o.faults ? { drop: o.faults.drop, flip: o.faults.flip, seed: o.faults.seed } : null, resends, chunk_sizes: sizes,
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

export function formatUploadTable(rows: UploadRow[]): string {
  const head = 'board   baud     image B   min s   median s  best B/s   median B/s  line B/s  best %  median %  wire B  resends  faults';
  const lines = rows.map((r) => [
    r.board.padEnd(7), String(r.baud).padEnd(8), String(r.image_bytes).padStart(9), r.min_s.toFixed(3).padStart(7), r.median_s.toFixed(3).padStart(10),
    r.best_bytes_per_s.toFixed(0).padStart(9), r.median_bytes_per_s.toFixed(0).padStart(12), r.line_bytes_per_s.toFixed(0).padStart(9),
    (100 * r.best_line_fraction).toFixed(1).padStart(7), (100 * r.median_line_fraction).toFixed(1).padStart(9), String(r.wire_bytes).padStart(7),
    String(r.resends).padStart(8), r.faults ? `drop=${r.faults.drop},flip=${r.faults.flip}` : 'none',
  ].join(' '));
  return [head, ...lines, 'no compression: every image byte crosses the line (COBS frames of up to 4096 data bytes, fewer after losses; a window of 4)'].join('\n');
}
