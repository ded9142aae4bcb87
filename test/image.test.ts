// Images: the writer and reader round-trip, every bad-input case gives its own error, the committed
// vectors (test/vectors/image/) are exactly what the generator makes, and keys sign and verify.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { boardByName } from '../host/board/boards.ts';
import { crc32, crc32Table } from '../host/image/crc32.ts';
import { ImageError, KIND } from '../host/image/format.ts';
import { descriptorBytes, layoutImage, tensorBytes } from '../host/image/layout.ts';
import { imageToModel } from '../host/image/model.ts';
import { convert, dequantize } from '../host/model/quantize.ts';
import { quantTensor, readImage } from '../host/image/read.ts';
import { generateKeyPair, privateKeyFromPem, rawPublicKey } from '../host/image/sign.ts';
import { seal, writeImage } from '../host/image/write.ts';
import * as D from '../host/model/desc.ts';
import { formatByName } from '../host/quant/formats.ts';
import { outcome, vectorFiles, VECTOR_DIR } from '../tools/gen-image-vectors.ts';
import { imageVectors } from './fixtures/image-vectors.ts';
import { TINY, VECTOR_FORMATS, imageParts, testKey, tinyModel } from './fixtures/image.ts';

const esp32 = boardByName('esp32');

function errorOf(fn: () => unknown): ImageError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ImageError) return e;
    throw e;
  }
  throw new Error('expected an ImageError, got none');
}

const basics = suite('image format');

basics('CRC-32 is the IEEE/zlib CRC', () => {
  assert.is(crc32(new TextEncoder().encode('123456789')), 0xcbf43926);
  assert.is(crc32(new Uint8Array(0)), 0);
  const a = new TextEncoder().encode('edge-'), b = new TextEncoder().encode('flash');
  assert.is(crc32(b, crc32(a)), crc32(new TextEncoder().encode('edge-flash')));
  // zlib's (where Node has it) and the table version (the C runtime's) agree
  const r = new Uint8Array(100003).map((_, i) => (i * 2654435761) >>> 24);
  assert.is(crc32(r), crc32Table(r));
  assert.is(crc32(r.subarray(5000), crc32Table(r.subarray(0, 5000))), crc32Table(r));
  assert.is(crc32Table(new TextEncoder().encode('123456789')), 0xcbf43926);
});

basics('write then read gives back the config, tokenizer, app, tensors and metadata', () => {
  const parts = imageParts(TINY, 3);
  const { bytes, layout } = writeImage(parts);
  const img = readImage(bytes, { board: esp32 });
  assert.is(img.totalSize, bytes.byteLength);
  assert.is(img.totalSize, layout.totalSize);
  assert.equal({ ...img.config, normEps: parts.config.normEps }, parts.config);
  assert.equal([...img.tokenizer], [...parts.tokenizer]);
  assert.equal([...img.app], [...parts.app]);
  assert.equal(img.metadata, parts.metadata);
  assert.is(img.signature, null);
  assert.is(img.tensors.length, parts.tensors.length);
  img.tensors.forEach((t, i) => {
    const p = parts.tensors[i];
    assert.is(t.name, p.name);
    assert.is(t.format.id, p.format.id);
    assert.is(t.scale, Math.fround(p.scale));
    assert.equal([...t.data], [...p.data], t.name);
    assert.is(t.offset % 64, 0, `${t.name} is 64-byte aligned in the image`);
  });
});

basics('the writer is deterministic: the same parts give the same bytes', () => {
  assert.equal(writeImage(imageParts(TINY, 5)).bytes, writeImage(imageParts(TINY, 5)).bytes);
  assert.equal(writeImage(imageParts(TINY, 5, { signingKey: testKey() })).bytes, writeImage(imageParts(TINY, 5, { signingKey: testKey() })).bytes);
});

basics("the layout (which the planner uses) is the writer's to the byte", () => {
  for (const c of [TINY, { ...TINY, nLayers: 3, sharedClassifier: false, vocabSize: 48 }]) {
    const parts = imageParts(c, 1);
    const { bytes } = writeImage(parts);
    const size = layoutImage({ descriptor: descriptorBytes(c), app: parts.app.byteLength, tokenizer: parts.tokenizer.byteLength, tensors: parts.tensors.map((t) => tensorBytes(t.format, t.m, t.k)), metadata: new TextEncoder().encode(JSON.stringify(parts.metadata)).byteLength, signed: false }).totalSize;
    assert.is(size, bytes.byteLength);
  }
});

