// TesseraQ's block loss and gradient over the calibration windows, spread over worker threads.
// Each window's loss and gradients are computed on their own (in this thread or a worker) and
// summed in window order, so the result is the same bit for bit with any number of threads.
// The calling thread stays synchronous: it posts each worker its windows' share, computes its own,
// then blocks in Atomics.wait until the workers' replies are in (read with receiveMessageOnPort).
import { availableParallelism } from 'node:os';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import type { DenseBlock } from './calib.ts';
import { blockLossGrad, type BlockCtx, type WName } from './tesseraq.ts';

export const BLOCK_MATRICES = ['wq', 'wk', 'wv', 'wo', 'w1', 'w2', 'w3'] as const;
export type Grads = Record<WName, Float64Array>;

// One window's loss and (optionally) gradients; what a worker runs.
export interface ShareRequest { ctx: BlockCtx; B: DenseBlock; xs: Float64Array[]; ys: Float64Array[]; count: number; grads: boolean }
export interface ShareReply { losses: number[]; grads: Grads[] | null; error?: string }

export function computeShare(r: ShareRequest): ShareReply {
  const losses: number[] = [], grads: Grads[] = [];
  for (let w = 0; w < r.xs.length; w++) {
    const g = r.grads ? Object.fromEntries(BLOCK_MATRICES.map((n) => [n, new Float64Array(r.B[n].length)])) as Grads : undefined;
    losses.push(blockLossGrad(r.ctx, r.B, [r.xs[w]], [r.ys[w]], g, r.count));
    if (g) grads.push(g);
  }
  return { losses, grads: r.grads ? grads : null };
}

// The worker: dist/block-worker.js beside the bundled CLI, or block-worker.ts under tsx (which the
// worker registers itself: a worker does not inherit the parent's loader). A bootstrap reports
// whether it loaded (state 1) or not (2, with the reason on the port), so a failed start falls back
// to fewer threads instead of leaving the caller waiting.
const BOOT = `const { workerData } = require('node:worker_threads');
(async () => {
  try {
    if (workerData.tsx) (await import(workerData.tsx)).register();
    await import(workerData.url);
    Atomics.store(workerData.flag, 1, 1);
  } catch (e) {
    workerData.port.postMessage({ losses: [], grads: null, error: String(e && e.message || e) });
    Atomics.store(workerData.flag, 1, 2);
  }
  Atomics.notify(workerData.flag, 1);
})();`;

function startWorker(): Lane | string {
  const ts = import.meta.url.endsWith('.ts');
  const url = new URL(ts ? './block-worker.ts' : './block-worker.js', import.meta.url).href;
  let tsx: string | undefined;
  if (ts) try { tsx = import.meta.resolve('tsx/esm/api'); } catch { return 'tsx is not resolvable'; }
  const flag = new Int32Array(new SharedArrayBuffer(8)); // [0] reply ready, [1] start state
  const { port1, port2 } = new MessageChannel();
  const worker = new Worker(BOOT, { eval: true, workerData: { port: port2, flag, url, tsx }, transferList: [port2] });
  worker.unref();
  Atomics.wait(flag, 1, 0, 60_000);
  if (Atomics.load(flag, 1) === 1) return { worker, port: port1, flag };
  const why = (receiveMessageOnPort(port1)?.message as ShareReply | undefined)?.error ?? 'no answer in 60 s';
  port1.close();
  void worker.terminate();
  return why;
}

interface Lane { worker: Worker; port: MessagePort; flag: Int32Array }

export class BlockPool {
  private lanes: Lane[] = [];
  readonly threads: number;
  readonly fallback?: string; // why fewer threads than asked for run
  constructor(threads = 1) {
    for (let i = 1; i < threads; i++) {
      const lane = startWorker();
      if (typeof lane === 'string') { this.fallback = lane; break; }
      this.lanes.push(lane);
    }
    this.threads = this.lanes.length + 1;
  }

  // Loss over every window, and dLoss/dW added to grads (when given).
  lossGrad(ctx: BlockCtx, B: DenseBlock, xs: Float64Array[], ys: Float64Array[], grads?: Grads): number {
    const count = xs.reduce((a, x) => a + x.length, 0);
    const nt = Math.min(this.threads, xs.length);
    // contiguous shares, the first one this thread's
    const share = (t: number) => [Math.floor((t * xs.length) / nt), Math.floor(((t + 1) * xs.length) / nt)];
    for (let t = 1; t < nt; t++) {
      const [a, b] = share(t), lane = this.lanes[t - 1];
      Atomics.store(lane.flag, 0, 0);
      lane.worker.postMessage({ ctx, B, xs: xs.slice(a, b), ys: ys.slice(a, b), count, grads: !!grads } satisfies ShareRequest);
    }
    const [a0, b0] = share(0);
    const replies: ShareReply[] = [computeShare({ ctx, B, xs: xs.slice(a0, b0), ys: ys.slice(a0, b0), count, grads: !!grads })];
    for (let t = 1; t < nt; t++) {
      const lane = this.lanes[t - 1];
      // a worker that dies without replying would leave this thread waiting: give up after 10 minutes
      if (Atomics.wait(lane.flag, 0, 0, 600_000) === 'timed-out' && Atomics.load(lane.flag, 0) === 0) throw new Error('TesseraQ: a worker thread did not answer in 10 minutes');
      const m = receiveMessageOnPort(lane.port);
      if (!m) throw new Error('TesseraQ: a worker thread answered without a result');
      const r = m.message as ShareReply;
      if (r.error) throw new Error(`TesseraQ worker: ${r.error}`);
      replies.push(r);
    }
    let loss = 0;
    for (const r of replies) {
      for (let w = 0; w < r.losses.length; w++) {
        loss += r.losses[w];
        if (grads && r.grads) for (const n of BLOCK_MATRICES) { const g = grads[n], s = r.grads[w][n]; for (let i = 0; i < g.length; i++) g[i] += s[i]; }
      }
    }
    return loss;
  }

  close(): void {
    for (const l of this.lanes) { l.port.close(); void l.worker.terminate(); }
    this.lanes = [];
  }
}

// Threads for n windows: the cores, at most one per window.
export const defaultThreads = (windows: number) => Math.max(1, Math.min(availableParallelism(), windows));
