// Decode on the virtual board against `edge-flash run <image> --engine wasm3`, on the same image, in the
// same run: the board is the C runtime (boards/runtime/) on a pty, flashed with the image over the
// protocol; the host side is the image's own app under the wasm3 addon, with the image's plan and
// memory cap. Both run the same wasm3 (0.9.0, the same sources and flags) and the same app, so the
// ratio should be about 1; what differs is the serial path (one TOKEN frame a token over the pty) and
// the call path (the addon's N-API layer against the runtime's direct m3_Call). Repeats alternate the
// two sides; each figure is the best and the median over them, the ratio the median of the pairs'. Then the device's memory as it reports it
// (INFO's linear memory, and the heap wasm3 took at boot from `edge-flash-runtime --boot`) beside the
// planner's figures for the image on its board.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { boardByName, type BoardProfile } from '../board/boards.ts';
import { chat, flash, info } from '../board/commands.ts';
import { connectBoard } from '../board/connect.ts';
import { ensureRuntime, startVirtualBoard, virtualCapacity } from '../board/sim.ts';
import { planImageOn } from '../cli/fit.ts';
import { tryEngine } from '../engine/index.ts';
import { UserError } from '../errors.ts';
import { loadImageModel } from '../image/model.ts';
import { imageRun } from '../image/run.ts';
import { CHAT_END_TEXT, ModelRuntime } from '../model/runtime.ts';
import { median } from './stats.ts';

export interface BoardDecodeRow {
  image: string;
  board: string;
  steps: number;
  tokens: number;                       // sampled tokens a repeat (the same on both sides: greedy)
  host: { best: number; median: number }; // tok/s, run --engine wasm3 (the addon)
  device: { best: number; median: number }; // tok/s, the virtual board's STATS
  ratio: number;                        // the median of each repeat's device / host (pairs run back to back share the machine's load)
  memory: { linear: number; plannedLinear: number; wasm3Heap: number | null; plannedWasm3Heap: number | null; heapBytes: number | null };
}

// Host side: the image's app under the addon, generate from an empty prompt (BOS), greedy; tok/s of
// the sampled tokens after the first, timed as the device times them (first sampled token to the last).
function hostDecode(rt: ModelRuntime, steps: number): { tokPerS: number; tokens: number } {
  rt.setSampler({ temperature: 0, topp: 0.9, seed: 1n });
  if (rt.genBegin(new Uint8Array(0), steps) < 0) throw new Error('gen_begin failed');
  let first = 0, last = 0, n = 0;
  for (;;) {
    const r = rt.genNext();
    if (typeof r === 'number') {
      if (r !== CHAT_END_TEXT && r !== -3) throw new Error(`gen_next failed (${r})`);
      break;
    }
    last = performance.now();
    if (n === 0) first = last;
    n++;
  }
  return { tokPerS: n > 1 ? (n - 1) / ((last - first) / 1000) : 0, tokens: n };
}

// wasm3's heap at boot as the runtime measures it (the C heap it took: code, stacks, linear memory).
function bootHeap(board: BoardProfile, slotFile: string): number | null {
  const args = ['--board-id', String(board.id), '--capacity', String(virtualCapacity(board)), '--erase-block', String(board.flash.eraseBlock),
    '--stack', String(board.wasm3.stack), '--slot-file', slotFile, '--boot'];
  const r = spawnSync(ensureRuntime(), args, { encoding: 'utf8' });
  const app = (r.stdout ?? '').split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((e) => e.event === 'app');
  return typeof app?.heap_bytes === 'number' && app.heap_bytes > 0 ? app.heap_bytes : null;
}

export async function benchBoardDecode(path: string, steps: number, repeat: number, tick: (label: string) => void = () => {}): Promise<BoardDecodeRow> {
  const bytes = new Uint8Array(readFileSync(path));
  const { model, image } = loadImageModel(path, bytes);
  const board = image.board ?? boardByName('host');
  const w3 = await tryEngine('wasm3');
  if (!w3.engine) throw new UserError(`the board decode bench needs the wasm3 addon (${w3.error})`);
  const run = imageRun(path, image, { engine: 'wasm3' });
  const rt = ModelRuntime.fromImage(image, w3.engine, run.options);
  const dir = mkdtempSync(join(tmpdir(), 'edge-flash-bench-board-'));
  const slot = join(dir, 'slots.bin');
  const vb = await startVirtualBoard({ board, slotFile: slot, link: join(dir, 'board.tty') });
  const host: number[] = [], device: number[] = [];
  let tokens = 0, linear = 0;
  try {
    const client = await connectBoard(vb.path, 921600);
    tick(`flash ${path} to the virtual board (${board.name})`);
    await flash(client, bytes, { reset: true, reconnect: () => connectBoard(vb.path, 921600) });
    const c = client.closed ? await connectBoard(vb.path, 921600) : client;
    try {
      hostDecode(rt, Math.min(steps, 8)); // warm-up: wasm3 compiles functions on first call (the board did at its self-test)
      for (let i = 0; i < repeat; i++) {
        tick(`decode ${i + 1}/${repeat}: run --engine wasm3`);
        const h = hostDecode(rt, steps);
        host.push(h.tokPerS);
        tick(`decode ${i + 1}/${repeat}: virtual board`);
        const r = await chat(c, { prompt: '', seed: 1, temperature: 0, topP: 0.9, steps, mode: 'generate', newConversation: true }).done;
        if (r.stats.tokens !== h.tokens) throw new Error(`the board sampled ${r.stats.tokens} tokens, the host ${h.tokens}: not the same run`);
        device.push(r.stats.tokPerS ?? 0);
        tokens = h.tokens;
      }
      linear = (await info(c)).linearMemory;
    } finally {
      await c.close();
    }
  } finally {
    await vb.stop();
    rt.close();
  }
  const heapBytes = bootHeap(board, slot);
  rmSync(dir, { recursive: true, force: true });
  const fit = planImageOn(image, model, board);
  const plannedHeap = 'unplannable' in fit ? null : fit.heap;
  const hm = median(host), dm = median(device);
  return {
    image: path, board: board.name, steps, tokens,
    host: { best: Math.max(...host), median: hm }, device: { best: Math.max(...device), median: dm }, ratio: median(device.map((d, i) => d / host[i])),
    memory: { linear, plannedLinear: image.config.plannedLinear, heapBytes, wasm3Heap: heapBytes === null ? null : heapBytes - linear, plannedWasm3Heap: plannedHeap },
  };
}

export function formatBoardDecode(rows: BoardDecodeRow[]): string {
  const kib = (n: number | null) => (n === null ? '-' : `${(n / 1024).toFixed(1)} KiB`);
  const out = ['image                      board     tokens  run wasm3 tok/s (best/med)  virtual board tok/s (best/med)  board/run  linear (planned)        wasm3 heap (planned)'];
  for (const r of rows) {
    out.push(`${r.image.slice(-26).padEnd(26)} ${r.board.padEnd(9)} ${String(r.tokens).padStart(6)}  ${`${r.host.best.toFixed(1)} / ${r.host.median.toFixed(1)}`.padStart(25)}  ${`${r.device.best.toFixed(1)} / ${r.device.median.toFixed(1)}`.padStart(29)}  ${r.ratio.toFixed(2).padStart(8)}x  ` +
      `${`${kib(r.memory.linear)} (${kib(r.memory.plannedLinear)})`.padEnd(22)}  ${kib(r.memory.wasm3Heap)} (${kib(r.memory.plannedWasm3Heap)})`);
  }
  return out.join('\n');
}
