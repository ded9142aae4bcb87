// Fuzzing the image reader: thousands of seeded mutations of valid images (bit flips, byte writes,
// field edits, truncations, splices), half of them resealed so the reader gets past the CRCs to the
// section table and contents. Every outcome must be a parsed image (and Model) or an ImageError (or
// the tokenizer reader's UserError); never another
// exception, never a hang. Bounded in time; a failure prints the seed and the mutation.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { boardByName } from '../host/board/boards.ts';
import { ImageError, H, HEADER_BYTES, SECTION_ENTRY_BYTES } from '../host/image/format.ts';
import { imageToModel } from '../host/image/model.ts';
import { readImage } from '../host/image/read.ts';
import { UserError } from '../host/errors.ts';
import { seal, writeImage } from '../host/image/write.ts';
import { rng } from './helpers.ts';
import { TINY, imageParts, testKey } from './fixtures/image.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 20260101);
const BUDGET_MS = Number(process.env.FUZZ_MS ?? 4000);
const MIN_CASES = 3000;

const bases = [
  writeImage(imageParts(TINY, 1)).bytes,
  writeImage(imageParts({ ...TINY, nLayers: 2, sharedClassifier: false }, 2, { signingKey: testKey() })).bytes,
  writeImage(imageParts(TINY, 3, { metadata: null })).bytes,
];
const boards = [undefined, boardByName('esp32'), undefined, boardByName('host')];

function mutate(r: () => number, src: Uint8Array): { bytes: Uint8Array; what: string } {
  const pick = (n: number) => Math.floor(r() * n);
  let b = src.slice();
  const v = () => new DataView(b.buffer, b.byteOffset, b.byteLength);
  const steps: string[] = [];
  const n = 1 + pick(3);
  for (let s = 0; s < n; s++) {
    const op = pick(8);
    // Aim half the edits at the header, section table and first bytes of each section, where the structure is.
    const at = () => (r() < 0.5 ? pick(Math.min(b.byteLength, 160 + 64 * 11)) : pick(b.byteLength));
    if (b.byteLength === 0) break;
    if (op === 0) { const i = at(); b[i] ^= 1 << pick(8); steps.push(`flip@${i}`); }
    else if (op === 1) { const i = at(); b[i] = pick(256); steps.push(`byte@${i}`); }
    else if (op === 2) { const i = at() & ~3; if (i + 4 <= b.byteLength) { const x = [0, 1, 0xffffffff, 0x7fffffff, 0x80000000, pick(1 << 16), b.byteLength, b.byteLength + 1][pick(8)]; v().setUint32(i, x >>> 0, true); steps.push(`u32@${i}=${x}`); } }
    else if (op === 3) { const cut = pick(b.byteLength); b = b.slice(0, cut); steps.push(`cut@${cut}`); }
    else if (op === 4) { const extra = pick(200); b = new Uint8Array([...b, ...new Uint8Array(extra).map(() => pick(256))]); steps.push(`append ${extra}`); }
    else if (op === 5) { const i = pick(b.byteLength), j = pick(b.byteLength), len = pick(64); b.copyWithin(i, j, j + len); steps.push(`copy ${j}->${i} x${len}`); }
    else if (op === 6) { const count = b.byteLength >= 18 ? v().getUint16(H.sectionCount, true) : 0; if (count > 0) { const e = HEADER_BYTES + pick(count) * SECTION_ENTRY_BYTES + 4 * pick(5); if (e + 4 <= b.byteLength) { const x = pick(2) ? v().getUint32(e, true) + (pick(2) ? 16 : -16) : pick(1 << 20); v().setUint32(e, x >>> 0, true); steps.push(`entry@${e}=${x}`); } } }
    else { const i = at(); const len = 1 + pick(16); b.fill(pick(2) ? 0 : 0xff, i, i + len); steps.push(`fill@${i} x${len}`); }
  }
  if (r() < 0.5 && b.byteLength >= HEADER_BYTES) {
    try {
      const total = new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(H.totalSize, true);
      const hs = new DataView(b.buffer, b.byteOffset, b.byteLength).getUint16(H.headerSize, true);
      if (total <= b.byteLength && total >= 160 && hs <= b.byteLength) {
        seal(b);
        steps.push('resealed');
      }
    } catch {
      // seal() is a test helper on well-formed tables; a table it cannot follow stays unsealed
    }
  }
  return { bytes: b, what: steps.join(', ') };
}

test(`reader: ${MIN_CASES}+ mutated images give only ImageErrors (seed ${SEED})`, () => {
  const r = rng(SEED);
  const t0 = Date.now();
  const codes = new Map<string, number>();
  let cases = 0, parsed = 0;
  // every one of MIN_CASES cases runs, however loaded the machine; spare time runs more
  while (cases < MIN_CASES || Date.now() - t0 < BUDGET_MS / 2) {
    const base = bases[cases % bases.length];
    const { bytes, what } = mutate(r, base);
    const board = boards[cases % boards.length];
    const t1 = Date.now();
    try {
      imageToModel(readImage(bytes, { board })); // the Model too: its tokenizer reader runs on fuzzed bytes
      parsed++;
    } catch (e) {
      // an ImageError from the reader, or a UserError from the runtime's tokenizer reader
      if (!(e instanceof UserError)) throw new Error(`case ${cases} (seed ${SEED}; ${what}): not a UserError: ${(e as Error).stack}`);
      const code = e instanceof ImageError ? e.code : 'model';
      codes.set(code, (codes.get(code) ?? 0) + 1);
    }
    assert.ok(Date.now() - t1 < 500, `case ${cases} took ${Date.now() - t1} ms (${what})`);
    cases++;
  }
  // The resealed half must reach past the checksums into the structure and contents checks.
  for (const code of ['header_crc', 'section_crc', 'truncated', 'section_bounds', 'overlap', 'tensor']) {
    assert.ok((codes.get(code) ?? 0) > 0, `no mutation reached '${code}': ${JSON.stringify(Object.fromEntries(codes))}`);
  }
  process.stderr.write(`image fuzz: ${cases} cases in ${Date.now() - t0} ms, ${parsed} still valid, errors ${JSON.stringify(Object.fromEntries([...codes].sort((a, b) => b[1] - a[1])))}\n`);
});

test.run();
