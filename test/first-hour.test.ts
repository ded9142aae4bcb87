// What a new user meets in the first hour (issue 17): a closed stdout, numbers that are not numbers,
// usage errors, errno codes, the context's end, --key in hex, verify/run --board against the
// planner, re-packing an image, pack choosing formats, plan --check, an explicit --engine wasm3.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { fromRoot } from '../host/paths.ts';
import { cli } from './helpers.ts';

const MODEL = fromRoot('models', 'kjv-esp32-260k', 'model.bin');
const BIN = fromRoot('bin', 'edge-flash.js');
const dir = mkdtempSync(join(tmpdir(), 'edge-flash-first-hour-'));
const at = (f: string) => join(dir, f);

function oneLineError(r: ReturnType<typeof cli>, what: string, re?: RegExp): string {
  assert.is(r.code, 2, `${what}: exit ${r.code}\n${r.err}`);
  const lines = r.err.trim().split('\n').filter((l) => !/^(warning|plan|pack|bench): /.test(l));
  assert.is(lines.length, 1, `${what}: ${r.err}`);
  assert.match(lines[0], /^edge-flash: error: /);
  assert.not.match(r.err, /\n\s+at /);
  if (re) assert.match(lines[0], re, what);
  return lines[0];
}

// `edge-flash ARGS | head ...` in bash: the CLI's exit status and stderr.
function piped(args: string, head: string) {
  const r = spawnSync('bash', ['-c', `"${process.execPath}" "${BIN}" ${args} 2>"${at('pipe.err')}" | ${head} >/dev/null; echo "\${PIPESTATUS[0]}"; cat "${at('pipe.err')}"`], { encoding: 'utf8' });
  const [code, ...err] = r.stdout.split('\n');
  return { code: Number(code), err: err.join('\n') };
}

const s = suite('first hour');

s('a closed stdout ends quietly with exit 0 (help, streamed text, JSON)', () => {
  for (const [args, head] of [
    ['run --help', 'head -1'],
    [`run "${MODEL}" -n 400 -s 7 -i "In the beginning"`, 'head -c 20'],
    [`run "${MODEL}" --help`, 'head -c 1'],
    [`inspect --help`, 'true'],
    [`boards --json`, 'head -c 1'],
  ]) {
    const r = piped(args, head);
    assert.is(r.code, 0, `${args} | ${head}: exit ${r.code}\n${r.err}`);
    assert.not.match(r.err, /EPIPE|\n\s+at /, `${args} | ${head}: ${r.err}`);
  }
});

// The CLI with its stdout's read end closed before it writes anything: exit status and stderr.
function closedStdout(args: string[]): Promise<{ code: number | null; err: string }> {
  return new Promise((res) => {
    const p = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    p.stdout.destroy();
    let err = '';
    p.stderr.on('data', (d: Buffer) => { err += d; });
    p.on('close', (code) => res({ code, err }));
  });
}

s('a closed stdout stops the generation at its next write, not at -n (generate and chat, both engines)', async () => {
  for (const engine of ['v8', 'wasm3']) {
    for (const mode of [[], ['-m', 'chat']]) {
      const what = `${engine} ${mode.join(' ') || '-m generate'}`;
      // closed before the first token: the first write stops it (chat's is the 'Assistant: ' label), of
      // the context's 512 positions
      const r = await closedStdout(['run', MODEL, '-n', '100000', '-s', '7', '-i', 'In the beginning', '--engine', engine, ...mode, '--verbose']);
      assert.is(r.code, 0, `${what}: ${r.err}`);
      assert.match(r.err, new RegExp(`stdout closed by its reader after ${mode.length ? 0 : 1} tokens of at most 512 positions: generation stopped\\n$`), what);
      assert.not.match(r.err, /achieved tok\/s|EPIPE/, what);
      // and quietly without --verbose
      const q = await closedStdout(['run', MODEL, '-n', '100000', '-s', '7', '-i', 'In the beginning', '--engine', engine, ...mode]);
      assert.equal([q.code, q.err], [0, ''], what);
    }
  }
  // closed by head in the middle: stopped within a few tokens of the 20th byte (generous: a loaded machine)
  const r = spawnSync('bash', ['-c', `"${process.execPath}" "${BIN}" run "${MODEL}" -n 100000 -s 7 -i "In the beginning" --verbose 2>"${at('mid.err')}" | head -c 20 >/dev/null; echo "\${PIPESTATUS[0]}"`], { encoding: 'utf8' });
  const err = readFileSync(at('mid.err'), 'utf8');
  assert.is(r.stdout.trim(), '0', err);
  const m = /stdout closed by its reader after (\d+) tokens of at most 512 positions/.exec(err);
  assert.ok(m && Number(m[1]) < 256, err);
});

