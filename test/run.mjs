// `npm test`: set up the system packages the tests need, build what the tests need, type-check host/,
// run every uvu suite, and end with the one plain line CI reads: `N passed, N failed`. Exits non-zero
// on any failure.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = (name) => join(root, 'node_modules', '.bin', name);
// a suite that leaves a socket or a child open after a failed assertion would keep CI waiting: it is
// killed after this long and counted as failed ('did not finish')
const SUITE_TIMEOUT_MS = 10 * 60 * 1000;
let passed = 0;
let failed = 0;

function sh(cmd, args, label) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    process.stderr.write(`test: ${label} failed (exit ${r.status})\n`);
    failed += 1;
    return false;
  }
  passed += 1;
  return true;
}

// The set-up, before anything is built: the system packages of tools/system-deps.mjs, installed with
// apt-get as root, or one line naming the packages and the command, and nothing else run. The build
// below then makes what depends on them (the wasm3 addon once libclang is there, the AOT runtime once
// wasm2c is). EDGE_FLASH_NO_SETUP=1 skips it (the suites then warn, or fail in CI, where a part is missing).
if (process.env.EDGE_FLASH_NO_SETUP !== '1') {
  const { setUp } = await import('../tools/system-deps.mjs');
  if (setUp() !== 0) process.exit(1);
}

// The generated files against their tables, before the build regenerates them (a stale file fails here).
sh(process.execPath, ['tools/build.mjs', 'gen', '--check'], 'generated files match their tables');
const built = sh(process.execPath, ['tools/build.mjs'], 'build');
sh(bin('tsc'), ['--noEmit', '-p', 'tsconfig.json'], 'typecheck');

if (built) {
  const filter = process.argv[2];
  const suites = readdirSync(join(root, 'test')).filter((f) => f.endsWith('.test.ts') && (!filter || f.includes(filter))).sort();
  for (const suite of suites) {
    const r = spawnSync(process.execPath, ['--import', 'tsx', join('test', suite)], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, FORCE_COLOR: '0' }, timeout: SUITE_TIMEOUT_MS, killSignal: 'SIGKILL' });
    process.stdout.write(r.stdout);
    const total = /Total:\s+(\d+)/.exec(r.stdout);
    const ok = /Passed:\s+(\d+)/.exec(r.stdout);
    if (!total || !ok) {
      process.stderr.write(`test: ${suite} did not finish (exit ${r.status}, signal ${r.signal})\n`);
      failed += 1;
      continue;
    }
    passed += Number(ok[1]);
    failed += Number(total[1]) - Number(ok[1]);
    if (r.status !== 0 && Number(total[1]) === Number(ok[1])) failed += 1;
  }
}

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
