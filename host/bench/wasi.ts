// The WASI preview1 functions a C program built with wasi-libc needs to read files and print
// (run.c under wasm3: the bench's peer row), as host functions for the engine interface, so that
// the program runs under the very wasm3 addon edge-flash's wasm3 engine uses. Only what such a
// program imports: arguments, clocks, stdout/stderr (kept in memory), read-only files under one
// preopened directory. Anything else returns ENOSYS (52) or the errno WASI defines for it.
import { closeSync, fstatSync, openSync, readSync, realpathSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import type { HostFunction, Instance } from '../engine/types.ts';

const E = { SUCCESS: 0, ACCES: 2, BADF: 8, INVAL: 28, IO: 29, ISDIR: 31, NOENT: 44, NOSYS: 52, NOTCAPABLE: 76 } as const;
const FILETYPE = { CHARACTER_DEVICE: 2, DIRECTORY: 3, REGULAR_FILE: 4 } as const;
const PREOPEN_FD = 3;

// The exit of proc_exit, thrown through the interpreter and caught by runWasi's caller.
export class WasiExit extends Error {
  constructor(readonly code: number) {
    super(`proc_exit(${code})`);
  }
}

export interface WasiOptions {
  args: string[];      // argv, argv[0] first
  preopen: { guest: string; host: string }; // one directory, as fd 3
}

export interface Wasi {
  imports: (self: () => Instance) => HostFunction[];
  stdout(): string;
  stderr(): string;
  close(): void;       // closes the files the guest left open
}

interface OpenFile { host: number; pos: number }

export function wasiImports(opts: WasiOptions): Wasi {
  const out: Buffer[] = [], err: Buffer[] = [];
  const files = new Map<number, OpenFile>();
  let nextFd = PREOPEN_FD + 1;
  const root = realpathSync(opts.preopen.host);
  const argBytes = opts.args.map((a) => Buffer.from(a + '\0'));
  const guestName = Buffer.from(opts.preopen.guest);

  const imports = (self: () => Instance): HostFunction[] => {
    const mem = () => self().memory();
    const view = () => { const m = mem(); return new DataView(m.buffer, m.byteOffset, m.byteLength); };
    // iovec array: (u32 buf, u32 len) pairs
    const iovs = (ptr: number, n: number): Uint8Array[] => {
      const m = mem(), dv = view(), r: Uint8Array[] = [];
      for (let i = 0; i < n; i++) r.push(m.subarray(dv.getUint32(ptr + 8 * i, true), dv.getUint32(ptr + 8 * i, true) + dv.getUint32(ptr + 8 * i + 4, true)));
      return r;
    };
    const fn = (name: string, sig: string, f: HostFunction['fn']): HostFunction => ({ module: 'wasi_snapshot_preview1', name, sig, fn: f });
    return [
      fn('args_sizes_get', 'i(ii)', (argc: number, size: number) => {
        const dv = view();
        dv.setUint32(argc, argBytes.length, true);
        dv.setUint32(size, argBytes.reduce((s, b) => s + b.length, 0), true);
        return E.SUCCESS;
      }),
      fn('args_get', 'i(ii)', (argv: number, buf: number) => {
        const m = mem(), dv = view();
        argBytes.forEach((b, i) => { dv.setUint32(argv + 4 * i, buf, true); m.set(b, buf); buf += b.length; });
        return E.SUCCESS;
      }),
      fn('environ_sizes_get', 'i(ii)', (count: number, size: number) => { const dv = view(); dv.setUint32(count, 0, true); dv.setUint32(size, 0, true); return E.SUCCESS; }),
      fn('environ_get', 'i(ii)', () => E.SUCCESS),
      // realtime (0) and monotonic (1) clocks, in nanoseconds
      fn('clock_time_get', 'i(iIi)', (id: number, _precision: bigint, at: number) => {
        if (id > 1) return E.INVAL;
        const ns = id === 0 ? BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6)) : process.hrtime.bigint();
        view().setBigUint64(at, ns, true);
        return E.SUCCESS;
      }),
      fn('fd_write', 'i(iiii)', (fd: number, ptr: number, n: number, written: number) => {
        if (fd !== 1 && fd !== 2) return E.BADF;
        let total = 0;
        for (const b of iovs(ptr, n)) { (fd === 1 ? out : err).push(Buffer.from(b)); total += b.length; }
        view().setUint32(written, total, true);
        return E.SUCCESS;
      }),
      fn('fd_read', 'i(iiii)', (fd: number, ptr: number, n: number, nread: number) => {
        if (fd === 0) { view().setUint32(nread, 0, true); return E.SUCCESS; } // stdin: empty
        const f = files.get(fd);
        if (!f) return E.BADF;
        let total = 0;
        for (const b of iovs(ptr, n)) {
          let got = 0;
          while (got < b.length) {
            const r = readSync(f.host, b, got, b.length - got, f.pos);
            if (r === 0) break;
            got += r; f.pos += r;
          }
          total += got;
          if (got < b.length) break;
        }
        view().setUint32(nread, total, true);
        return E.SUCCESS;
      }),
      fn('fd_seek', 'i(iIii)', (fd: number, offset: bigint, whence: number, at: number) => {
        const f = files.get(fd);
        if (!f) return fd <= PREOPEN_FD ? E.NOTCAPABLE : E.BADF;
        const base = whence === 0 ? 0 : whence === 1 ? f.pos : whence === 2 ? fstatSync(f.host).size : -1;
        const pos = base + Number(offset);
        if (base < 0 || pos < 0) return E.INVAL;
        f.pos = pos;
        view().setBigUint64(at, BigInt(pos), true);
        return E.SUCCESS;
      }),
      fn('fd_close', 'i(i)', (fd: number) => {
        const f = files.get(fd);
        if (!f) return E.BADF;
        closeSync(f.host);
        files.delete(fd);
        return E.SUCCESS;
      }),
      // fdstat: u8 filetype, u16 flags, u64 rights base, u64 rights inheriting (24 bytes)
      fn('fd_fdstat_get', 'i(ii)', (fd: number, at: number) => {
        const type = fd <= 2 ? FILETYPE.CHARACTER_DEVICE : fd === PREOPEN_FD ? FILETYPE.DIRECTORY : files.has(fd) ? FILETYPE.REGULAR_FILE : 0;
        if (!type) return E.BADF;
        const dv = view();
        dv.setUint8(at, type); dv.setUint16(at + 2, 0, true);
        dv.setBigUint64(at + 8, 0x1fffffffn, true); dv.setBigUint64(at + 16, 0x1fffffffn, true);
        return E.SUCCESS;
      }),
      fn('fd_fdstat_set_flags', 'i(ii)', (fd: number) => (fd <= 2 || files.has(fd) ? E.SUCCESS : E.BADF)),
      // prestat: u8 tag (0: directory), u32 name length
      fn('fd_prestat_get', 'i(ii)', (fd: number, at: number) => {
        if (fd !== PREOPEN_FD) return E.BADF;
        const dv = view();
        dv.setUint8(at, 0); dv.setUint32(at + 4, guestName.length, true);
        return E.SUCCESS;
      }),
      fn('fd_prestat_dir_name', 'i(iii)', (fd: number, ptr: number, len: number) => {
        if (fd !== PREOPEN_FD) return E.BADF;
        mem().set(guestName.subarray(0, len), ptr);
        return E.SUCCESS;
      }),
      // read-only: creating, truncating or writing files is refused
      fn('path_open', 'i(iiiiiIIii)', (dirfd: number, _dirflags: number, ptr: number, len: number, oflags: number, rights: bigint, _inh: bigint, _fdflags: number, at: number) => {
        if (dirfd !== PREOPEN_FD) return E.BADF;
        if (oflags & (1 | 8)) return E.ACCES; // O_CREAT, O_TRUNC
        if (rights & 0x40n) return E.ACCES; // fd_write
        const rel = Buffer.from(mem().subarray(ptr, ptr + len)).toString('utf8');
        const host = resolve(root, rel);
        const inside = relative(root, host);
        if (inside.startsWith('..') || isAbsolute(inside)) return E.NOTCAPABLE;
        let fd: number;
        try {
          fd = openSync(join(root, inside), 'r');
        } catch (e) {
          return (e as NodeJS.ErrnoException).code === 'ENOENT' ? E.NOENT : E.IO;
        }
        if (fstatSync(fd).isDirectory()) { closeSync(fd); return E.ISDIR; }
        const guestFd = nextFd++;
        files.set(guestFd, { host: fd, pos: 0 });
        view().setUint32(at, guestFd, true);
        return E.SUCCESS;
      }),
      fn('proc_exit', 'v(i)', (code: number) => { throw new WasiExit(code); }),
    ];
  };
  return {
    imports,
    stdout: () => Buffer.concat(out).toString('utf8'),
    stderr: () => Buffer.concat(err).toString('utf8'),
    close: () => { for (const f of files.values()) closeSync(f.host); files.clear(); },
  };
}

// Runs a WASI command's `_start`; returns its exit code (0 when it returns).
export function runWasiStart(inst: Instance): number {
  try {
    inst.call('_start');
    return 0;
  } catch (e) {
    if (e instanceof WasiExit) return e.code;
    throw e;
  }
}
