// The virtual board as a library: the C runtime built for this machine (boards/runtime/build/
// edge-flash-runtime) serving the protocol on a pty, playing a board profile (its id, the boards it
// accepts, its slot capacity, its wasm3 stack). `edge-flash demo` and the end-to-end tests start it
// here; `edge-flash sim` starts the same binary from the CLI.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { UserError } from '../errors.ts';
import { fromRoot } from '../paths.ts';
import { boardByName, type BoardProfile } from './boards.ts';

export const RUNTIME_BINARY = fromRoot('boards', 'runtime', 'build', 'edge-flash-runtime');
export const VIRTUAL_ERASE_BLOCK = 4096;
// A profile without a flash limit (host, a Pi: the image is a file) gets slots of this size: the slot
// file holds two of them.
export const VIRTUAL_MAX_CAPACITY = 64 * 1024 * 1024;

export interface VirtualBoard {
  pty: string;
  board: BoardProfile;
  child: ChildProcess;
  log(): string;           // the runtime's stderr so far
  stop(): Promise<void>;   // SIGTERM, then the exit
}

// The runtime's arguments for a board profile.
export function runtimeArgs(b: BoardProfile, slotFile: string): string[] {
  return ['--board-id', String(b.id), '--board-name', b.name, '--accepts', b.accepts.map((a) => boardByName(a).id).join(',') || String(b.id),
    '--capacity', String(Math.min(b.imageCapacity, VIRTUAL_MAX_CAPACITY)), '--erase-block', String(VIRTUAL_ERASE_BLOCK), '--stack', String(b.wasm3.stack), '--slot-file', slotFile];
}

// Starts the runtime on a new pty and resolves when it has printed the pty's path.
export function startVirtualBoard(board: BoardProfile, slotFile: string, bin = RUNTIME_BINARY): Promise<VirtualBoard> {
  if (!existsSync(bin)) throw new UserError(`the virtual board is not built (${bin} is missing)`, 'run npm run build (needs cc and make)');
  const child = spawn(bin, [...runtimeArgs(board, slotFile), '--serve', '--pty'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  return new Promise((resolve, reject) => {
    let buf = '';
    const onExit = (code: number | null) => reject(new UserError(`the virtual board exited (status ${code}) before it served: ${err.trim().split('\n').pop() ?? ''}`));
    child.once('exit', onExit);
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /\{"event":"pty","pty":"([^"]+)"\}\n/.exec(buf);
      if (m) {
        child.off('exit', onExit);
        resolve({ pty: m[1], board, child, log: () => err, stop });
      }
    });
  });
}
