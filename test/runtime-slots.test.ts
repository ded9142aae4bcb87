// The virtual board's slots (boards/runtime/core/slots.c over posix/flash_file.c): a new image boots
// pending and is confirmed by its first boot's self-test; a crash or a failed self-test before that rolls
// back; a trap in the app is an error and the next call works; and the power-cut sweep, as MCUboot's
// simulator runs it: for every storage operation i of a clean upload + commit + first boot, kill the
// runtime at operation i (half of it done), restart on the same slot file, and require the old image or
// the new one, whole, and a board that still takes an upload.
import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeImage } from '../host/image/write.ts';
import { fromRoot } from '../host/paths.ts';
import { TINY, imageParts } from './fixtures/image.ts';
import { makeRuntime, runBin } from './runtime-helpers.ts';

const bin = join(makeRuntime(), 'edge-flash-runtime');
const dir = mkdtempSync(join(tmpdir(), 'edge-flash-rt-slots-'));
const VEC = fromRoot('test', 'vectors', 'image');
const A = join(VEC, 'small.efimg');
const B = join(VEC, 'small-signed.efimg');
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const SHA_A = sha(readFileSync(A));
const SHA_B = sha(readFileSync(B));
const ERASE = 4096;
const CAPACITY = 131072; // a slot that holds the device app (48.5 KB) with a tiny model beside it
const BOARD = ['--board-id', '2', '--capacity', String(CAPACITY), '--erase-block', String(ERASE)];

function rt(file: string, args: string[], stopAt?: number) {
  const r = runBin(bin, ['--slot-file', file, ...BOARD, ...args], { env: stopAt ? { EDGE_FLASH_STOP_AT_OP: String(stopAt) } : {} });
  const events = r.out.trim() ? r.out.trim().split('\n').map((l) => JSON.parse(l)) : [];
  const ops = Number(/storage operations: (\d+)/.exec(r.err)?.[1] ?? NaN);
  return { ...r, events, ops };
}

function ok(r: ReturnType<typeof rt>, what: string) {
  assert.is(r.code, 0, `${what}: exit ${r.code} ${r.signal ?? ''}\n${r.err}`);
  return r;
}

// The bytes of a slot as the file holds them: [2 record blocks][slot 0][slot 1].
function slotBytes(file: string, slot: number, size: number): Uint8Array {
  const b = readFileSync(file);
  const at = 2 * ERASE + slot * CAPACITY;
  return b.subarray(at, at + size);
}

// A file with image A installed and confirmed.
function baseFile(name: string): string {
  const f = join(dir, name);
  ok(rt(f, ['--install', A]), 'install A');
  const boot = ok(rt(f, ['--boot']), 'boot A');
  assert.is(boot.events[0].event, 'booted');
  assert.is(boot.events[0].slots[0].state, 'confirmed');
  return f;
}

function booted(r: ReturnType<typeof rt>) {
  const e = r.events.find((x) => x.event === 'booted');
  assert.ok(e, `no boot: ${r.out} ${r.err}`);
  return { slot: e.booted as number, sha: e.slots[e.booted].sha256 as string, size: e.slots[e.booted].size as number, state: e.slots[e.booted].state as string };
}

test('a new image boots pending, its first boot confirms it; VERIFY and COMMIT refuse what is not whole', () => {
  const f = baseFile('pending.bin');
  const inst = ok(rt(f, ['--install', B]), 'install B');
  assert.is(inst.events[0].slots[1].state, 'pending');
  assert.is(inst.events[0].active, 1);
  const b = booted(ok(rt(f, ['--boot']), 'boot B'));
  assert.is(b.sha, SHA_B);
  assert.is(b.state, 'confirmed');
  // an image that fails a check is never committed: the running image stays
  const bad = rt(f, ['--install', join(VEC, 'bit-flipped.efimg')]);
  assert.is(bad.code, 2);
  assert.match(bad.err, /verify: image: section_crc: section 'weights': CRC-32/);
  assert.is(booted(ok(rt(f, ['--boot']), 'boot after a refused image')).sha, SHA_B);
});

test('a crash before the confirm rolls back to the previous image on the next start', () => {
  const f = baseFile('crash.bin');
  ok(rt(f, ['--install', B]), 'install B');
  // the first boot: trial record (erase, write), then the confirm (erase, write); die in the confirm's erase
  const cut = rt(f, ['--boot'], 3);
  assert.is(cut.signal, 'SIGKILL', cut.err);
  const r = ok(rt(f, ['--boot']), 'boot after the crash');
  const b = booted(r);
  assert.is(b.sha, SHA_A);
  assert.is(r.events[0].slots[1].state, 'invalid');
});

