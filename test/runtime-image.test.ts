// The C image reader (boards/runtime/core/image.c) against the image vectors and against the
// TypeScript reader: every vector's outcome (the error code, or for a good image its sections, config
// and every tensor), then thousands of seeded mutations on which both readers must give the same code.
// The checks are test/runtime-vectors.ts's, which the Raspberry Pi cross builds pass too.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { nativeBuild } from './runtime-helpers.ts';
import { imageVectors, mutationAgreement } from './runtime-vectors.ts';

const build = nativeBuild();

test('C reader: every image vector gives its expected outcome', () => imageVectors(build));

test('C reader and TypeScript reader agree on 2,000 mutated images (same code for each)', () => {
  const { codes, lenient } = mutationAgreement(build, 2000, Number(process.env.FUZZ_SEED ?? 1414));
  assert.ok(lenient <= 5, `${lenient} name divergences`);
  assert.ok(codes.size >= 8, JSON.stringify(Object.fromEntries(codes)));
  process.stderr.write(`runtime image: C and TS agree on 2000 mutations (${lenient} non-ASCII tensor names the TS reader takes): ${JSON.stringify(Object.fromEntries([...codes].sort((x, y) => y[1] - x[1])))}\n`);
});

test.run();
