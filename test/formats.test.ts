// The format table's own invariants: the single source that generates the rest must be consistent.
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fromRoot } from '../host/paths.ts';
import { EMBEDDING_FORMATS, FORMATS, bitsPerWeight, formatById, kernelExport, runsOn, ternaryFormat } from '../host/quant/formats.ts';

test('ids and names are unique, and ids are dense from 0 (append-only)', () => {
  const ids = FORMATS.map((f) => f.id);
  assert.equal(ids, ids.map((_, i) => i));
  assert.is(new Set(FORMATS.map((f) => f.name)).size, FORMATS.length);
});

test('every block holds a whole number of bytes and every format has a kernel', () => {
  for (const f of FORMATS) {
    assert.ok(Number.isInteger(f.blockBytes) && f.blockBytes > 0, f.name);
    assert.ok(bitsPerWeight(f) > 0 && bitsPerWeight(f) <= 32, f.name);
    if (!f.retired) assert.ok(f.kernels.length > 0, `${f.name} has no kernel`);
    assert.is(formatById(f.id), f);
  }
});

test("each row's preferred kernel exists on its target, and `ternary` means one format a target", () => {
  for (const f of FORMATS.filter((x) => !x.retired)) {
    for (const target of ['device', 'simd'] as const) {
      // a target without a kernel of the row has no preference (BitMoD groups of 32/64 on the device)
      assert.is(f.prefer[target] === undefined, !runsOn(f, target), `${f.name}: a ${target} preference iff a ${target} kernel`);
      if (!runsOn(f, target)) continue;
      const kv = f.kernels.find((x) => x.name === f.prefer[target]);
      assert.ok(kv && kv.targets.includes(target), `${f.name}: preferred ${target} kernel ${f.prefer[target]}`);
    }
  }
  for (const target of ['device', 'simd'] as const) {
    const t = FORMATS.filter((f) => f.ternaryFor?.includes(target));
    assert.is(t.length, 1, target);
    assert.is(ternaryFormat(target).family, 'ternary');
  }
  assert.equal(EMBEDDING_FORMATS.map((f) => f.name), ['f32', 'q8_0']); // what assembly/model/llama.ts reads a row of
});

test('every kernel the table lists is exported by the builds that carry it', () => {
  for (const target of ['device', 'simd'] as const) {
    const wat = readFileSync(fromRoot('build', `${target}.wat`), 'utf8');
    for (const f of FORMATS.filter((x) => !x.retired)) {
      for (const kv of f.kernels.filter((x) => x.targets.includes(target))) {
        for (const act of kv.acts) assert.ok(wat.includes(`(export "${kernelExport(f, act, kv.name)}"`), `${target} lacks ${kernelExport(f, act, kv.name)}`);
      }
    }
  }
});

test('the generated AssemblyScript constants and docs are up to date with the table', () => {
  const as = readFileSync(fromRoot('assembly', 'kernels', 'formats.gen.ts'), 'utf8');
  const md = readFileSync(fromRoot('docs', 'formats.md'), 'utf8');
  for (const f of FORMATS.filter((x) => !x.retired)) {
    assert.ok(as.includes(`FMT_${f.name.toUpperCase()}: i32 = ${f.id};`), f.name);
    assert.ok(md.includes(`| ${f.id} | ${f.name}`), f.name);
  }
});

test.run();
