// `bench --peers` without run.c (it is not part of this project): the cached C builds, run.c's
// build-time patch, and the WASI layer that runs a wasm32-wasi program under the wasm3 addon, with a
// small C program of our own compiled by the same build (clang --target=wasm32-wasi, with
// tools/bench/runc-peer.h, whose malloc+read mmap it goes through) and run under wasm3 and node:wasi.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, openSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WASI } from 'node:wasi';
import { UserError } from '../host/errors.ts';
import { getEngine } from '../host/engine/index.ts';
import { buildCached, patchRunc, wasmBuild } from '../host/bench/peers.ts';
import { runWasiStart, wasiImports } from '../host/bench/wasi.ts';
import { cli } from './helpers.ts';

// Reads argv[1] through mmap, hashes it, checks the clock runs, cannot open outside its directory,
// prints to both streams and exits with argv[2].
const PROGRAM = `
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: prog FILE CODE\\n"); return 2; }
  FILE *f = fopen(argv[1], "rb");
  if (!f) { fprintf(stderr, "cannot open %s\\n", argv[1]); return 4; }
  fseek(f, 0, SEEK_END); long n = ftell(f); fclose(f);
  int fd = open(argv[1], O_RDONLY);
  unsigned char *p = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0);
  if (p == MAP_FAILED) { fprintf(stderr, "mmap failed\\n"); return 5; }
  unsigned h = 0;
  for (long i = 0; i < n; i++) h = h * 31u + p[i];
  munmap(p, n); close(fd);
  struct timespec a, b;
  clock_gettime(CLOCK_REALTIME, &a);
  do clock_gettime(CLOCK_REALTIME, &b); while (b.tv_sec == a.tv_sec && b.tv_nsec == a.tv_nsec);
  printf("size %ld hash %u\\n", n, h);
  fprintf(stderr, "escaped %d\\n", fopen("/../../../etc/hostname", "rb") != NULL);
  exit(atoi(argv[2]));
}
`;

const test = suite('bench --peers');
let dir: string;
test.before(() => {
  dir = mkdtempSync(join(tmpdir(), 'edge-flash-peers-test-'));
});
test.after(() => rmSync(dir, { recursive: true, force: true }));

test('a build is cached by source and flags, and rebuilt when either changes', async () => {
  const cache = join(dir, 'cache');
  const b = wasmBuild();
  const first = await buildCached(PROGRAM, b, 'prog.wasm', cache);
  assert.is(first.cached, false);
  const again = await buildCached(PROGRAM, b, 'prog.wasm', cache);
  assert.equal(again, { path: first.path, cached: true });
  const otherFlags = await buildCached(PROGRAM, { ...b, flags: [...b.flags, '-DX=1'] }, 'prog.wasm', cache);
  assert.is(otherFlags.cached, false);
  assert.is.not(otherFlags.path, first.path);
  const otherSource = await buildCached(PROGRAM + '\n', b, 'prog.wasm', cache);
  assert.is.not(otherSource.path, first.path);
  assert.is.not(otherSource.path, otherFlags.path);
});

test('a failed build is a UserError and leaves nothing cached', async () => {
  const cache = join(dir, 'cache-bad');
  const bad = () => buildCached('int main(void) { return nope; }', wasmBuild(), 'bad.wasm', cache);
  for (let i = 0; i < 2; i++) {
    try {
      await bad();
      assert.unreachable('built');
    } catch (e) {
      assert.instance(e, UserError);
      assert.match((e as Error).message, /nope/);
    }
  }
});

test('patchRunc makes the stop at BOS conditional, and refuses a file that is not run.c', () => {
  const src = 'x;\n        if (next == 1) { break; }\n y;';
  assert.is(patchRunc(src), 'x;\n        if (next == 1 && RUNC_STOP_AT_BOS) { break; }\n y;');
  assert.throws(() => patchRunc('int main(void) { return 0; }'), (e: unknown) => e instanceof UserError);
});

async function program(): Promise<{ wasm: Uint8Array<ArrayBuffer>; data: Buffer; hash: number }> {
  const wasm = new Uint8Array(readFileSync((await buildCached(PROGRAM, wasmBuild(), 'prog.wasm', join(dir, 'cache'))).path));
  const data = Buffer.alloc(200_000);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7919) & 255;
  writeFileSync(join(dir, 'data.bin'), data);
  let hash = 0;
  for (const b of data) hash = (Math.imul(hash, 31) + b) >>> 0;
  return { wasm, data, hash };
}

test('a wasm32-wasi program runs under the wasm3 addon with the WASI layer: files, mmap, clock, streams, exit code', async () => {
  const { wasm, data, hash } = await program();
  const w = wasiImports({ args: ['prog', '/data.bin', '3'], preopen: { guest: '/', host: dir } });
  const inst = (await getEngine('wasm3')).instantiate(wasm, w.imports, { stackBytes: 1 << 16 });
  try {
    assert.is(runWasiStart(inst), 3);
  } finally {
    inst.close();
    w.close();
  }
  assert.is(w.stdout(), `size ${data.length} hash ${hash}\n`);
  assert.is(w.stderr(), 'escaped 0\n');
  // a missing file: the program's own error path, through path_open's ENOENT
  const m = wasiImports({ args: ['prog', '/missing.bin', '0'], preopen: { guest: '/', host: dir } });
  const inst2 = (await getEngine('wasm3')).instantiate(wasm, m.imports);
  try {
    assert.is(runWasiStart(inst2), 4);
  } finally {
    inst2.close();
  }
  assert.is(m.stderr(), 'cannot open /missing.bin\n');
});

test('the same module under node:wasi prints the same', async () => {
  const { wasm, data, hash } = await program();
  const outFd = openSync(join(dir, 'out.txt'), 'w'), errFd = openSync(join(dir, 'err.txt'), 'w');
  let code: number;
  try {
    const wasi = new WASI({ version: 'preview1', args: ['prog', '/data.bin', '0'], env: {}, preopens: { '/': dir }, stdout: outFd, stderr: errFd, returnOnExit: true });
    const inst = await WebAssembly.instantiate(await WebAssembly.compile(wasm), { wasi_snapshot_preview1: wasi.wasiImport } as WebAssembly.Imports);
    code = wasi.start(inst);
  } finally {
    closeSync(outFd);
    closeSync(errFd);
  }
  assert.is(code, 0);
  assert.is(readFileSync(join(dir, 'out.txt'), 'utf8'), `size ${data.length} hash ${hash}\n`);
});

test('--peers: missing --runc-src and a file that is not run.c exit 2 with one line', () => {
  const a = cli('bench', '--model', '260k', '--peers');
  assert.is(a.code, 2);
  assert.match(a.err.trim(), /^edge-flash: .*--runc-src/);
  writeFileSync(join(dir, 'not-run.c'), 'int main(void) { return 0; }\n');
  const b = cli('bench', '--model', '260k', '--peers', '--runc-src', join(dir, 'not-run.c'));
  assert.is(b.code, 2);
  assert.match(b.err.trim().split('\n').pop()!, /^edge-flash: .*run\.c/);
});

test.run();
