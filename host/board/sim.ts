// The virtual board: the C runtime built for this machine (boards/runtime/build/edge-flash-runtime)
// serving the protocol on a pseudo-terminal, as a board serves it on its serial port. Its line
// (boards/runtime/posix/line.c) can run at a real baud rate and inject dropped and flipped bytes and a
// link drop. The runtime makes the pty (Node cannot without a native module) and keeps a symlink to it
// at one path, so a host that lost the link opens the same path again and resumes its upload. Like a
// UART it never sees a host leave (the host ends its session with BYE). One virtual board per slot file:
// the runtime locks `<slot file>.lock`, and a second one refuses in one line naming the first one's pid.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, unlinkSync } from 'node:fs';
import { UserError } from '../errors.ts';
import { fromRoot } from '../paths.ts';
import type { Faults } from '../cli/flags.ts';
import { linearLimit, type Engine } from '../image/plan.ts';
import { deviceFootprint } from '../image/pack.ts';
import { boardByName, type BoardProfile } from './boards.ts';

export const RUNTIME_BIN = fromRoot('boards', 'runtime', 'build', 'edge-flash-runtime');
// The same runtime with the app compiled ahead of time (`make -C boards/runtime aot`): it runs only
// images whose app is the build/device.wasm it was built from (others fail the boot self-test).
export const AOT_RUNTIME_BIN = fromRoot('boards', 'runtime', 'build', 'edge-flash-runtime-aot');

// A board whose image is a file (Raspberry Pi, host) has a slot as large as its disk; the virtual board
// keeps its whole flash in memory and in one file, so such a slot is this large there (INFO says so).
export const VIRTUAL_FILE_SLOT = 64 << 20;

export function virtualCapacity(b: BoardProfile): number {
  return b.flash.imagePartition === null ? Math.min(b.imageCapacity, VIRTUAL_FILE_SLOT) : b.imageCapacity;
}

export interface SimOptions {
  board: BoardProfile;
  slotFile: string;               // its flash (created if missing)
  link: string;                   // the stable path of its pty (a symlink the runtime keeps current)
  baud?: number | null;           // pace the line at this rate (10 bits a byte); null: as fast as the pty
  faults?: Faults;
  engine?: Engine;                // the app under wasm3 (default) or compiled ahead of time
  log?: (line: string) => void;   // the runtime's stderr and its events, one line each
}

// One JSON line the runtime prints: pty, disconnect (at, size and the line's counts), stopped.
export interface SimEvent {
  event: string;
  [k: string]: unknown;
}

export interface VirtualBoard {
  path: string;                   // = options.link
  child: ChildProcess;
  events: SimEvent[];
  waitEvent(name: string, ms?: number, nth?: number): Promise<SimEvent>;   // the nth such event (1: the first)
  stop(): Promise<SimEvent | null>;   // SIGTERM; the 'stopped' event with the line's counts
  exited: Promise<number | null>;
}

// The runtime's arguments for a board profile: its ids, slot capacity, erase block and wasm3 stack.
export function runtimeArgs(o: SimOptions): string[] {
  const b = o.board;
  const accepts = b.accepts.map((a) => boardByName(a).id);
  const f = o.faults;
  return [
    '--board-id', String(b.id), '--board-name', b.name, ...(accepts.length ? ['--accepts', accepts.join(',')] : []),
    '--capacity', String(virtualCapacity(b)), '--erase-block', String(b.flash.eraseBlock), '--slot-file', o.slotFile,
    '--stack', String(b.wasm3.stack),   // wasm3's value stack as the board sizes it (`run <image> --engine wasm3` uses the same)
    '--linear-max', String(Math.min(0xffffffff, linearLimit({ board: b, app: deviceFootprint(), engine: o.engine }))),   // the board's linear memory, as the planner gives it (wasm32's 4 GiB at most)
    '--serve', '--pty', '--pty-link', o.link,
    ...(o.baud ? ['--baud', String(o.baud)] : []),
    ...(f && f.drop > 0 ? ['--drop', String(f.drop)] : []),
    ...(f && f.flip > 0 ? ['--flip', String(f.flip)] : []),
    ...(f && f.disconnectAt !== null ? ['--disconnect-at', String(f.disconnectAt)] : []),
    ...(f ? ['--fault-seed', String(f.seed)] : []),
  ];
}

