// Measures what wasm3 itself needs beside linear memory on a 32-bit board: builds footprint.c with
// wasm3 0.9.0 (the sources the wasm3-node addon vendors, wasm3x-sys) and the settings wasm3 uses on
// ESP32 where the app allows them (see the flags below), for -m32 and -m64, then runs
// the device app on a model exactly as planned for a board: model_init, then decoding.
//   npx tsx tools/wasm3-footprint/measure.ts [model] [--quant tb1] [--kv int4] [--memory 160K] [--tokens 8]
// Prints one JSON line per build. boards/*.json "wasm3" cite its figures.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseBytes, quantFormat } from '../../host/cli/run.ts';
import { baseImports } from '../../host/engine/imports.ts';
import { wasmBytes } from '../../host/engine/index.ts';
import { v8Engine } from '../../host/engine/v8.ts';
import { loadModel } from '../../host/formats/index.ts';
import { kvFormat } from '../../host/model/kv.ts';
import { planModel } from '../../host/model/plan.ts';
import { packPlan } from '../../host/image/pack.ts';
import { readImage } from '../../host/image/read.ts';
import { quantizeModel } from '../../host/model/quantize.ts';
import { fromRoot } from '../../host/paths.ts';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const modelPath = args[0] && !args[0].startsWith('--') ? args[0] : fromRoot('models', 'kjv-esp32-260k', 'model.bin');

function wasm3Source(): string {
  const reg = join(process.env.CARGO_HOME ?? join(homedir(), '.cargo'), 'registry', 'src');
  for (const d of existsSync(reg) ? readdirSync(reg) : []) {
    const s = join(reg, d, 'wasm3x-sys-0.2.1', 'wasm3', 'source');
    if (existsSync(s)) return s;
  }
  throw new Error('wasm3 sources not found: build the wasm3-node addon first (cargo fetches wasm3x-sys 0.2.1)');
}

const app = wasmBytes('device');
let model = loadModel(modelPath);
model = quantizeModel(model, { layers: quantFormat(opt('--quant', 'tb1'), 'device'), classifier: null });
const kv = kvFormat(opt('--kv', 'int4'))!;
const probe = v8Engine.instantiate(app, baseImports());
probe.call('arena_reset');
const heapBase = Number(probe.call('arena_top'));
probe.close();
const plan = planModel(model, { target: 'device', kv, act: 'i8', memoryLimit: parseBytes(opt('--memory', '160K')) }, heapBase);
const dir = mkdtempSync(join(tmpdir(), 'wasm3-footprint-'));
// the image a board runs: its descriptor section for model_init, its bytes for weights_read
const img = readImage(packPlan(model, plan, app));
writeFileSync(join(dir, 'app.wasm'), app);
writeFileSync(join(dir, 'desc.bin'), img.descriptor);
writeFileSync(join(dir, 'weights.bin'), img.bytes);

const src = wasm3Source();
const here = fromRoot('tools', 'wasm3-footprint');
const files = readdirSync(src).filter((f) => f.endsWith('.c') && !/api_(uvwasi|wasi|meta_wasi|libc|tracer)/.test(f)).map((f) => join(src, f));
for (const bits of ['32', '64']) {
  const exe = join(dir, `footprint${bits}`);
  execFileSync('cc', [
    `-m${bits}`, '-O2', '-w', '-I', src, '-include', join(here, 'count.h'),
    // ESP32's wasm3 settings where the app allows them: 1 KiB code pages, 64-entry constant tables, terse
    // errors. Not its 256-slot function stack height (the app's largest functions overrun it: the board
    // runtime must raise d_m3MaxFunctionStackHeight) nor d_m3CascadedOpcodes=0 (this wasm3 then fails
    // with 'incorrect type on stack').
    '-Dd_m3CodePageAlignSize=1024', '-Dd_m3MaxConstantTableSize=64', '-Dd_m3VerboseErrorMessages=0', '-Dd_m3LogOutput=0', '-Dd_m3Use32BitSlots=0',
    ...files, '-x', 'c', join(here, 'footprint.c'), '-o', exe, '-lm', '-lpthread',
  ], { stdio: ['ignore', 'inherit', 'inherit'] });
  const out = execFileSync(exe, [join(dir, 'app.wasm'), join(dir, 'desc.bin'), join(dir, 'weights.bin'), opt('--stack', '16384'), opt('--tokens', '8')], { encoding: 'utf8' });
  const r = JSON.parse(out);
  process.stdout.write(JSON.stringify({ bits: Number(bits), app_bytes: app.byteLength, plan_linear: plan.memory.total, ...r }) + '\n');
}