// A module that imports edge.weights_read and exports trap (unreachable), answer (42) and oob
// (weights_read of a range past the image's end).
const TRAP_APP = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  0x01, 0x0b, 0x02, 0x60, 0x00, 0x01, 0x7f, 0x60, 0x03, 0x7f, 0x7f, 0x7f, 0x00,
  0x02, 0x15, 0x01, 0x04, ...Buffer.from('edge'), 0x0c, ...Buffer.from('weights_read'), 0x00, 0x01,
  0x03, 0x04, 0x03, 0x00, 0x00, 0x00,
  0x05, 0x03, 0x01, 0x00, 0x01,
  0x07, 0x17, 0x03, 0x04, ...Buffer.from('trap'), 0x00, 0x01, 0x06, ...Buffer.from('answer'), 0x00, 0x02, 0x03, ...Buffer.from('oob'), 0x00, 0x03,
  0x0a, 0x18, 0x03, 0x03, 0x00, 0x00, 0x0b, 0x04, 0x00, 0x41, 0x2a, 0x0b,
  0x0d, 0x00, 0x41, 0x00, 0x41, 0x70, 0x41, 0xe4, 0x00, 0x10, 0x00, 0x41, 0x00, 0x0b,
]);

test('a trap in the app is an error, and the next call works', () => {
  const f = baseFile('trap.bin');
  const img = join(dir, 'trap.efimg');
  writeFileSync(img, writeImage(imageParts(TINY, 5, { app: TRAP_APP })).bytes);
  ok(rt(f, ['--install', img]), 'install the trapping app');
  const r = ok(rt(f, ['--boot', '--call', 'trap', '--call', 'answer', '--call', 'oob', '--call', 'answer']), 'boot and call');
  const calls = r.events.filter((e) => e.event === 'call');
  assert.is(calls.length, 4, r.out);
  assert.is(calls[0].ok, false);
  assert.match(calls[0].error, /unreachable/);
  assert.equal([calls[1].ok, calls[1].result], [true, 42]);
  assert.is(calls[2].ok, false);
  assert.match(calls[2].error, /weights_read: image range \[4294967280, \+100\) is outside the image/);
  assert.equal([calls[3].ok, calls[3].result], [true, 42]);
});

// Exports far (i32.load at 50,000) and near (i32.load at 30,000); one page of memory declared.
const MEMORY_APP = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7f,
  0x03, 0x03, 0x02, 0x00, 0x00,
  0x05, 0x03, 0x01, 0x00, 0x01,
  0x07, 0x0e, 0x02, 0x03, ...Buffer.from('far'), 0x00, 0x00, 0x04, ...Buffer.from('near'), 0x00, 0x01,
  0x0a, 0x15, 0x02, 0x09, 0x00, 0x41, 0xd0, 0x86, 0x03, 0x28, 0x02, 0x00, 0x0b, 0x09, 0x00, 0x41, 0xb0, 0xea, 0x01, 0x28, 0x02, 0x00, 0x0b,
]);

test('linear memory is capped at the image\'s planned_linear to the byte, not to whole pages', () => {
  const f = baseFile('memory.bin');
  const img = join(dir, 'memory.efimg');
  writeFileSync(img, writeImage(imageParts(TINY, 7, { app: MEMORY_APP }, { plannedLinear: 40000, linearLimit: 40000 })).bytes);
  ok(rt(f, ['--install', img]), 'install');
  const r = ok(rt(f, ['--boot', '--call', 'near', '--call', 'far', '--call', 'near']), 'boot');
  const app = r.events.find((e) => e.event === 'app');
  assert.equal([app.memory, app.memory_cap], [40000, 40000]);
  const calls = r.events.filter((e) => e.event === 'call');
  assert.equal(calls.map((c) => c.ok), [true, false, true]);
  assert.match(calls[1].error, /out of bounds/);
});