// Builds the runtime when it is missing (make, as `npm run build` does).
export function ensureRuntime(): string {
  if (existsSync(RUNTIME_BIN)) return RUNTIME_BIN;
  const r = spawnSync('make', ['-s', '-C', fromRoot('boards', 'runtime')], { encoding: 'utf8' });
  if (r.status !== 0 || !existsSync(RUNTIME_BIN)) {
    throw new UserError(`the virtual board is not built and make failed: ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}`, 'npm run build needs cc (or clang) and make');
  }
  return RUNTIME_BIN;
}

// The AOT runtime is not built on demand: it needs wasm2c and the current build/device.wasm.
export function aotRuntime(bin = AOT_RUNTIME_BIN): string {
  if (!existsSync(bin)) throw new UserError(`the AOT runtime is not built (${bin}): run \`make -C boards/runtime aot\` (needs wasm2c: tools/install-system-deps.sh)`);
  return bin;
}

export function runtimeFor(engine: Engine = 'wasm3'): string {
  return engine === 'aot' ? aotRuntime() : ensureRuntime();
}

export async function startVirtualBoard(o: SimOptions): Promise<VirtualBoard> {
  if (virtualCapacity(o.board) > 0x7fff0000) throw new UserError(`the virtual board cannot hold two slots of ${o.board.imageCapacity} bytes (${o.board.name})`);
  const bin = runtimeFor(o.engine);
  const child = spawn(bin, runtimeArgs(o), { stdio: ['ignore', 'pipe', 'pipe'] });
  const events: SimEvent[] = [];
  const waiters: Array<() => void> = [];
  const log = o.log ?? (() => {});
  let out = '', err = '';
  const lines = (buf: string, chunk: string, each: (l: string) => void): string => {
    buf += chunk;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      each(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
    return buf;
  };
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out = lines(out, d, (l) => {
      try {
        events.push(JSON.parse(l) as SimEvent);
      } catch {
        log(l);
        return;
      }
      const ev = events[events.length - 1];
      if (ev.event === 'disconnect') log(`sim: the link dropped at ${ev.at} of ${ev.size} bytes of the upload (${((100 * (ev.at as number)) / (ev.size as number)).toFixed(1)} %); ${o.link} is a new pty now`);
      waiters.splice(0).forEach((w) => w());
    });
  });
  let errText = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    errText += d;
    // the refusal of a held slot file becomes the one error line below, not a log line too
    err = lines(err, d, (l) => (l.startsWith('edge-flash-runtime: another virtual board') ? undefined : log(l)));
  });
  let done = false;
  const exited = new Promise<number | null>((r) => child.on('exit', (c, sig) => {
    done = true;   // before the waiters look (a waiter woken first would wait out its whole timeout)
    waiters.splice(0).forEach((w) => w());
    r(c ?? (sig ? 128 : null));
  }));
  const waitEvent = async (name: string, ms = 10_000, nth = 1): Promise<SimEvent> => {
    const until = Date.now() + ms;
    for (;;) {
      const ev = events.filter((e) => e.event === name)[nth - 1];
      if (ev) return ev;
      if (done) throw new UserError(`the virtual board exited before it said '${name}'${err ? `: ${err.trim()}` : ''}`);
      if (Date.now() > until) throw new UserError(`the virtual board did not say '${name}' within ${ms / 1000} s`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.max(1, until - Date.now()));
        waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  };
  try {
    await waitEvent('pty');
  } catch (e) {
    // one virtual board per slot file: the runtime names the one that holds it (posix/main.c's lock)
    const held = errText.split('\n').find((l) => l.startsWith('edge-flash-runtime: another virtual board'));
    if (held) throw new UserError(held.slice('edge-flash-runtime: '.length));
    throw e;
  }
  return {
    path: o.link, child, events, waitEvent, exited,
    async stop() {
      if (!done) child.kill('SIGTERM');
      await exited;
      try {
        unlinkSync(o.link);   // the runtime removes it on SIGTERM; not if it died otherwise
      } catch { /* gone already */ }
      return events.find((e) => e.event === 'stopped') ?? null;
    },
  };
}
