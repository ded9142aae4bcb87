// A worker thread of BlockPool (block-pool.ts): computes its share of windows, replies on its port,
// then raises its flag so the waiting thread wakes.
import { workerData, parentPort, type MessagePort } from 'node:worker_threads';
import { computeShare, type ShareReply, type ShareRequest } from './block-pool.ts';

const { port, flag } = workerData as { port: MessagePort; flag: Int32Array };
parentPort!.on('message', (req: ShareRequest) => {
  let reply: ShareReply;
  const transfer: ArrayBuffer[] = [];
  try {
    reply = computeShare(req);
    for (const g of reply.grads ?? []) for (const a of Object.values(g)) transfer.push(a.buffer as ArrayBuffer);
  } catch (e) {
    reply = { losses: [], grads: null, error: (e as Error).message };
  }
  port.postMessage(reply, transfer);
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
});