s('every numeric flag is checked: one line, exit 2', () => {
  for (const [args, re] of [
    [['run', MODEL, '-n', 'abc'], /-n must be an integer in 0\.\.\d+, got 'abc'/],
    [['run', MODEL, '-n', '-5'], /-n must be an integer/],
    [['run', MODEL, '-n', '1e9'], /-n must be an integer/],
    [['run', MODEL, '-t', '-1'], /-t must be a number of at least 0, got '-1'/],
    [['run', MODEL, '-t', 'hot'], /-t must be a number/],
    [['run', MODEL, '-p', '2'], /-p must be a number in 0\.\.1, got '2'/],
    [['run', MODEL, '-s', 'abc'], /-s must be an integer/],
    [['run', MODEL, '-s', '1.5'], /-s must be an integer/],
    [['run', MODEL, '--batch', '0'], /--batch must be an integer in 1\.\./],
    [['run', MODEL, '--memory', '-3K'], /--memory: bad byte count/],
    [['run', MODEL, '--memory', '0'], /--memory: byte count '0' is out of range/],
    [['bench', '--repeat', 'x'], /--repeat must be an integer/],
    [['bench', '--tokens', '2.5'], /--tokens must be an integer/],
    [['bench', '--model', '260k', '--steps', '1'], /--steps must be an integer in 2\.\./],
    [['plan', MODEL, '--board', 'esp32', '--ctx', '0', '--no-speed'], /--ctx must be an integer in 1\.\./],
    [['pack', MODEL, '--board', 'esp32', '--ctx', '12x', '-o', at('never.efimg')], /--ctx must be an integer/],
    // the verbs that came later use the same parser (host/cli/flags.ts)
    [['chat', '--port', at('no-port'), '-i', 'x', '-n', 'abc'], /-n must be an integer in 0\.\.65535, got 'abc'/],
    [['chat', '--port', at('no-port'), '-i', 'x', '-t', 'hot'], /-t must be a number in 0\.\.1000000, got 'hot'/],
    [['chat', '--port', at('no-port'), '--baud', '12', '-i', 'x'], /--baud must be an integer in 300\.\.12000000, got '12'/],
    [['flash', at('none.efimg'), '--port', at('no-port'), '--baud', 'fast'], /--baud must be an integer/],
    [['quantize', MODEL, '-o', at('q.gguf'), '--method', 'rtn', '--bits', 'x'], /--bits must be an integer of at least 1, got 'x'/],
    [['eval', MODEL, '--text', MODEL, '--ctx', '1.5'], /--ctx must be an integer of at least 0, got '1\.5'/],
  ] as [string[], RegExp][]) oneLineError(cli(...args), args.join(' '), re);
  // in range: run.c's meaning (the help says so)
  const r = cli('run', MODEL, '-n', '8', '-t', '0', '-p', '1', '-s', '-3', '-i', 'In');
  assert.is(r.code, 0, r.err);
  assert.match(cli('run', '--help').out, /run\.c would\s+read 'abc' as 0/);
});

s('usage errors are one edge-flash: line; errno codes are words', () => {
  oneLineError(cli('pack', MODEL), 'pack without --board', /^edge-flash: error: required option '--board <name>' not specified/);
  oneLineError(cli('run'), 'run without a model', /missing required argument/);
  oneLineError(cli('run', MODEL, '--frobnicate'), 'unknown option', /unknown option '--frobnicate'/);
  oneLineError(cli('inspect', dir), 'inspect a directory', /cannot read .*: is a directory$/);
  oneLineError(cli('run', MODEL, '-z', dir), 'a directory as the tokenizer', /cannot read tokenizer .*: is a directory/);
  oneLineError(cli('verify', at('nope.efimg')), 'verify a missing file', /: no such file$/);
  for (const args of [['inspect', dir], ['run', MODEL, '-z', dir], ['verify', at('nope.efimg')]]) assert.not.match(cli(...args).err, /E[A-Z]{3,}/);
});

