// The host's serial stack (transport, client, commands) against FakeDeviceForTests, a TypeScript test
// double of the runtime over a Unix socket: flash with the window, resume after a disconnect at 1, 50
// and 99 %, dropped and flipped bytes both ways, errors named by chunk, a silent board, chat and cancel.
// The same host code against the C virtual board is tested where the runtime lands.
import { readFileSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BoardError, Client } from '../host/board/client.ts';
import { chat, flash, formatInfo, info, upload } from '../host/board/commands.ts';
import { StreamTransport } from '../host/board/transport.ts';
import { sha256, toHex } from '../host/image/sign.ts';
import { fromRoot } from '../host/paths.ts';
import { UserError } from '../host/errors.ts';
import { FakeDeviceForTests, type FakeOptions } from './board-fake-device.ts';

const IMAGE = new Uint8Array(readFileSync(fromRoot('test', 'vectors', 'image', 'small.efimg')));
const IMAGE_SHA = toHex(sha256(IMAGE));

async function board(opts: FakeOptions = {}) {
  const dev = new FakeDeviceForTests(opts);
  await dev.listen();
  return dev;
}
async function open(dev: FakeDeviceForTests): Promise<Client> {
  const c = new Client(new StreamTransport('fake', await dev.connect()), 115200);
  await c.hello();
  return c;
}
async function rejects(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

const s = suite('board client');

s('the chunk size adapts: it halves on a noisy line and grows back to max_chunk once the line is clean', async () => {
  const dev = await board({ maxFrame: 1024, window: 4 });
  const c = await open(dev);
  const image = Uint8Array.from({ length: 160 * 1024 }, (_, i) => (i * 2654435761) >>> 24);
  dev.faults = { flip: 0.004, seed: 9 };
  let quietAt = -1;
  const r = await upload(c, image, (n) => {
    if (quietAt < 0 && n >= 24 * 1024) {
      quietAt = n;
      dev.faults = {};   // the line turns clean
    }
  });
  assert.ok(quietAt > 0);
  assert.equal(dev.slots[dev.upload!.slot].bytes, image, 'every byte arrived');
  const max = 1024 - 10;
  assert.is(r.chunkMax, max);
  assert.ok(r.rewinds > 0 && r.deviceErrors > 0, JSON.stringify(r));
  const noisy = dev.written.filter((w) => w.offset < quietAt), clean = dev.written.filter((w) => w.offset >= quietAt);
  // between the floor (32) and max_chunk, smaller while the line was noisy
  for (const w of dev.written.slice(0, -1)) assert.ok(w.len >= 32 && w.len <= max, `a chunk of ${w.len}`);
  assert.ok(Math.min(...noisy.map((w) => w.len)) <= max / 4, JSON.stringify(noisy.map((w) => w.len)));
  // after the line turned clean it grew back, and the last chunks went at max_chunk again
  assert.ok(clean.slice(-20, -1).every((w) => w.len === max), JSON.stringify(clean.map((w) => w.len)));
  // what the result reports is what the board saw (repeats and discarded chunks included)
  assert.ok(Object.values(r.chunkSizes).reduce((a, b) => a + b, 0) >= dev.written.length);
  await c.close();
  await dev.stop();
});

s('HELLO and INFO: board, slots, versions', async () => {
  const dev = await board();
  const c = await open(dev);
  assert.is(c.deviceMaxFrame, 1024);
  const i = await info(c);
  assert.is(i.board, 'esp32');
  assert.is(i.slotCapacity, dev.profile.imageCapacity);
  assert.equal(i.slots, { A: 'empty', B: 'empty' });
  assert.is(i.bootedSha256, null);
  assert.match(formatInfo(i), /board:\s+esp32 \(id 2\)/);
  await c.close();
  await dev.stop();
});

s('flash: upload in a window, VERIFY, COMMIT, RESET boots the image', async () => {
  const dev = await board({ maxFrame: 512, window: 4, ackDelayMs: 5 });
  const c = await open(dev);
  const seen: number[] = [];
  const r = await flash(c, IMAGE, { reset: true, onProgress: (n) => seen.push(n) });
  assert.is(r.sha256, IMAGE_SHA);
  assert.is(r.upload.resumedAt, 0);
  assert.is(r.booted?.bootedSha256, IMAGE_SHA);
  assert.is(r.slot, 'A');
  assert.is(dev.maxUnacked, 4, 'four chunks in flight, never more');
  assert.is(seen[seen.length - 1], IMAGE.byteLength);
  assert.ok(seen.every((x, k) => k === 0 || x > seen[k - 1]), 'progress only grows');
  assert.is(dev.chunkFrames, Math.ceil(IMAGE.byteLength / 502), 'no chunk sent twice on a clean line');
  // a second image goes to the other slot
  const again = await flash(c, IMAGE, { reset: false });
  assert.is(again.slot, 'B');
  await c.close();
  await dev.stop();
});

for (const pct of [1, 50, 99]) {
  s(`resume after a disconnect at ${pct} %`, async () => {
    const dev = await board({ maxFrame: 512 });
    dev.faults = { disconnectAtByte: Math.max(20, Math.floor((IMAGE.byteLength * pct) / 100)) };
    const c1 = await open(dev);
    const e = await rejects(flash(c1, IMAGE));
    assert.instance(e, BoardError);
    assert.match(e.message, new RegExp(`went away at \\d+ of ${IMAGE.byteLength} bytes`));
    const had = dev.upload!.next;
    const c2 = await open(dev);
    const r = await flash(c2, IMAGE);
    assert.is(r.upload.resumedAt, had);
    if (pct > 1) assert.ok(had > 0, 'some bytes were kept');
    assert.is(r.upload.bytes, IMAGE.byteLength - had, 'only the missing bytes are sent');
    assert.is(r.sha256, IMAGE_SHA);
    await c2.close();
    await dev.stop();
  });
}

s('a different image starts over at 0', async () => {
  const dev = await board({ maxFrame: 512 });
  dev.faults = { disconnectAtByte: 8000 };
  await rejects(flash(await open(dev), IMAGE));
  assert.ok(dev.upload!.next > 0);
  const other = IMAGE.slice();
  // the same size, another SHA-256 (upload alone: the bytes need not be a valid image)
  other[other.byteLength - 1] ^= 1;
  const c = await open(dev);
  const r = await upload(c, other);
  assert.is(r.resumedAt, 0);
  await c.close();
  await dev.stop();
});

s('dropped and flipped bytes both ways: the upload completes, the SHA-256 is verified', async () => {
  const dev = await board({ maxFrame: 512, window: 4 });
  const c = await open(dev);
  dev.faults = { drop: 0.0005, flip: 0.0005, replyDrop: 0.002, replyFlip: 0.002, seed: 7 };
  const r = await flash(c, IMAGE);
  assert.is(r.sha256, IMAGE_SHA);
  assert.ok(dev.badFrames + r.upload.rewinds + r.upload.timeouts > 0, 'the faults hit something');
  assert.ok(r.upload.bytes > IMAGE.byteLength, 'lost chunks were resent');
  await c.close();
  await dev.stop();
});

s('VERIFY catches what storage got wrong; COMMIT without VERIFY is refused', async () => {
  const dev = await board({ corruptStorage: true });
  const c = await open(dev);
  const e = await rejects(flash(c, IMAGE));
  assert.match(e.message, /^failed to verify the image: SHA-256 of the written image differs/);
  const e2 = await rejects(c.request('COMMIT', {}, 1000, 'commit the image'));
  assert.is((e2 as BoardError).codeName, 'NOT_VERIFIED');
  assert.match(e2.message, /failed to commit the image: image not verified/);
  await c.close();
  await dev.stop();
});

s('a storage failure is named by its chunk', async () => {
  const dev = await board({ maxFrame: 512, storageFailAt: 12 * 502 + 10 });
  const c = await open(dev);
  const e = await rejects(flash(c, IMAGE));
  assert.is(e.message, 'failed to write chunk 12: storage failed: write at 6034 failed');
  await c.close();
  await dev.stop();
});

s('refuses an image for another board and one larger than the slot, with numbers', async () => {
  const dev = await board({ board: 'esp32s3' });
  const c = await open(dev);
  const wrong = new Uint8Array(readFileSync(fromRoot('test', 'vectors', 'image', 'small.efimg')));
  const e = await rejects(flash(c, wrong));
  // small.efimg is for esp32; an esp32s3 does not run it
  assert.instance(e, UserError);
  assert.match(e.message, /the image is for esp32 \(id 2\); the board on fake is esp32s3/);
  await c.close();
  await dev.stop();
  const dev2 = await board();
  const c2 = await open(dev2);
  const big = await rejects(c2.request('UPLOAD_BEGIN', { image_size: dev2.profile.imageCapacity + 1, sha256: new Uint8Array(32) }, 1000, 'begin the upload'));
  assert.is(big.message, `failed to begin the upload: image larger than the slot: image is ${dev2.profile.imageCapacity + 1} bytes, the slot holds ${dev2.profile.imageCapacity}`);
  await c2.close();
  await dev2.stop();
});

s('a silent board: a clear line within the HELLO timeouts', async () => {
  const dev = await board({ silent: true });
  const t0 = Date.now();
  const c = new Client(new StreamTransport('fake', await dev.connect()), 115200);
  const e = await rejects(c.hello());
  const ms = Date.now() - t0;
  assert.match(e.message, /^no answer from fake within 2.0 s \(4 HELLOs at 115200 baud\)/);
  assert.ok(ms >= 1900 && ms < 4000, `gave up after ${ms} ms`);
  await c.close();
  await dev.stop();
});

s('chat: tokens stream, stats end the reply; cancel stops it', async () => {
  const dev = await board({ tokenDelayMs: 2 });
  const c = await open(dev);
  await flash(c, IMAGE, { reset: true });
  const pieces: string[] = [];
  const r = await chat(c, { prompt: 'hello', seed: 1, temperature: 0, topP: 1, steps: 0, mode: 'generate', newConversation: true }, (t) => pieces.push(t)).done;
  assert.is(r.text, 'HELLO');
  assert.equal(r.tokens, [100, 101, 102, 103, 104]);
  assert.equal(pieces, ['H', 'E', 'L', 'L', 'O']);
  assert.is(r.stats.reason, 'steps');
  assert.is(r.stats.tokens, 5);
  // a long reply, cancelled after a few tokens
  let n = 0;
  const h = chat(c, { prompt: 'x'.repeat(200), seed: 1, temperature: 0.8, topP: 0.9, steps: 0, mode: 'chat', newConversation: false }, () => {
    if (++n === 3) void h.cancel();
  });
  const rc = await h.done;
  assert.is(rc.stats.reason, 'cancelled');
  assert.ok(rc.tokens.length >= 3 && rc.tokens.length < 200, `${rc.tokens.length} tokens before the cancel took`);
  // bad settings are refused by the board and the next chat works
  const bad = await rejects(chat(c, { prompt: 'a', seed: 1, temperature: -1, topP: 1, steps: 0, mode: 'generate', newConversation: true }).done);
  assert.match(bad.message, /failed to start the chat: sampler settings out of range/);
  const ok = await chat(c, { prompt: 'ab', seed: 1, temperature: 0, topP: 1, steps: 1, mode: 'generate', newConversation: true }).done;
  assert.is(ok.text, 'A');
  await c.close();
  await dev.stop();
});

s.run();
