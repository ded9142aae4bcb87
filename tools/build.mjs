// `npm run build` (also run by `npm ci` through `prepare`): generated tables, both WASM targets, the
// CLI bundle. Each step prints one line on stderr; any failure stops the build with its message.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = (name) => join(root, 'node_modules', '.bin', name);
const only = new Set(process.argv.slice(2)); // e.g. `node tools/build.mjs wasm cli`
const want = (step) => only.size === 0 || only.has(step);

function step(name, fn) {
  const t0 = Date.now();
  try {
    fn();
  } catch (e) {
    process.stderr.write(`build: ${name} FAILED: ${String(e.message).split('\n')[0]}\n`);
    process.exit(1);
  }
  process.stderr.write(`build: ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)\n`);
}

const run = (cmd, args, opts = {}) => execFileSync(cmd, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'], ...opts });

mkdirSync(join(root, 'build'), { recursive: true });
if (want('gen')) step('generated format tables', () => run(bin('tsx'), ['tools/gen-formats.ts']));
if (want('wasm')) {
  for (const target of ['device', 'simd']) {
    step(`assembly -> build/${target}.wasm`, () => run(bin('asc'), ['--config', 'asconfig.json', '--target', target]));
  }
}
if (want('cli')) {
  step('host -> dist/cli.js', () =>
    run(bin('esbuild'), [
      'host/cli/main.ts', '--bundle', '--platform=node', '--format=esm', '--target=node20',
      '--outfile=dist/cli.js', '--log-level=warning',
      '--banner:js=import { createRequire as __cr } from "node:module"; const require = __cr(import.meta.url);',
    ]));
}
