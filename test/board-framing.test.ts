// Framing and the frame table against the shared vectors (test/vectors/protocol/), which the C runtime
// passes too: the committed files are exactly what the generator makes, and the decoder gives each
// stream's events whether it is fed byte by byte or all at once.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { crc32 } from '../host/image/crc32.ts';
import { toHex } from '../host/image/sign.ts';
import { ERR, FRAME_TYPES, TYPE_BY_NAME, decodePayload, encodePayload, payloadRange } from '../host/board/frames.ts';
import { Decoder, cobsDecode, cobsEncode, decodeFrame, encodeFrame, maxEncoded } from '../host/board/framing.ts';
import { PROTOCOL_VECTOR_DIR, SAMPLES, vectorFiles } from './vectors/protocol/generate.ts';

const fromHex = (h: string) => Uint8Array.from(Buffer.from(h, 'hex'));
const V = JSON.parse(readFileSync(join(PROTOCOL_VECTOR_DIR, 'vectors.json'), 'utf8'));

const vec = suite('protocol vectors');

vec('committed vector files are what the generator makes', () => {
  for (const [name, content] of vectorFiles()) {
    assert.is(readFileSync(join(PROTOCOL_VECTOR_DIR, name), 'utf8'), content, `${name} is stale: run npx tsx test/vectors/protocol/generate.ts`);
  }
});

vec('every frame type has a sample, every sample round-trips', () => {
  for (const t of FRAME_TYPES) assert.ok(SAMPLES.some((s) => s.type === t.name), `no vector for ${t.name}`);
  for (const f of V.frames) {
    const t = TYPE_BY_NAME[f.type_name];
    const payload = fromHex(f.payload);
    assert.is(toHex(encodeFrame(t.code, f.seq, payload)), f.wire, f.name);
    const d = decodeFrame(fromHex(f.wire).subarray(0, -1), t.dir, 65535);
    assert.is(d.kind, 'frame', f.name);
    if (d.kind !== 'frame') continue;
    assert.is(d.type.name, f.type_name);
    assert.is(d.seq, f.seq);
    assert.is(toHex(encodePayload(t, d.fields)), f.payload, `${f.name}: fields re-encode to the payload`);
    for (const [k, v] of Object.entries(f.fields)) {
      const got = d.fields[k];
      if (v && typeof v === 'object' && 'hex' in (v as any)) assert.is(toHex(got as Uint8Array), (v as any).hex, `${f.name}.${k}`);
      else if (typeof v === 'number' && !Number.isInteger(v)) assert.ok(Math.abs((got as number) - v) < 1e-7, `${f.name}.${k}`);
      else assert.equal(got, v, `${f.name}.${k}`);
    }
  }
});

vec('CRC and COBS cases', () => {
  for (const c of V.crc) assert.is(crc32(new TextEncoder().encode(c.ascii)), c.crc32);
  for (const c of V.cobs) {
    const enc = cobsEncode(fromHex(c.data));
    assert.is(toHex(enc), c.encoded, c.name);
    assert.ok(!enc.includes(0), `${c.name}: no zero in the encoding`);
    assert.is(toHex(cobsDecode(enc)!), c.data, c.name);
  }
  // a decoder also takes a 254-run without the final 01
  const run = Uint8Array.from({ length: 254 }, (_, i) => i + 1);
  assert.is(toHex(cobsDecode(cobsEncode(run).subarray(0, 255))!), toHex(run));
  assert.is(cobsDecode(Uint8Array.of(5, 1, 2)), null);
});

vec('decode streams: byte by byte and all at once give the vector events', () => {
  assert.ok(V.decode.length >= 20);
  for (const c of V.decode) {
    const stream = fromHex(c.stream);
    for (const mode of ['whole', 'bytes']) {
      const d = new Decoder(c.receives, c.max_frame);
      const events = mode === 'whole' ? d.push(stream) : [...stream].flatMap((b) => d.push(Uint8Array.of(b)));
      const json = events.map((e) =>
        e.kind === 'skip' ? { skip: toHex(e.bytes) }
          : e.kind === 'error' ? { error: Object.entries(ERR).find(([, v]) => v === e.code)![0], code: e.code, req_type: e.reqType, seq: e.seq, arg: e.arg }
            : { frame: e.type.name, type: e.type.code, seq: e.seq, payload: toHex(e.payload) });
      assert.equal(json, c.events, `${c.name} (${mode})`);
      assert.is(toHex(d.pending()), c.held, `${c.name}: held bytes`);
    }
  }
  const codes = new Set(V.decode.flatMap((c: any) => c.events.map((e: any) => e.error).filter(Boolean)));
  for (const want of ['BAD_FRAME', 'BAD_CRC', 'UNKNOWN_TYPE', 'BAD_LENGTH', 'FRAME_TOO_LARGE']) assert.ok(codes.has(want), `no vector for ${want}`);
});

const prop = suite('framing properties');

prop('random bodies round-trip and never contain a zero; the encoded size bound holds', () => {
  let x = 12345;
  const rnd = () => ((x = (x * 1103515245 + 12345) >>> 0) >>> 16);
  for (let n = 0; n < 600; n++) {
    const len = rnd() % 1200;
    const data = Uint8Array.from({ length: len }, () => (rnd() % 4 === 0 ? 0 : rnd() & 0xff));
    const enc = cobsEncode(data);
    assert.ok(!enc.includes(0));
    assert.ok(enc.byteLength <= maxEncoded(len));
    assert.is(toHex(cobsDecode(enc)!), toHex(data));
  }
});

prop('every single-bit flip of a frame is caught (an error or a different frame is never delivered as the original)', () => {
  const chat = SAMPLES.find((s) => s.name === 'chat')!;
  const t = TYPE_BY_NAME.CHAT;
  const wire = encodeFrame(t.code, chat.seq, encodePayload(t, chat.fields));
  let errors = 0;
  for (let i = 0; i < wire.byteLength * 8; i++) {
    const w = wire.slice();
    w[i >> 3] ^= 1 << (i & 7);
    const events = new Decoder('to_device', 4096).push(Uint8Array.of(0, ...w, 0));
    assert.ok(!events.some((e) => e.kind === 'frame' && toHex(e.payload) === toHex(encodePayload(t, chat.fields)) && e.seq === chat.seq && e.type === t), `flip ${i} went unnoticed`);
    if (events.some((e) => e.kind === 'error')) errors++;
  }
  assert.is(errors, wire.byteLength * 8);
});

prop('payload ranges: fixed types refuse one byte more or less', () => {
  for (const t of FRAME_TYPES) {
    const r = payloadRange(t);
    if (r.max !== null) assert.is(decodePayload(t, new Uint8Array(r.min)) !== null, true, t.name);
    const enc = encodeFrame(t.code, 1, new Uint8Array(r.min + (r.max === null ? 0 : 1)));
    const d = decodeFrame(enc.subarray(0, -1), t.dir, 4096);
    if (r.max === null) assert.is(d.kind, 'frame', t.name);
    else assert.is(d.kind === 'error' && d.code, ERR.BAD_LENGTH, t.name);
    if (r.min > 0) {
      const s = decodeFrame(encodeFrame(t.code, 1, new Uint8Array(r.min - 1)).subarray(0, -1), t.dir, 4096);
      assert.is(s.kind === 'error' && s.code, ERR.BAD_LENGTH, `${t.name} short`);
    }
  }
});

vec.run();
prop.run();
