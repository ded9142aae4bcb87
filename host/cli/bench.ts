// `edge-flash bench`: the kernel benchmark (host/bench/kernels.ts). Table or JSON on stdout.
import type { Command } from 'commander';
import { UserError } from '../errors.ts';
import { checkFormats, DEFAULT_SHAPES, QUICK_SHAPES, formatTable, parseShapes, planCount, runKernelBench, type BenchEngine } from '../bench/kernels.ts';
import { tryEngine } from '../engine/index.ts';
import type { ActFormatName } from '../quant/formats.ts';
import { REFS } from '../quant/ref/index.ts';
import { log, progress, warn } from '../log.ts';
import { intFlag, parseAct, parseTopk } from './flags.ts';
import { actModelConfigs, benchModelDecode, defaultModelConfigs, formatModelTable } from '../bench/model.ts';
import { benchPeers, formatPeerTable } from '../bench/peers.ts';
import { benchIsa, formatIsaTable, ISA_DEFAULT_STEPS } from '../bench/isa.ts';
import { APP_RUN } from '../bench/aot.ts';
import { benchBoardDecode, formatBoardDecode, type BoardDecodeRow } from '../bench/board.ts';
import { benchUpload, formatUploadTable } from '../bench/upload.ts';
import { parseFaults } from './flags.ts';
import { parseBaud } from '../board/connect.ts';
import { readImageFile } from './inspect.ts';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromRoot } from '../paths.ts';

const ENGINES: BenchEngine[] = ['v8', 'wasm3', 'native'];
// with --model: the AOT app (make -C boards/runtime aot), a row beside each wasm3 row
const AOT = 'aot';
const DEFAULT_ENGINES = 'v8,wasm3,native,aot';
const list = (s: string) => s.split(',').map((x) => x.trim()).filter(Boolean);