s('a run that reaches the context before -n says so on stderr', () => {
  const p = cli('pack', MODEL, '--board', 'rpi5', '--ctx', '12', '-o', at('ctx12.efimg'));
  assert.is(p.code, 0, p.err);
  const r = cli('run', at('ctx12.efimg'), '-n', '100', '-s', '3', '-i', 'In the');
  assert.is(r.code, 0, r.err);
  assert.match(r.err, /stopped at the end of the context: 12 positions \(the image's context\), fewer than -n 100/);
  // -n 0 means the context: nothing to say
  assert.not.match(cli('run', at('ctx12.efimg'), '-n', '0', '-s', '3', '-i', 'In the').err, /stopped at the end/);
});

s('--key takes 64 hex digits as well as a file', () => {
  const k = cli('keygen', '-o', at('k.pem'), '--json');
  assert.is(k.code, 0, k.err);
  const { public_key_hex: hex, public_key: pubFile } = JSON.parse(k.out);
  assert.is(cli('pack', MODEL, '--board', 'rpi5', '--sign', at('k.pem'), '-o', at('signed.efimg')).code, 0);
  for (const key of [hex, pubFile]) {
    const v = cli('verify', at('signed.efimg'), '--key', key);
    assert.is(v.code, 0, v.err);
    assert.match(v.out, /\(the key given\)/);
    const r = cli('run', at('signed.efimg'), '--key', key, '-n', '4', '-i', 'In');
    assert.is(r.code, 0, r.err);
  }
  oneLineError(cli('verify', at('signed.efimg'), '--key', '00'.repeat(32)), 'another key');
});

s('--engine wasm3 without the addon is an error; the default engine runs on', () => {
  const env = { ...process.env, EDGE_FLASH_WASM3_ADDON: at('no-such-addon.node') };
  const run = (...args: string[]) => {
    const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };
  oneLineError(run('run', MODEL, '--engine', 'wasm3', '-n', '4'), 'explicit wasm3', /engine 'wasm3' is not available: the wasm3-node addon was not built/);
  const r = run('run', MODEL, '-n', '4', '-i', 'In');
  assert.is(r.code, 0, r.err);
});

s('verify --board and run --board apply the planner\'s fit check; run caps memory at the board\'s figure', () => {
  // f32 weights and KV at context 512 need 672 KiB of linear memory: too much for an esp32s3 without PSRAM
  const p = cli('pack', MODEL, '--board', 'esp32s3', '--quant', 'f32', '--kv', 'f32', '--ctx', '512', '--ignore-fit', '-o', at('forced.efimg'));
  assert.is(p.code, 0, p.err);
  oneLineError(cli('verify', at('forced.efimg'), '--board', 'esp32s3'), 'verify --board', /does not fit esp32s3: linear memory 672\.\d KiB needed, 1\d\d\.\d KiB available: [45]\d\d\.\d KiB short/);
  oneLineError(cli('run', at('forced.efimg'), '--board', 'esp32s3', '-n', '4'), 'run --board', /does not fit esp32s3: linear memory .* short/);
  const v = cli('verify', at('forced.efimg'), '--board', 'esp32s3-psram2');
  assert.is(v.code, 0, v.err);
  const r = cli('run', at('forced.efimg'), '--board', 'esp32s3-psram2', '-n', '8', '-i', 'In', '--json');
  assert.is(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  assert.is(j.memory_cap, 1984 * 1024, 'the linear memory esp32s3-psram2 gives wasm3 (boards/esp32s3-psram2.json)');
  assert.ok(j.memory_bytes <= j.memory_cap);
  assert.not.match(r.err, /no memory cap/);
  // without --board: as packed, uncapped, and it says so
  const u = cli('run', at('forced.efimg'), '-n', '8', '-i', 'In', '--json');
  assert.is(JSON.parse(u.out).memory_cap, null);
  assert.match(u.err, /no memory cap/);
});

s('re-packing an image keeps its KV and activation formats unless flags change them', () => {
  const a = cli('pack', MODEL, '--board', 'esp32', '--quant', 'tb1', '--kv', 'int4', '--act', 'i4', '--ctx', '128', '-o', at('esp32.efimg'));
  assert.is(a.code, 0, a.err);
  const b = cli('pack', at('esp32.efimg'), '--board', 'esp32s3', '--ctx', '256', '-o', at('s3.efimg'));
  assert.is(b.code, 0, b.err);
  const j = JSON.parse(cli('inspect', at('s3.efimg'), '--json').out);
  assert.is(j.config.kv, 'int4');
  assert.is(j.config.act, 'i4');
  assert.is(j.tensors.find((t: any) => t.name === 'blk.0.ffn_down').format, 'tb1');
  const c = cli('pack', at('esp32.efimg'), '--board', 'rpi5', '--kv', 'int8', '-o', at('rpi5.efimg'));
  assert.is(c.code, 0, c.err);
  assert.is(JSON.parse(cli('inspect', at('rpi5.efimg'), '--json').out).config.kv, 'int8');
  assert.match(cli('plan', at('esp32.efimg'), '--board', 'esp32', '--no-speed').out, /KV int4, activations i4/);
});

s('pack --board with no formats named picks what fits and says so; a refusal prints the largest context', () => {
  const r = cli('pack', MODEL, '--board', 'esp32', '--json', '-o', at('auto.efimg'));
  assert.is(r.code, 0, r.err);
  const m = /pack: chose --quant (\S+) --kv (\S+) --ctx (\d+) for esp32/.exec(r.err);
  assert.ok(m, r.err);
  const j = JSON.parse(r.out);
  assert.is(j.fits, true);
  assert.is(j.kv, m![2]);
  assert.is(j.ctx, Number(m![3]));
  assert.ok(j.ctx > 50, 'more context than f32 weights and KV reach');
  assert.is(JSON.parse(cli('inspect', at('auto.efimg'), '--json').out).tensors.find((t: any) => t.name === 'blk.0.attn_q').format, m![1]);
  // the plan agrees with what was chosen
  const pl = cli('plan', MODEL, '--board', 'esp32', '--quant', m![1], '--kv', m![2], '--ctx', m![3], '--no-speed', '--check');
  assert.is(pl.code, 0, pl.out);
  // formats and context named: a refusal, with plan's largest-context line
  const f = cli('pack', MODEL, '--board', 'esp32', '--quant', 'f32', '--kv', 'f32', '--ctx', '512', '-o', at('never.efimg'));
  oneLineError({ ...f, err: f.err.split('\n').filter((l) => l.startsWith('edge-flash')).join('\n') }, 'pack with formats named', /does not fit esp32/);
  const largest = /^ {2}largest context that fits: (\d+) \(--ctx (\d+)\)$/m.exec(f.err);
  assert.ok(largest && largest[1] === largest[2], f.err);
  // the context it names fits (and one more does not): the planner's figure, not a pinned number
  assert.is(cli('plan', MODEL, '--board', 'esp32', '--quant', 'f32', '--kv', 'f32', '--ctx', largest![1], '--no-speed', '--check').code, 0);
  assert.is(cli('plan', MODEL, '--board', 'esp32', '--quant', 'f32', '--kv', 'f32', '--ctx', String(Number(largest![1]) + 1), '--no-speed', '--check').code, 1);
});

s('plan --check exits 1 when it does not fit; plain plan keeps 0', () => {
  const args = ['plan', MODEL, '--board', 'esp32', '--quant', 'f32', '--kv', 'f32', '--ctx', '512', '--no-speed'];
  const plain = cli(...args);
  assert.is(plain.code, 0, plain.err);
  assert.match(plain.out, /DOES NOT FIT/);
  const check = cli(...args, '--check');
  assert.is(check.code, 1, check.err);
  assert.match(check.out, /DOES NOT FIT/);
  assert.is(cli('plan', MODEL, '--board', 'rpi5', '--no-speed', '--check').code, 0);
});

s('plan --engine aot: the 260K demo fits a context on a plain ESP32 where wasm3 does not; a bad engine is one line', () => {
  // ctx 256: wasm3 fits 139 beside ESP-IDF's main task, the AOT build 268 (test/planner.test.ts pins both)
  const args = ['plan', MODEL, '--board', 'esp32', '--quant', 'tb1', '--kv', 'int4', '--ctx', '256', '--no-speed', '--check'];
  const w = cli(...args);
  assert.is(w.code, 1, w.err);
  const a = cli(...args, '--engine', 'aot', '--json');
  assert.is(a.code, 0, a.err);
  const j = JSON.parse(a.out);
  assert.is(j.engine, 'aot');
  assert.is(j.ctx, 256);
  assert.ok(j.totals.appCode > 0 && j.totals.appCode <= j.limits.appCode, JSON.stringify(j.limits));
  assert.is(j.tokPerSec, null);
  const t = cli(...args, '--engine', 'aot');
  assert.match(t.out, /AOT app code[^]*verdict: FITS on esp32/);
  assert.not.match(t.out, /wasm3 stack/);
  oneLineError(cli(...args, '--engine', 'jit'), 'plan --engine', /--engine must be one of wasm3, aot, got 'jit'/);
});

s('the README\'s command table is the CLI\'s, its fit table the planner\'s (npm run docs:figures -- --check)', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', fromRoot('tools', 'docs-figures.ts'), '--check'], { encoding: 'utf8', cwd: fromRoot() });
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stderr, /the README's command table matches the CLI \(and every options table\)/);
  const readme = readFileSync(fromRoot('README.md'), 'utf8');
  // the planner's estimates moved to docs/planner.md; every verb's options to docs/cli.md
  assert.match(readFileSync(fromRoot('docs', 'planner.md'), 'utf8'), /<!-- figures: plan -->\n\| model \| board \| fits \|[^]*\| kjv-rpi-15m [^]*<!-- end figures: plan -->/);
  const cliPage = readFileSync(fromRoot('docs', 'cli.md'), 'utf8');
  for (const verb of ['run', 'pack', 'flash', 'chat', 'monitor', 'quantize', 'runtime build']) assert.match(cliPage, new RegExp(`<!-- figures: options ${verb} -->\\n\\| option \\| default \\| what it does \\|\\n\\| --- [^]*?<!-- end figures: options ${verb} -->`));
  assert.match(r.stderr, /its fit table the planner/);
  // a row for every model in models/, a column for every board
  const fit = /<!-- figures: fit -->\n([^]*?)<!-- end figures: fit -->/.exec(readme)![1].trim().split('\n');
  // and a row for each under the AOT build (plan --engine aot)
  assert.is(fit.length, 2 + 2 * 5, fit.join('\n'));
  assert.match(fit[0], /^\| model \| host \| esp32 \|.*\| rpi5 \|$/);
  // each cell is what `pack MODEL --board B` chooses with no flags (docs/planner.md)
  // (esp32: int4 at ctx 139 beside ESP-IDF's main task, which the planner counts; int8 reached 131 before)
  assert.match(readme, /\| kjv-esp32-260k \(ctx 512\) \| tb1, int8, ctx 512 \| tb1, int4, ctx 139, streams [\d.]+ KiB \|/);
  assert.match(readme, /\| kjv-esp32-260k, --engine aot \| tb1, int8, ctx 512 \| tb1, int8, ctx \d+/);
});

s('plan\'s tok/s estimate reports the spread of its calibration rounds', async () => {
  const r = cli('plan', MODEL, '--board', 'rpi5', '--quant', 'tb1', '--json');
  assert.is(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  if (j.tokPerSec === null && j.speedNote) {
    // a busy machine: no estimate, and the reason (the spread over 25 %)
    assert.match(j.speedNote, /^no estimate: the calibration's spread was (\d+) %, over 25 %/);
    assert.ok(Number(/was (\d+) %/.exec(j.speedNote)![1]) > 25);
    return;
  }
  if (j.tokPerSec === null) {
    if (process.env.CI) throw new Error(`no estimate in CI: ${r.err}`);
    process.stderr.write(`warning: no wasm3 here, the estimate's spread was not checked: ${r.err}\n`);
    return;
  }
  assert.ok(j.tokPerSec.estimate > 0);
  assert.ok(typeof j.tokPerSec.spread === 'number' && j.tokPerSec.spread >= 0 && j.tokPerSec.spread <= 0.25, JSON.stringify(j.tokPerSec));
  assert.match(j.tokPerSec.basis, /median of 7 rounds, spread \d+ %/);
});

s.run();
