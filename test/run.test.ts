// `edge-flash run` as a user meets it: run.c's flags, text on stdout, `achieved tok/s` on stderr,
// --json, --verbose (plan and memory), chat mode from stdin, one-line errors with exit code 2.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeLlama2c } from '../host/formats/llama2c.ts';
import { writeTokenizerBin } from '../host/formats/tokenizer-bin.ts';
import { randomWeights, trainTokenizer } from '../host/model/synthetic.ts';
import { fromRoot } from '../host/paths.ts';
import { testEngines } from './helpers.ts';

const engines = (await testEngines()).map((e) => e.name);
const dir = mkdtempSync(join(tmpdir(), 'ef-run-'));
const r1 = { dim: 64, hiddenDim: 172, nLayers: 5, nHeads: 8, nKvHeads: 4, vocabSize: 512, seqLen: 512, sharedClassifier: true };
writeFileSync(join(dir, 'model.bin'), writeLlama2c(randomWeights(r1, 1), 0));
writeFileSync(join(dir, 'tokenizer.bin'), writeTokenizerBin(trainTokenizer(512)));
const model = join(dir, 'model.bin');

function cli(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [fromRoot('bin', 'edge-flash.js'), 'run', ...args], { encoding: 'latin1', input });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('greedy text on stdout equals run.c\'s, on every engine; achieved tok/s on stderr', () => {
  const want = readFileSync(fromRoot('test', 'vectors', 'runc-random-260k-greedy.txt'), 'latin1');
  for (const engine of engines) {
    const r = cli([model, '-t', '0', '-n', '200', '-i', 'In the beginning God', '--engine', engine]);
    assert.is(r.code, 0, r.err);
    assert.is(r.out, want, engine);
    assert.match(r.err, /^achieved tok\/s: \d+\.\d{6}$/m);
  }
});