export function registerBench(program: Command): void {
  program
    .command('bench')
    .description('time every GEMV/GEMM kernel on V8, wasm3 and native C (same run); ratios against the naive C kernel')
    .option('--engine <list>', 'engines: v8, wasm3, native; with --model also aot (the app compiled ahead of time, beside each wasm3 row)', DEFAULT_ENGINES)
    .option('--shapes <list>', 'MxK shapes (M output rows, K inputs), e.g. 2048x2048,5632x2048')
    .option('--formats <list>', 'weight formats (see docs/formats.md); default: every format with a reference')
    .option('--act <list>', 'activation formats: i8, i4, f32 (f32 goes with the f32 format); with --model: the rows\' activation modes, i8, i4, a4.8 (ternary weights, f32 classifier)', 'i8')
    .option('--kv <list>', 'with --model --act: KV formats of the rows (default: int4, a4.8\'s int3)')
    .option('--topk <list>', 'with --model --act a4.8: fractions of the wo and w2 inputs kept, each in (0, 1], a row each (default 0.5)')
    .option('-n, --tokens <n>', 'tokens per call: 1 = GEMV, more = GEMM (prefill)', intFlag('--tokens', { min: 1, max: 4096 }), 1)
    .option('--repeat <n>', 'timed repeats per kernel (min/median reported)', intFlag('--repeat', { min: 1, max: 10000 }), 5)
    .option('--quick', 'ternary formats (tq2, tq1, tb1, tt4) at 256x256 and 2048x2048 only: well under a minute')
    .option('--json', 'print an array of result objects instead of the table')
    .option('--model <list>', 'decode tok/s of whole models instead of kernels: 260k, 15m (random weights in the shapes of llama2.c\'s stories260K and of stories15M with a 4096-token vocabulary) or llama2.c .bin files')
    .option('--runc <binary>', 'with --model: llama2.c run.c built with cc -O3 -march=native, timed on the same model in the same run')
    .option('--peers', 'with --model: against run.c built here from --runc-src: native (fastest of three builds), wasm32-wasi under the same wasm3, and under V8')
    .option('--runc-src <file>', 'with --peers or --isa: llama2.c\'s run.c (built and cached under build/peers/ or build/isa/)')
    .option('--isa <isa>', `with --model and --runc-src: instructions per token on an ISA in an emulator (rv32imc: the ESP32-C3, Espressif's QEMU) for run.c, run.c under wasm3, and edge-flash's wasm3 and AOT builds; --steps defaults to ${ISA_DEFAULT_STEPS}`)
    .option('--board-decode <images>', 'decode tok/s of images on the virtual board against run <image> --engine wasm3 in the same run, and the device\'s memory beside the plan')
    .option('--steps <n>', 'with --model: positions decoded from BOS (run.c -n)', intFlag('--steps', { min: 2, max: 1 << 20 }), 256)
    .option('--upload [image]', 'upload throughput to the virtual board over its throttled line instead of kernels (default image: the kjv-esp32-260k demo packed for esp32)')
    .option('--baud <list>', 'with --upload: line rates', '115200,921600')
    .option('--faults <list>', 'with --upload: the line\'s faults, as sim takes them (drop=R,flip=R,seed=S)', (v) => parseFaults(v))
    .addHelpText('after', `
Each kernel's result is checked against the scalar reference before it is timed. Gw/s counts
multiply-accumulates (M*K*N) per second. "x native" divides by the naive C kernel (cc -O3) on the
same format and shape, measured in the same run; c-O3-march-native is the auto-vectorized build.

Examples:
  edge-flash bench --quick
  edge-flash bench --board-decode kjv-esp32.efimg --steps 200 --repeat 5
  edge-flash bench --upload --repeat 3 --json
  edge-flash bench --isa rv32imc --model 260k,3m --runc-src PATH/run.c
  edge-flash bench --engine v8,native --formats tq2,tb1 --shapes 2048x2048 --json`)
    .action(async (o, cmd: Command) => {
      const all = list(o.engine);
      const aotAsked = all.includes(AOT);
      if (aotAsked && !o.model && o.engine !== DEFAULT_ENGINES) throw new UserError('--engine aot times whole models: it goes with --model');
      const engines = all.filter((e) => e !== AOT) as BenchEngine[];
      for (const e of engines) if (!ENGINES.includes(e)) throw new UserError(`unknown engine '${e}': expected ${[...ENGINES, AOT].join(', ')}`);
      const usable: BenchEngine[] = [];
      for (const e of engines) {
        if (e !== 'wasm3') usable.push(e);
        else {
          const r = await tryEngine('wasm3');
          if (r.engine) usable.push(e);
          else warn(`wasm3 engine unavailable (${r.error}); its rows are left out`);
        }
      }
      const repeat: number = o.repeat;
      if (o.boardDecode) {
        const rows: BoardDecodeRow[] = [];
        for (const img of list(o.boardDecode)) rows.push(await benchBoardDecode(img, o.steps, repeat, (label) => log(`bench: ${label}`)));
        process.stdout.write(o.json ? JSON.stringify(rows, null, 1) + '\n' : formatBoardDecode(rows) + '\n');
        return;
      }
      if (o.baud !== '115200,921600' && !o.upload) throw new UserError('--baud goes with --upload');
      if (o.faults && !o.upload) throw new UserError('--faults goes with --upload');
      if (o.upload) {
        const bauds = list(o.baud).map((b) => parseBaud(b));
        const image = typeof o.upload === 'string' ? readImageFile(o.upload) : packDemo();
        const rows = await benchUpload({ image, bauds, repeat, faults: o.faults }, (label) => log(`bench: ${label}`));
        process.stdout.write(o.json ? JSON.stringify(rows, null, 1) + '\n' : formatUploadTable(rows) + '\n');
        return;
      }
      if ((o.peers || o.runcSrc || o.isa) && !o.model) throw new UserError('--peers, --isa and --runc-src go with --model');
      if (o.isa) {
        if (o.isa !== 'rv32imc') throw new UserError(`--isa must be rv32imc (the ESP32-C3's), got '${o.isa}'`);
        if (o.peers) throw new UserError('--isa and --peers are separate benchmarks: pass one');
        if (!o.runcSrc) throw new UserError('--isa needs --runc-src PATH/run.c (llama2.c\'s run.c)');
        const steps = cmd.getOptionValueSource('steps') === 'cli' ? (o.steps as number) : ISA_DEFAULT_STEPS;
        const rows = await benchIsa({ models: list(o.model), runcSrc: o.runcSrc, steps, repeat: cmd.getOptionValueSource('repeat') === 'cli' ? repeat : 2 }, (label) => log(`bench: ${label}`));
        process.stdout.write(o.json ? JSON.stringify(rows.map(({ counts: _c, ...r }) => r), null, 1) + '\n' : formatIsaTable(rows) + '\n');
        return;
      }
      if ((o.kv !== undefined || o.topk !== undefined) && !o.model) throw new UserError('--kv and --topk go with --model --act LIST');
      if (o.model) {
        const steps: number = o.steps;
        const modelEngines = usable.filter((e): e is 'v8' | 'wasm3' => e !== 'native');
        let aot = aotAsked;
        if (aot && !modelEngines.includes('wasm3')) {
          if (o.engine !== DEFAULT_ENGINES) throw new UserError('--engine aot needs wasm3 too: each aot row is timed beside its wasm3 twin');
          aot = false;
        }
        if (aot && !existsSync(APP_RUN.aot)) {
          warn(`the AOT runtime is not built (${APP_RUN.aot}: make -C boards/runtime aot, which needs wabt); the aot rows are left out`);
          aot = false;
        }
        if (o.peers) {
          if (!o.runcSrc) throw new UserError('--peers needs --runc-src PATH/run.c (llama2.c\'s run.c)');
          if (!modelEngines.includes('wasm3')) throw new UserError('--peers needs the wasm3 engine (runc-wasm3 runs under it)');
          const rows = await benchPeers({ models: list(o.model), runcSrc: o.runcSrc, steps, repeat, engines: modelEngines, aot }, (label) => log(`bench: ${label}`));
          process.stdout.write(o.json ? JSON.stringify(rows, null, 1) + '\n' : formatPeerTable(rows) + '\n');
          return;
        }
        if (o.runcSrc) throw new UserError('--runc-src goes with --peers');
        const actRows = cmd.getOptionValueSource('act') === 'cli';
        if ((o.kv !== undefined || o.topk !== undefined) && !actRows) throw new UserError('--kv and --topk go with --model --act LIST');
        const configs = actRows ? actModelConfigs(modelEngines, list(o.act).map((a) => parseAct(a)), o.kv !== undefined ? list(o.kv) : null, o.topk !== undefined ? list(o.topk).map((t) => parseTopk(t)) : null) : defaultModelConfigs(modelEngines);
        const rows = await benchModelDecode({ models: list(o.model), configs, steps, repeat, runc: o.runc, aot }, (label) => log(`bench: ${label}`));
        process.stdout.write(o.json ? JSON.stringify(rows, null, 1) + '\n' : formatModelTable(rows) + '\n');
        return;
      }
      const n: number = o.tokens;
      const acts = list(o.act) as ActFormatName[];
      for (const a of acts) if (!['i8', 'i4', 'f32'].includes(a)) throw new UserError(`unknown activation format '${a}': expected i8, i4 or f32`);
      const formats = o.formats ? list(o.formats) : o.quick ? ['tq2', 'tq1', 'tb1', 'tt4'] : Object.keys(REFS);
      checkFormats(formats);
      const shapes = o.shapes ? parseShapes(o.shapes) : o.quick ? QUICK_SHAPES : DEFAULT_SHAPES;
      const opts = { engines: usable, shapes, n, formats, acts, repeat, secondsPerRepeat: o.quick ? 0.03 : 0.1 };
      const bar = progress(planCount(opts), 'bench');
      log(`bench: ${formats.join(',')} on ${usable.join(',')}, ${shapes.map((s) => s.join('x')).join(',')}, ${repeat} repeats`);
      const rows = await runKernelBench(opts, (label) => bar.tick(1, label));
      bar.done();
      process.stdout.write(o.json ? JSON.stringify(rows, null, 1) + '\n' : formatTable(rows) + '\n');
    });
}

// The demo image the upload rows move: kjv-esp32-260k packed for esp32 (tb1, int4 KV, ctx 64), by this
// CLI's own pack in a child process.
function packDemo(): Uint8Array {
  const dir = mkdtempSync(join(tmpdir(), 'edge-flash-bench-pack-'));
  try {
    const out = join(dir, 'kjv-esp32.efimg');
    const r = spawnSync(process.execPath, [fromRoot('bin', 'edge-flash.js'), 'pack', fromRoot('models', 'kjv-esp32-260k', 'model.bin'),
      '--board', 'esp32', '--quant', 'tb1', '--kv', 'int4', '--ctx', '64', '-o', out], { encoding: 'utf8' });
    if (r.status !== 0) throw new UserError(`bench: packing the demo image failed: ${(r.stderr || '').trim().split('\n').pop()}`);
    return readImageFile(out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