basics('matrices are stored padded (K to whole blocks, rows to the row tile) and read back as the kernels take them', () => {
  const c = { ...TINY, hiddenDim: 172 }; // ffn_down K = 172: tq1 stores 192 columns
  // ffn_gate (172 rows) in tt4: rows padded to 176
  const parts = imageParts(c, 9, {}, {}, { ...VECTOR_FORMATS, ffn_gate: 'tt4' });
  const model = tinyModel(c, 9);
  const img = readImage(writeImage(parts).bytes);
  for (const t of img.tensors) {
    assert.is(t.size, tensorBytes(t.format, t.m, t.k), t.name);
    const q = quantTensor(t);
    assert.is(q.k % t.format.block, 0, t.name);
    assert.is(q.m % (t.format.rowTile ?? 1), 0, t.name);
  }
  const down = img.tensors.find((x) => x.name === 'blk.0.ffn_down')!;
  assert.equal([down.m, down.k, down.mPadded, down.kPadded], [64, 172, 64, 192]);
  const g = img.tensors.find((x) => x.name === 'blk.0.ffn_gate')!;
  assert.equal([g.m, g.k, g.mPadded, g.kPadded], [172, 64, 176, 64]);
  // Padding is zero weights: the logical part dequantizes as the model's own conversion does.
  const back = dequantize(quantTensor(down), 64, 172);
  const want = dequantize(convert(model.layers[0].w2, 64, 172, formatByName('tq1')!), 64, 172);
  assert.equal([...back], [...want]);
});

basics('the image holds the Model it was made from: imageToModel gives the same tensors', () => {
  const parts = imageParts(TINY, 11);
  const m = imageToModel(readImage(writeImage(parts).bytes));
  assert.is(m.config.seqLen, parts.config.ctx);
  assert.is(m.classifier, null);
  assert.equal([...m.layers[0].w2.data], [...parts.tensors.find((t) => t.name === 'blk.0.ffn_down')!.data]);
  assert.is(m.tokenizer!.pieces.length, TINY.vocabSize);
});

const bad = suite('bad images');

bad('each corrupt vector gives its own error code and the recorded message', () => {
  const manifest = JSON.parse(readFileSync(join(VECTOR_DIR, 'vectors.json'), 'utf8'));
  const seen = new Set<string>();
  for (const v of imageVectors()) {
    const got = outcome(v);
    const want = manifest.vectors.find((x: any) => x.file === v.file).expect;
    assert.equal(got, want, v.file);
    if (v.expect === 'ok') assert.ok(got.ok, `${v.file}: ${got.message}`);
    else {
      assert.is(got.code, v.expect.code, `${v.file}: ${got.message}`);
      seen.add(v.expect.code);
    }
  }
  for (const code of ['truncated', 'magic', 'future_version', 'wrong_board', 'oversized', 'overlap', 'misaligned', 'section_crc', 'header_crc', 'sha256', 'signature']) {
    assert.ok(seen.has(code), `no vector for ${code}`);
  }
});

bad('a descriptor may keep no tokenizer (offset, bytes and text_bytes all 0: a host tokenizes), but not half of one', () => {
  const good = writeImage(imageParts(TINY, 2)).bytes;
  const d = readImage(good).sections.find((x) => x.kind === KIND.descriptor)!.offset;
  const edit = (words: Array<[number, number]>) => {
    const b = good.slice();
    const v = new DataView(b.buffer);
    for (const [i, x] of words) v.setInt32(d + 4 * i, x, true);
    return seal(b);
  };
  const none = readImage(edit([[D.D_TOK_OFFSET, 0], [D.D_TOK_BYTES, 0], [D.D_TEXT_BYTES, 0]]));
  assert.is(new DataView(none.descriptor.buffer, none.descriptor.byteOffset).getInt32(4 * D.D_TOK_BYTES, true), 0);
  const e = errorOf(() => readImage(edit([[D.D_TOK_OFFSET, 0], [D.D_TOK_BYTES, 0]])));
  assert.is(e.code, 'descriptor_tokenizer');
  assert.is(errorOf(() => readImage(edit([[D.D_TEXT_BYTES, 7]]))).code, 'descriptor_tokenizer');
});

