// The CLI as a user meets it: help, results on stdout, one-line errors with exit code 2.
import { spawnSync } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fromRoot } from '../host/paths.ts';

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [fromRoot('bin', 'edge-flash.js'), ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('--help lists the commands', () => {
  const r = cli('--help');
  assert.is(r.code, 0);
  assert.match(r.out, /bench/);
});

test('--version prints the package version', () => {
  const r = cli('--version');
  assert.is(r.code, 0);
  assert.match(r.out, /^edge-flash \d+\.\d+\.\d+/);
});

test('bench --json prints real rows, each checked against the reference', () => {
  const r = cli('bench', '--engine', 'v8,native', '--formats', 'tq2,tb1', '--shapes', '64x128', '--repeat', '2', '--json');
  assert.is(r.code, 0, r.err);
  const rows = JSON.parse(r.out);
  const keys = ['kernel', 'format', 'engine', 'm', 'k', 'n', 'median_gws', 'min_gws', 'ratio_vs_native'];
  for (const row of rows) for (const key of keys) assert.ok(key in row, `row lacks ${key}`);
  assert.ok(rows.some((x: any) => x.engine === 'native' && x.kernel === 'c-O3' && x.ratio_vs_native === 1));
  assert.ok(rows.some((x: any) => x.engine === 'v8' && x.target === 'simd' && x.kernel === 'simd' && x.median_gws > 0));
  assert.ok(rows.some((x: any) => x.kernel === 'bitserial' && x.target === 'device'));
});

test('bad input: one line on stderr, exit code 2', () => {
  for (const args of [
    ['bench', '--engine', 'jvm'],
    ['bench', '--shapes', '64by64'],
    ['bench', '--shapes', '64x100', '--formats', 'tq2', '--engine', 'v8'],
    ['bench', '--formats', 'q17'],
    ['bench', '--repeat', '0'],
  ]) {
    const r = cli(...args);
    assert.is(r.code, 2, `${args.join(' ')}: exit ${r.code}, stderr ${r.err}`);
    const lines = r.err.trim().split('\n').filter((l) => !l.startsWith('bench:') && !l.startsWith('warning:'));
    assert.is(lines.length, 1, `${args.join(' ')}: ${r.err}`);
    assert.match(lines[0], /^edge-flash: error: /);
    assert.not.match(r.err, /\n\s+at /);
  }
});

test('an unknown command is an error, exit 2', () => {
  const r = cli('frobnicate');
  assert.is(r.code, 2);
});

test.run();
