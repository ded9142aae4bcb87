// `edge-flash plan`: will this model fit this board, and how fast will it run there? The table on
// stdout (or --json); the arithmetic is host/image/plan.ts planBoard().
import type { Command } from 'commander';
import { choiceFlag, intFlag, topkFlag } from './flags.ts';
import { convertModel, deviceApp, planRequest } from '../image/pack.ts';
import { alternativesThatFit, ENGINES, formatPlan, largestContext, planBoard, planJson, type BoardPlanRequest, type PlanExtras } from '../image/plan.ts';
import { imageToModel } from '../image/model.ts';
import { UserError } from '../errors.ts';
import { imagePlanRequest } from './fit.ts';
import { applyChoice, kvNamed } from './pack.ts';
import { checkAgainstModel, imageChoices, withImageFormats } from '../image/options.ts';
import { isImageFile, loadSource } from '../image/source.ts';
import { measureHostSpeed } from '../image/speed.ts';
import { log, warn } from '../log.ts';

export function registerPlan(program: Command): void {
  program
    .command('plan')
    .description('memory plan of a model on a board: linear memory, wasm3 heap, flash; fits or not (--check: exit 1 if not); largest context and formats that fit; estimated tok/s')
    .argument('<model>', 'a model file (llama2.c .bin, GGUF, safetensors) or an edge-flash image (its board, context and formats are the defaults)')
    .option('--board <name>', 'target board (see `edge-flash boards`); default for an image: the board it was packed for')
    .option('-z <path>', 'tokenizer.bin (default: the model\'s own, or tokenizer.bin beside it)')
    .option('--quant <format>', 'layer matrices in this format: ternary, tb1, tq2, q8_0, i4g32, ... (default: chosen as pack chooses, docs/planner.md)')
    .option('--embed <format>', 'token embedding (and an unshared classifier): f32 or q8_0 (default: q8_0 under a sub-8-bit --quant)')
    .option('--kv <format>', 'KV cache: f32, int8, int4, int3 (default: chosen as pack chooses, docs/planner.md; an image\'s own)')
    .option('--act <format>', 'activations before quantized matmuls: i8 (BitNet b1.58), i4, or a4.8 (i4 into wq, wk, wv, w1, w3; the inputs of wo and w2 top-K sparsified, then i8) (default: i8, or the image\'s own)')
    .option('--topk <fraction>', 'a4.8: fraction of the wo and w2 inputs kept, in (0, 1]; 1: no sparsification (default: 0.5 under --act a4.8, else 1)', topkFlag('--topk'))
    .option('--ctx <n>', 'context (KV cache length) to plan for (default: the largest that fits, up to the model\'s seq_len; an image\'s own)', intFlag('--ctx', { min: 1, max: 1 << 24 }))
    .option('--firmware <name>', 'plan for this firmware of the board (its heap figures, boards/<board>.json firmwares): esp32c3 has bare-metal (default) and esp-idf; the ESP32 and ESP32-S3 esp-idf')
    .option('--engine <name>', 'wasm3 (the interpreter, default) or aot (the app compiled ahead of time into the firmware: no interpreter heap, its code in the app partition)', choiceFlag('--engine', ENGINES), 'wasm3')
    .option('--no-speed', 'skip the wasm3 measurement behind the tok/s estimate')
    .option('--json', 'print one JSON object instead of the table')
    .option('--check', 'exit 1 when it does not fit (for scripts; without it the report exits 0 either way)')
    .addHelpText('after', `
Linear memory is the runtime's own arena plan (exact); weights that do not fit stream from flash
each token. The wasm3 heap and the board figures are estimates with their sources in boards/*.json.
--engine aot plans the AOT build (make -C boards/runtime aot): the same linear memory, no wasm3 heap
(only the native stack and the glue's static data), its code counted against the app partition
(AOT_FOOTPRINT in host/image/plan.ts, measured by make aot-size). Its tok/s estimate is wasm3's
divided by the AOT/wasm3 decode ratio that bench --model --engine wasm3,aot measured on the
development machine (a host ratio, not measured on a board); each engine's estimate is printed
beside the other's.
When the model does not fit: the largest context that does, and the formats that would.

Examples:
  edge-flash plan models/kjv-esp32-260k/model.bin --board esp32 --quant tb1 --kv int4
  edge-flash plan models/kjv-esp32-260k/model.bin --board esp32 --quant tb1 --kv int4 --engine aot
  edge-flash plan model.gguf --board rpi-zero2w --json`)
    .action(async (modelPath: string, o) => {
      if (o.board !== undefined || !isImageFile(modelPath)) imageChoices(o); // the flags' errors before the model is read
      const src = loadSource(modelPath, o.z);
      // an image plans as it was packed: its board, its context (the planner's figures for it, as verify --board gives them)
      const img = src.image;
      const ch = imageChoices(withImageFormats({ ...o, board: o.board ?? img?.board?.name, ctx: o.ctx ?? img?.config.ctx }, img));
      checkAgainstModel(ch, src.model);
      // a model: what the flags leave open is chosen as `pack` chooses it (the same line on stderr)
      if (!img) applyChoice('plan', src.model, ch, { quant: ch.quant, kv: kvNamed(o.kv, ch), ctx: ch.ctx }, o.engine);
      const { model } = convertModel(src.model, ch);
      // an image with no format flags: the planner's figures for the image as it is (as verify --board and firmware plan it)
      const asIs = img && [o.quant, o.embed, o.kv, o.act, o.topk, o.ctx].every((x) => x === undefined) ? imagePlanRequest(img, imageToModel(img, modelPath), ch.board, o.engine) : undefined;
      if (asIs && 'unplannable' in asIs) throw new UserError(`${modelPath}: its app cannot run on a board: ${asIs.unplannable}`);
      const req: BoardPlanRequest = asIs ?? { ...planRequest(model, { ...ch, app: deviceApp() }, 1024), engine: o.engine };
      if (o.speed) {
        const s = await measureHostSpeed(req.model, ch.kv, ch.act, undefined, ch.topk);
        if ('error' in s) warn(`no tok/s estimate: ${s.error}`);
        else req.speed = s;
      }
      const plan = planBoard(req);
      const extra: PlanExtras = { sourceSeqLen: model.config.seqLen };
      if (req.speed) {
        // the other engine's estimate beside this one's, from the same measurement
        const engine = o.engine === 'aot' ? 'wasm3' : 'aot';
        const other = planBoard({ ...req, engine });
        extra.other = { engine, fits: other.fits, tokPerSec: other.tokPerSec?.value ?? null };
      }
      if (!plan.fits) {
        log('plan: searching the largest context and the formats that fit');
        extra.largestCtx = largestContext(req, model.config.seqLen);
        extra.alternatives = alternativesThatFit(req);
      }
      process.stdout.write((o.json ? JSON.stringify(planJson(plan, extra), null, 1) : formatPlan(plan, extra)) + '\n');
      if (o.check && !plan.fits) process.exitCode = 1;
    });
}