test('--json: one object with the text, tokens, timings and memory', () => {
  const r = cli([model, '-t', '1', '-p', '0.9', '-s', '42', '-n', '40', '-i', 'And', '--json']);
  assert.is(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  for (const k of ['text', 'tokens', 'positions', 'achieved_tok_s', 'decode_tok_s', 'memory_bytes', 'engine']) assert.ok(k in j, k);
  assert.is(j.positions, 40);
  assert.is(j.seed, '42');
});

test('the ESP32 shape within 160 KiB: ternary, int4 KV, weights streamed, --verbose reports the plan', () => {
  for (const engine of engines) {
    const r = cli([model, '-t', '0', '-n', '64', '--quant', 'ternary', '--kv', 'int4', '--memory', '160K', '--engine', engine, '--verbose']);
    assert.is(r.code, 0, r.err);
    assert.match(r.err, /plan: (device|simd) build, kv int4/);
    assert.match(r.err, /streamed/);
    const m = /memory: linear memory high-water mark (\d+) bytes/.exec(r.err);
    assert.ok(m && Number(m[1]) <= 160 * 1024, r.err);
    assert.match(r.err, /decode: \d+ tokens/);
  }
});

test('chat mode reads turns from stdin (run.c template), stops at end of input', () => {
  const r = cli([model, '-m', 'chat', '-t', '0', '-n', '120', '-y', 'You are kind.', '--reply-tokens', '10'], 'Hello there\nAnd then\n');
  assert.is(r.code, 0, r.err);
  // no "User: " guide on a pipe (test/chat.test.ts has the turn rules)
  assert.match(r.out, /^Assistant: /);
  assert.is((r.out.match(/Assistant: /g) ?? []).length, 2);
});

test('bench --model: decode tok/s rows for a shape on every engine (run.c only with --runc)', () => {
  const r = spawnSync(process.execPath, [fromRoot('bin', 'edge-flash.js'), 'bench', '--model', '260k', '--steps', '8', '--repeat', '1', '--engine', engines.join(','), '--json'], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  const rows = JSON.parse(r.stdout);
  for (const e of engines) assert.ok(rows.some((x: any) => x.engine === e && x.tok_s > 0 && x.memory_bytes > 0), e);
  assert.ok(rows.every((x: any) => x.ratio_vs_runc === null));
  if (engines.includes('wasm3')) assert.ok(rows.some((x: any) => x.memory_limit === 160 * 1024 && x.memory_bytes <= 160 * 1024));
});

test('bench --model --act: a row per mode, KV format and top-K, each repeat\'s tok/s; a4.8 rows name their top-K', () => {
  const r = spawnSync(process.execPath, [fromRoot('bin', 'edge-flash.js'), 'bench', '--model', '260k', '--steps', '8', '--repeat', '2', '--engine', engines.join(','),
    '--act', 'i8,a4.8', '--kv', 'int4', '--topk', '0.5,1', '--json'], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  const rows = JSON.parse(r.stdout);
  for (const e of engines) {
    const mine = rows.filter((x: any) => x.engine === e);
    assert.equal(mine.map((x: any) => x.act), ['i8', 'a4.8 top-K 32/86', 'a4.8'], e);
    assert.ok(mine.every((x: any) => x.kv === 'int4' && x.weights === 'ternary' && x.runs.length === 2 && x.runs.every((t: number) => t > 0)), e);
  }
  for (const [args, re] of [[['--kv', 'int4'], /--kv and --topk go with --model --act LIST/], [['--act', 'a4.8', '--topk', '0'], /--topk must be a fraction in \(0, 1\]/], [['--act', 'a5'], /unknown --act 'a5'/]] as Array<[string[], RegExp]>) {
    const b = spawnSync(process.execPath, [fromRoot('bin', 'edge-flash.js'), 'bench', '--model', '260k', '--steps', '8', '--repeat', '1', ...args], { encoding: 'utf8' });
    assert.is(b.status, 2, `${args.join(' ')}: ${b.stderr}`);
    assert.match(b.stderr, re);
  }
});

test('bad input: one line on stderr, exit code 2', () => {
  const short = join(dir, 'short.bin');
  writeFileSync(short, readFileSync(model).subarray(0, 1000));
  const other = join(dir, 'tok300.bin');
  writeFileSync(other, writeTokenizerBin(trainTokenizer(300)));
  for (const [args, re] of [
    [[join(dir, 'missing.bin')], /cannot read model .*missing\.bin: no such file/],
    [[short], /short\.bin: file size: expected \d+ bytes/],
    [[model, '-z', other], /tok300\.bin: token 300 score: expected 4 bytes/],
    [[model, '--kv', 'int5'], /unknown --kv 'int5'/],
    [[model, '--act', 'a4'], /unknown --act 'a4': expected i8, i4 or a4.8/],
    [[model, '--act', 'a4.8', '--topk', '1.5'], /--topk must be a number in 0\.\.1, got '1\.5'/],
    [[model, '--act', 'a4.8', '--topk', '0'], /--topk must be a fraction in \(0, 1\] \(1: no sparsification\), got '0'/],
    [[model, '--quant', 'q17'], /unknown --quant format 'q17'/],
    [[model, '-m', 'talk'], /unknown mode 'talk'/],
    [[model, '--memory', '20K', '--kv', 'int4'], /does not fit 20480 bytes of linear memory/],
  ] as Array<[string[], RegExp]>) {
    const r = cli(args);
    assert.is(r.code, 2, `${args.join(' ')}: exit ${r.code}: ${r.err}`);
    const lines = r.err.trim().split('\n').filter((l) => !l.startsWith('warning:'));
    assert.is(lines.length, 1, r.err);
    assert.match(lines[0], /^edge-flash: error: /);
    assert.match(lines[0], re);
  }
});

test('without a loadable wasm3 addon, run --engine wasm3 is an error saying why in one line; the default engine (V8) runs', () => {
  const bad = join(dir, 'not-an-addon.node');
  writeFileSync(bad, 'not a shared object');
  for (const [addon, why] of [[join(dir, 'missing.node'), /was not built \(.*missing.node is missing/], [bad, /cannot be loaded \(/]] as const) {
    const env = { ...process.env, EDGE_FLASH_WASM3_ADDON: addon };
    const args = [fromRoot('bin', 'edge-flash.js'), 'run', model, '-t', '0', '-n', '24', '-i', 'In the beginning God'];
    const r = spawnSync(process.execPath, [...args, '--engine', 'wasm3'], { encoding: 'latin1', env });
    assert.is(r.status, 2, r.stderr);
    const lines = r.stderr.trim().split('\n');
    assert.is(lines.length, 1, r.stderr);
    assert.match(lines[0], /^edge-flash: error: engine 'wasm3' is not available: /);
    assert.match(lines[0], why);
    assert.is(r.stdout, '');
    const v8 = spawnSync(process.execPath, args, { encoding: 'latin1', env });
    assert.is(v8.status, 0, v8.stderr);
    assert.not.match(v8.stderr, /wasm3/);
    assert.ok(readFileSync(fromRoot('test', 'vectors', 'runc-random-260k-greedy.txt'), 'latin1').startsWith(v8.stdout.slice(0, 40)), v8.stdout);
  }
});

test.run();