test('an app that does not load fails its self-test and rolls back at once', () => {
  const f = baseFile('selftest.bin');
  const img = join(dir, 'broken-app.efimg');
  const app = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0xff, 0xff]); // a type section past the end
  writeFileSync(img, writeImage(imageParts(TINY, 6, { app })).bytes);
  ok(rt(f, ['--install', img]), 'install the broken app');
  const r = ok(rt(f, ['--boot']), 'boot');
  assert.is(r.events[0].event, 'self_test_failed');
  assert.match(r.err, /self-test failed: wasm3: parse/);
  assert.is(r.events[0].active, 0);
  assert.is(booted(ok(rt(f, ['--boot']), 'boot again')).sha, SHA_A);
});

// The device app with a seeded tiny model: the self-test is model_init from the image's descriptor and a
// few tokens of inference; an image whose plan the app does not meet fails it and rolls back.
const DEVICE_APP = new Uint8Array(readFileSync(fromRoot('build', 'device.wasm')));

test('a model image\'s self-test infers: it boots confirmed; one whose plan is wrong rolls back at once', () => {
  const f = baseFile('model.bin');
  const good = join(dir, 'tiny-model.efimg');
  writeFileSync(good, writeImage(imageParts(TINY, 9, { app: DEVICE_APP })).bytes);
  ok(rt(f, ['--install', good]), 'install the model');
  const r = ok(rt(f, ['--boot']), 'boot the model');
  assert.is(booted(r).state, 'confirmed');
  assert.is(r.events.find((e) => e.event === 'app').model, true);
  for (const [linear, why] of [[70000, /self-test failed: app trapped in 'model_init': .*out of bounds/], [140000, /self-test failed: model_init reached \d+ bytes of linear memory, the image's plan says 140000/]] as const) {
    const g = baseFile(`model-${linear}.bin`);
    const bad = join(dir, `tiny-model-${linear}.efimg`);
    writeFileSync(bad, writeImage(imageParts(TINY, 9, { app: DEVICE_APP }, { plannedLinear: linear, linearLimit: linear })).bytes);
    ok(rt(g, ['--install', bad]), `install the model planned for ${linear}`);
    const b = ok(rt(g, ['--boot']), 'boot');
    assert.is(b.events[0].event, 'self_test_failed');
    assert.match(b.err, why);
    assert.is(booted(ok(rt(g, ['--boot']), 'boot again')).sha, SHA_A);
  }
});

test('power-cut sweep over every storage operation of upload + commit + first boot', () => {
  const base = baseFile('sweep-base.bin');
  // count the operations of a clean run
  const clean = join(dir, 'sweep-clean.bin');
  copyFileSync(base, clean);
  const n1 = ok(rt(clean, ['--install', B]), 'clean install').ops;
  const n2 = ok(rt(clean, ['--boot']), 'clean boot').ops;
  const N = n1 + n2;
  assert.ok(n1 > 4 && n2 >= 4, `${n1} + ${n2}`);
  const seen = { old: 0, new: 0 };
  for (let i = 1; i <= N; i++) {
    const f = join(dir, 'sweep.bin');
    copyFileSync(base, f);
    if (i <= n1) {
      assert.is(rt(f, ['--install', B], i).signal, 'SIGKILL', `op ${i}: the install did not stop`);
    } else {
      ok(rt(f, ['--install', B]), `op ${i}: install`);
      assert.is(rt(f, ['--boot'], i - n1).signal, 'SIGKILL', `op ${i}: the boot did not stop`);
    }
    // the restart boots the old image or the new one, whole
    const b = booted(ok(rt(f, ['--boot']), `op ${i}: restart`));
    assert.ok(b.sha === SHA_A || b.sha === SHA_B, `op ${i}: booted ${b.sha}`);
    assert.is(sha(slotBytes(f, b.slot, b.size)), b.sha, `op ${i}: slot ${b.slot} holds a mixture`);
    if (b.sha === SHA_A) seen.old++; else seen.new++;
    // and still takes an upload, which then boots
    const other = b.sha === SHA_A ? B : A;
    ok(rt(f, ['--install', other]), `op ${i}: upload after the cut`);
    assert.is(booted(ok(rt(f, ['--boot']), `op ${i}: boot after the upload`)).sha, other === A ? SHA_A : SHA_B);
  }
  assert.ok(seen.old > 0 && seen.new > 0, JSON.stringify(seen));
  process.stderr.write(`runtime slots: power-cut sweep over N = ${N} storage operations (upload + commit ${n1}, first boot ${n2}): old image after ${seen.old} cuts, new after ${seen.new}\n`);
});

test.run();
