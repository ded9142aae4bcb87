// The app tokenizes from the image's tokenizer section as it is (EFTK, docs/image-format.md): the
// tokens and the printed text of `run <image>` come from those bytes, not from a host tokenizer.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { boardByName } from '../host/board/boards.ts';
import { loadModel } from '../host/formats/index.ts';
import { KIND } from '../host/image/format.ts';
import { deviceApp, packModel } from '../host/image/pack.ts';
import { readImage } from '../host/image/read.ts';
import { imageRun } from '../host/image/run.ts';
import { seal } from '../host/image/write.ts';
import { kvFormat } from '../host/model/kv.ts';
import { ModelRuntime } from '../host/model/runtime.ts';
import { TokenizerRef, tokenizerFromImage } from '../host/model/tokenizer.ts';
import { fromRoot } from '../host/paths.ts';
import { formatByName } from '../host/quant/formats.ts';
import { testEngines } from './helpers.ts';

const engines = await testEngines();
const src = loadModel(fromRoot('models', 'kjv-esp32-260k', 'model.bin'));
const packed = packModel(src, { board: boardByName('esp32s3'), quant: formatByName('tb1')!, kv: kvFormat('int4')!, app: deviceApp(), tool: 'test', source: 'kjv-esp32-260k', ctx: 64 });
const PROMPT = 'In the beginning God created the heaven';

function encodeWith(bytes: Uint8Array, engine: (typeof engines)[number]): number[] {
  const img = readImage(bytes);
  const run = imageRun('<image>', img, { engine: engine.name });
  const rt = ModelRuntime.fromImage(img, engine, run.options);
  try {
    assert.is(rt.memoryBytes(), img.config.plannedLinear, 'the app\'s tokenizer copy is inside the image\'s plan');
    return rt.codec().encode(PROMPT, true, false);
  } finally {
    rt.close();
  }
}

for (const engine of engines) {
  test(`${engine.name}: the app's tokens are the image section's, byte for byte`, () => {
    const ref = new TokenizerRef(src.tokenizer!);
    assert.equal(encodeWith(packed.bytes, engine), ref.encode(PROMPT, true, false));
    // every merge score zeroed in the section (resealed): the app's tokens follow the section
    const b = packed.bytes.slice();
    const s = packed.image.sections.find((x) => x.kind === KIND.tokenizer)!;
    const vocab = packed.image.config.vocabSize;
    new Float32Array(b.buffer, b.byteOffset + s.offset + 32, vocab).fill(0);
    seal(b);
    const changed = new TokenizerRef(tokenizerFromImage(readImage(b).tokenizer));
    const got = encodeWith(b, engine);
    assert.equal(got, changed.encode(PROMPT, true, false));
    assert.not.equal(got, ref.encode(PROMPT, true, false));
  });
}

test.run();
