// The cross-language tables: generated files agree with them (compared, never regenerated here), the
// C headers compile and their asserts bite, kernel ids never change meaning, the app carries the hash.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { baseImports } from '../host/engine/imports.ts';
import { v8Engine } from '../host/engine/v8.ts';
import { UserError } from '../host/errors.ts';
import { readImage } from '../host/image/read.ts';
import { writeImage } from '../host/image/write.ts';
import { KERNELS } from '../host/model/dispatch.ts';
import { KV_FORMATS } from '../host/model/kv.ts';
import { computeTablesHash, hashHex } from '../host/model/tables-hash.ts';
import { TABLES_HASH } from '../host/model/tables.gen.ts';
import { fromRoot } from '../host/paths.ts';
import { ACT_FORMATS, KERNEL_IDS } from '../host/quant/formats.ts';
import { imageParts, TINY } from './fixtures/image.ts';

const tsx = fromRoot('node_modules', '.bin', 'tsx');
for (const gen of ['gen-formats', 'gen-desc', 'gen-dispatch']) {
  test(`tools/${gen}.ts --check: the committed files are what the tables generate`, () => {
    const r = spawnSync(tsx, [`tools/${gen}.ts`, '--check'], { cwd: fromRoot(), encoding: 'utf8' });
    assert.is(r.status, 0, r.stderr);
  });
}

test('kernel ids are append-only: the frozen list is a prefix of KERNEL_IDS, id for id', () => {
  const frozen = readFileSync(fromRoot('test', 'fixtures', 'kernel-ids.txt'), 'utf8').split('\n').filter((l) => l && !l.startsWith('#'));
  assert.ok(frozen.length >= 90);
  for (const line of frozen) {
    const [id, name] = line.split(' ');
    assert.is(KERNEL_IDS[Number(id)], name, `kernel id ${id} was ${name}`);
  }
  assert.is(new Set(KERNEL_IDS).size, KERNEL_IDS.length, 'a kernel has two ids');
  assert.is(new Set(KERNELS.map((e) => e.id)).size, KERNELS.length);
});

test('KV-cache and activation format ids are dense from 0 (their codes in an image config)', () => {
  assert.equal(KV_FORMATS.map((f) => f.id).sort((a, b) => a - b), KV_FORMATS.map((_, i) => i));
  assert.equal(ACT_FORMATS.map((f) => f.id).sort((a, b) => a - b), ACT_FORMATS.map((_, i) => i));
});

test('the generated hash is the tables\' hash, and both builds of the app export it', () => {
  assert.is(TABLES_HASH, computeTablesHash());
  for (const target of ['device', 'simd']) {
    const inst = v8Engine.instantiate(new Uint8Array(readFileSync(fromRoot('build', `${target}.wasm`))), baseImports());
    assert.is(Number(inst.call('tables_hash')) >>> 0, TABLES_HASH, target);
    inst.close();
  }
});

// The C headers, compiled as a board's runtime would include them.
const dir = mkdtempSync(join(tmpdir(), 'ef-tables-'));
const cc = (header: string, flags: string[]) => {
  const src = join(dir, 'use.c');
  writeFileSync(src, `#include "${header}"\nint main(void) { return (int)sizeof(ef_desc_header) + EF_BITMOD4_GRIDS[0][1] + EF_BITMOD3_GRIDS[0][1] - 130; }\n`);
  return spawnSync('cc', ['-std=c99', '-Wall', '-Wextra', '-Werror', ...flags, `-I${fromRoot('boards', 'runtime', 'core')}`, '-o', join(dir, 'use'), src], { encoding: 'utf8' });
};
const both = (dir: string) => `${dir}/both.h`;
writeFileSync(both(dir), '#include "formats.gen.h"\n#include "desc.gen.h"\n');
const m32 = spawnSync('cc', ['-m32', '-x', 'c', '-', '-o', join(dir, 'probe32')], { input: 'int main(void) { return 0; }\n' }).status === 0;

test('the C headers compile with -std=c99 -Wall -Wextra -Werror (and -m32 where gcc-multilib is installed)', () => {
  for (const flags of [[], ...(m32 || process.env.CI === 'true' ? [['-m32']] : [])]) {
    const r = cc(both(dir), flags);
    assert.is(r.status, 0, `${flags.join(' ')}: ${r.stderr}`);
  }
  if (!m32) process.stderr.write('warning: no -m32 C library (gcc-multilib): the headers were compiled for this machine only\n');
});

test('the C asserts check real layouts: a block size or a descriptor word off by one does not compile', () => {
  const formats = readFileSync(fromRoot('boards', 'runtime', 'core', 'formats.gen.h'), 'utf8');
  const desc = readFileSync(fromRoot('boards', 'runtime', 'core', 'desc.gen.h'), 'utf8');
  const broken: [string, string, string][] = [
    ['formats.gen.h', formats.replace('#define EF_FMT_I4G64_BLOCK_BYTES 40', '#define EF_FMT_I4G64_BLOCK_BYTES 41'), 'block bytes'],
    ['formats.gen.h', formats.replace('uint8_t selector; uint8_t zero[3];', 'uint8_t selector;'), 'codes at byte 8'],
    ['desc.gen.h', desc.replace('  float rope_theta;\n', '  float rope_theta;\n  int32_t extra;\n'), 'word'],
  ];
  for (const [name, text, why] of broken) {
    const d = mkdtempSync(join(tmpdir(), 'ef-tables-bad-'));
    writeFileSync(join(d, 'formats.gen.h'), name === 'formats.gen.h' ? text : formats);
    writeFileSync(join(d, 'desc.gen.h'), name === 'desc.gen.h' ? text : desc);
    writeFileSync(both(d), '#include "formats.gen.h"\n#include "desc.gen.h"\n');
    assert.is.not(text, name === 'desc.gen.h' ? desc : formats, 'the edit applied');
    const src = join(d, 'use.c');
    writeFileSync(src, '#include "both.h"\nint main(void) { return 0; }\n');
    const r = spawnSync('cc', ['-std=c99', '-fsyntax-only', `-I${d}`, src], { encoding: 'utf8' });
    assert.is.not(r.status, 0, `${name} edited still compiles`);
    assert.match(r.stderr, why);
  }
});

test('an image that records other tables is refused in one line; one that records these is read', () => {
  const ok = writeImage(imageParts(TINY, 5, { metadata: { tables: hashHex(TABLES_HASH) } })).bytes;
  assert.is(readImage(ok).metadata?.tables, hashHex(TABLES_HASH));
  const other = writeImage(imageParts(TINY, 5, { metadata: { tables: '0x00000000' } })).bytes;
  try {
    readImage(other);
    assert.unreachable('read an image of other tables');
  } catch (e) {
    assert.instance(e, UserError);
    assert.match((e as Error).message, /built from tables 0x00000000, this edge-flash has 0x[0-9a-f]{8}/);
    assert.not.match((e as Error).message, /\n/);
  }
});

test.run();
