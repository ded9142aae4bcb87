// The generated firmware against real ESP-IDF (tools/esp-idf-check.ts): the trees in ../shared/esp-idf/
// beside the checkout, or the user's $IDF_PATH. Every `edge-flash firmware` variant is configured with
// ESP-IDF's own CMake and Kconfig on the newest tree, one project per chip on the others, and each project
// C file compiled with ESP-IDF's command line (Debian's cross compilers standing in for Espressif's,
// Espressif's type model; Xtensa compile-only); no sdkconfig.defaults line may be ignored; the partition
// table goes through each tree's gen_esp32part.py. The storage and slot layer runs on ESP-IDF's `linux`
// target (esp_partition's flash emulation): adopt, boot, confirm, reads and writes across the slot boundary.
// Without a tree or a tool this says so in one line, and fails when CI is set.
// Two suites run it, so that each stays within test/run.mjs's ten minutes a suite: test/esp-idf.test.ts
// (the newest tree: every variant, and the linux target) and test/esp-idf-v5.test.ts (the older trees).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { IDF_CHECKED } from '../host/firmware/project.ts';
import { fromRoot } from '../host/paths.ts';
import { checkMatrix, findTrees, linuxStorageCheck, matrix, missingTools, packImages, newestTree, Slots, toolEnv, type CheckResult } from '../tools/esp-idf-check.ts';

export function idfSuite(part: 'newest' | 'older'): void {
  const test = suite(part === 'newest' ? 'ESP-IDF, the newest tree' : 'ESP-IDF, the older trees');

  const trees = findTrees();
  const missing = !trees.length ? 'no ESP-IDF tree: none in ../shared/esp-idf/ beside the checkout, and IDF_PATH is not set' : missingTools();
  const work = mkdtempSync(join(tmpdir(), 'edge-flash-esp-idf-'));
  const log = (s: string) => process.stderr.write(`esp-idf: ${s}`);

  // One line, and a failure in CI; true when the suite can run.
  function canRun(what: string): boolean {
    if (!missing) return true;
    if (process.env.CI) assert.unreachable(`${what}: ${missing}`);
    process.stderr.write(`warning: ${what} is not checked: ${missing}\n`);
    return false;
  }

  test('the tool: a folder that is no ESP-IDF tree is refused in one line, exit 2', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', fromRoot('tools', 'esp-idf-check.ts'), '--idf', work], { encoding: 'utf8', cwd: fromRoot() });
    assert.is(r.status, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`^esp-idf-check: ${work} is not an ESP-IDF tree \\(no tools/cmake/project\\.cmake\\)\n`));
    assert.is(r.stdout, '');
  });

  test(`in CI every version the firmware names (${IDF_CHECKED.join(', ')}) is there`, () => {
    if (!canRun('ESP-IDF')) return;
    const found = trees.map((t) => t.version);
    for (const v of IDF_CHECKED) {
      if (found.includes(v)) continue;
      if (process.env.CI) assert.unreachable(`ESP-IDF ${v} not found in ../shared/esp-idf/ (found ${found.join(', ')})`);
      process.stderr.write(`warning: ESP-IDF ${v} is not checked: not found (found ${found.join(', ')})\n`);
    }
  });

  let results: CheckResult[] = [];
  test('every variant configures with ESP-IDF\'s CMake and Kconfig and every project C file compiles', async () => {
    if (!canRun('the firmware on ESP-IDF')) return;
    const newest = trees.length ? newestTree(trees) : null;
    const runs = matrix(trees).filter((r) => (part === 'newest') === (r.tree === newest));
    results = await checkMatrix(runs, { jobs: 2, work, log });
    assert.is(results.length, runs.length);
    const bad = results.filter((r) => !r.ok).map((r) => `${r.version} ${r.variant}: ${r.error ? `${r.stage}: ${r.error}` : r.files.filter((f) => !f.ok).map((f) => `${f.file}: ${f.error}`).join('\n')}`);
    assert.equal(bad, [], bad.join('\n\n'));
    for (const r of results) {
      // main.c, console.c, partition_storage.c and the core at least; wasm3's sources or the translated app
      assert.ok(r.files.some((f) => f.file === 'main/console.c') && r.files.length >= 15, `${r.version} ${r.variant}: ${r.files.length} files`);
      assert.ok(r.files.some((f) => f.file.startsWith(r.variant.includes('-aot') ? 'main/aot/' : 'components/wasm3/')), `${r.version} ${r.variant}: the app layer compiled`);
    }
  });

  test('ESP-IDF takes every sdkconfig.defaults line the generator writes', () => {
    for (const r of results) assert.equal(r.ignored, [], `${r.version} ${r.variant}: ignored ${r.ignored.join(' | ')}`);
  });

  test('the console driver comes from `driver` before v5.3 and from its own component from v5.3', () => {
    for (const r of results) {
      if (!r.components.length) continue;
      const usb = r.variant.includes('usb-cdc');
      const own = usb ? 'esp_driver_usb_serial_jtag' : 'esp_driver_uart';
      const old = /^v5\.[0-2]\./.test(r.version);
      assert.ok(r.components.includes(old ? 'driver' : own), `${r.version} ${r.variant}: ${old ? 'driver' : own} in the build (${r.components.join(' ')})`);
    }
    // PSRAM is in the build where the board has it
    for (const r of results.filter((x) => x.variant.startsWith('esp32s3-psram8') && x.components.length)) assert.ok(r.components.includes('esp_psram'), `${r.version} ${r.variant}`);
    assert.ok(!missing ? results.some((r) => r.components.length) : true, 'project_description.json lists the components');
  });

  if (part === 'newest') test('the storage and slot layer on ESP-IDF\'s linux target: adopt, boot, confirm, across the slot boundary', async () => {
    if (!canRun('the storage layer on ESP-IDF\'s linux target')) return;
    const env = toolEnv();
    const image = packImages(work, ['esp32c3']).get('esp32c3')!;
    // the newest tree (each tree takes ~1 min of compiling here): tools/esp-idf-check.ts --linux runs every tree
    const tree = newestTree(trees);
    const r = await linuxStorageCheck(tree, work, env, new Slots(2), image);
    log(`${tree.version} linux target: ${r.ok ? 'ok' : 'FAILED'}, ${r.lines.length} checks (${r.seconds.toFixed(0)} s)\n`);
    assert.ok(r.ok, `${r.stage ?? 'run'}: ${r.error}\n${r.lines.join('\n')}`);
    for (const want of ['one write across the slot boundary', 'the flashed image is adopted', 'it boots on trial from slot A', 'it is confirmed', 'after a restart slot A boots, confirmed', 'the upload verifies']) {
      assert.ok(r.lines.some((l) => l.startsWith(`ok ${want}`)), `${want}: ${r.lines.join('\n')}`);
    }
  });

  test.after(() => rmSync(work, { recursive: true, force: true }));
  test.run();
}