bad('reading a file (a Node Buffer, whose slice() is a view) leaves it unchanged and reads it again the same', () => {
  const file = readFileSync(join(VECTOR_DIR, 'small.efimg'));
  const before = Buffer.from(file);
  const a = readImage(file);
  const b = readImage(file);
  assert.ok(before.equals(file));
  assert.is(a.digest, b.digest);
  const m = imageToModel(a);
  assert.equal([...m.rmsFinal], [...new Float32Array(Uint8Array.from(a.tensors.find((t) => t.name === 'output_norm')!.data).buffer)]);
});

bad('the committed vectors are exactly what the generator makes', () => {
  for (const [name, content] of vectorFiles()) {
    const file = readFileSync(join(VECTOR_DIR, name));
    const want = typeof content === 'string' ? Buffer.from(content) : Buffer.from(content);
    assert.ok(Buffer.compare(file, want) === 0, `test/vectors/image/${name} differs from the generator's: run npx tsx tools/gen-image-vectors.ts`);
  }
});

bad('every prefix of a valid image is refused as truncated (or as bad magic when empty)', () => {
  const good = writeImage(imageParts(TINY, 2)).bytes;
  for (let n = 0; n < good.byteLength; n += n < 200 ? 1 : 97) {
    const e = errorOf(() => readImage(good.subarray(0, n)));
    assert.is(e.code, 'truncated', `prefix ${n}: ${e.message}`);
  }
});

bad('a flash partition may extend past the image; a file may not', () => {
  const good = writeImage(imageParts(TINY, 2)).bytes;
  const padded = new Uint8Array(good.byteLength + 4096).fill(0xff);
  padded.set(good);
  assert.is(readImage(padded, { partition: true }).totalSize, good.byteLength);
  assert.is(errorOf(() => readImage(padded)).code, 'trailing');
});

bad('a PSRAM variant runs the plain board\'s images, not the other way round', () => {
  const parts = imageParts(TINY, 2, { boardId: boardByName('esp32s3').id });
  const bytes = writeImage(parts).bytes;
  readImage(bytes, { board: boardByName('esp32s3-psram8') });
  const e = errorOf(() => readImage(writeImage({ ...parts, boardId: boardByName('esp32s3-psram8').id }).bytes, { board: boardByName('esp32s3') }));
  assert.is(e.code, 'wrong_board');
  assert.match(e.message, /esp32s3-psram8 \(id 5\), this board is esp32s3 \(id 3\)/);
});

const keys = suite('signatures');

keys('keygen makes a key that signs; verify checks the key it is given', () => {
  const kp = generateKeyPair();
  const key = privateKeyFromPem(kp.privatePem);
  assert.equal(rawPublicKey(key), kp.publicRaw);
  const bytes = writeImage(imageParts(TINY, 4, { signingKey: key })).bytes;
  const img = readImage(bytes, { publicKey: kp.publicRaw });
  assert.ok(img.signature?.trusted);
  assert.is(readImage(bytes).signature?.trusted, false);
  const other = generateKeyPair();
  const e = errorOf(() => readImage(bytes, { publicKey: other.publicRaw }));
  assert.is(e.code, 'signature');
  assert.match(e.message, /signed by key [0-9a-f]{16}, expected key [0-9a-f]{16}/);
});

keys('a signature moved onto another image does not verify', () => {
  const a = writeImage(imageParts(TINY, 4, { signingKey: testKey() })).bytes;
  const b = writeImage(imageParts(TINY, 5, { signingKey: testKey() })).bytes;
  const forged = b.slice();
  forged.set(a.subarray(a.byteLength - 64), b.byteLength - 64);
  assert.is(errorOf(() => readImage(forged)).code, 'signature');
  assert.ok(readImage(a).sections.some((s) => s.kind === KIND.weights));
});

basics.run();
bad.run();
keys.run();
