// `edge-flash run`: llama2.c's `run` over the WASM runtime (host/model/). Same flags and defaults as
// run.c (-t 1.0, -p 0.9, -s time, -n 256, -m generate, -z tokenizer.bin); text streams to stdout,
// `achieved tok/s` goes to stderr at the end. An edge-flash image (told by its magic) is verified, then
// runs as its board runs it (host/image/run.ts): flags that would change what it packs are refused.
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { UserError } from '../errors.ts';
import { engineOrFallback } from '../engine/index.ts';
import { loadModel } from '../formats/index.ts';
import { log, warn } from '../log.ts';
import { chat, DEFAULT_REPLY_TOKENS, generateInApp, type GenerateResult } from '../model/generate.ts';
import { kvFormat, KV_FORMATS } from '../model/kv.ts';
import { defaultKv, describePlan } from '../model/plan.ts';
import { quantizeModel } from '../model/quantize.ts';
import { ModelRuntime, type RuntimeOptions } from '../model/runtime.ts';
import { samplerFromCli } from '../model/sampler.ts';
import { tokenizerImage } from '../model/tokenizer.ts';
import type { Model } from '../model/model.ts';
import { imageToModel, loadImageModel, openImage } from '../image/model.ts';
import { fmtBytes } from '../image/plan.ts';
import { imageRun } from '../image/run.ts';
import { loadPublicKey } from '../image/sign.ts';
import { isImageFile, nearImageMagic } from '../image/source.ts';
import { boardByName } from '../board/boards.ts';
import { planImageOn, shortfall } from './fit.ts';
import { readImageFile } from './inspect.ts';
import { formatByName, FORMATS, ternaryFormat, type Target } from '../quant/formats.ts';
import { actFlag, bytesFlag, floatFlag, intFlag, topkFlag } from './flags.ts';
import { OutputClosed, writeOut } from './output.ts';


// "ternary" picks the fastest ternary layout of the engine's build.
export function quantFormat(name: string, target: Target) {
  const f = name === 'ternary' ? ternaryFormat(target) : formatByName(name);
  if (!f) throw new UserError(`unknown --quant format '${name}': expected ternary or one of ${FORMATS.filter((x) => !x.retired).map((x) => x.name).join(', ')}`);
  return f;
}

export { parseBytes } from './flags.ts';

// A model file; when none of the loaders reads it and it starts within one byte of the image magic
// (which no model format can), it is a damaged image: the image reader's error, as `verify` gives it.
function loadModelOrImageError(path: string, tokenizer?: string): Model {
  try {
    return loadModel(path, { tokenizer });
  } catch (e) {
    if (e instanceof UserError && nearImageMagic(path)) loadImageModel(path, readImageFile(path));
    throw e;
  }
}

export function registerRun(program: Command): void {
  program
    .command('run')
    .description("generate text with a model on V8 or wasm3 (llama2.c run's flags and defaults), or run an image as its board would: verified first, then its own app, weights, context and memory plan")
    .argument('<model|image>', 'llama2.c .bin (legacy, v1, v2), GGUF, safetensors (+ config.json), or an edge-flash image (told by its magic)')
    .option('-z <path>', 'tokenizer.bin (default: the model\'s own, or tokenizer.bin beside it or here; an image carries its own)')
    .option('-t <float>', 'temperature, 0 or more; 0 = greedy', floatFlag('-t', { min: 0 }), 1.0)
    .option('-p <float>', 'top-p in [0, 1]; 0 or 1 = off', floatFlag('-p', { min: 0, max: 1 }), 0.9)
    .option('-s <int>', 'random seed (a C int, as run.c reads it); 0 = time', intFlag('-s', { min: -(2 ** 31), max: 2 ** 31 - 1 }), 0)
    .option('-n <int>', 'positions to run (prompt included); 0 = context length; more than the context runs to its end (run.c), saying so', intFlag('-n', { min: 0, max: 2 ** 31 - 1 }), 256)
    .option('-i <string>', 'input prompt')
    .option('-m <mode>', 'generate | chat', 'generate')
    .option('-y <string>', 'system prompt in chat mode')
    .option('--reply-tokens <n>', `chat: most tokens of one reply (0: until the model ends it or the context is full)`, intFlag('--reply-tokens', { min: 0 }), DEFAULT_REPLY_TOKENS)
    .option('--engine <name>', 'v8 | wasm3 (--engine wasm3 without the wasm3 addon is an error)', 'v8')
    .option('--target <build>', 'device (MVP, what wasm3 and boards run) | simd (default on V8); an image runs its own app')
    .option('--quant <format>', 'quantize the layer matrices on load: ternary, tq2, tq1, tb1, tt4, q8_0, i4g32, ... (docs/formats.md); not for an image')
    .option('--act <format>', 'activations before quantized matmuls: i8 (BitNet b1.58) | i4 (int4 into every one; ternary kernels) | a4.8 (BitNet a4.8: i4 into wq, wk, wv, w1, w3; the inputs of wo and w2 top-K sparsified, then i8); an image\'s own by default', actFlag('--act'), 'i8')
    .option('--topk <fraction>', 'fraction of the wo and w2 inputs kept (top-K by magnitude), in (0, 1]; 1: no sparsification; default 0.5 under --act a4.8, else 1; not for an image', topkFlag('--topk'))
    .option('--kv <format>', 'KV cache: f32 | int8 | int4 | int3; default f32, int3 under --act a4.8; an image\'s own by default')
    .option('--memory <bytes>', 'linear memory limit (e.g. 160K): weights that do not fit stream from the image every token; an image runs under its plan\'s', bytesFlag('--memory'))
    .option('--batch <n>', 'prefill tokens per forward (GEMM width); default 16, or 1 under --memory; an image\'s own by default', intFlag('--batch', { min: 1, max: 4096 }))
    .option('--board <name>', 'an image must run on this board and fit it (as `verify --board`), and runs as on it: under its linear memory')
    .option('--key <public key>', 'an image must be signed by this Ed25519 public key (PEM, or 64 hex digits), as `verify --key`')
    .option('--json', 'print one JSON object (text, tokens, timings, memory) instead of streaming text')
    .option('--verbose', 'print the memory plan, prefill and decode speeds and the memory high-water mark')
    .addHelpText('after', `
Numbers are checked: a value that is not a number in the flag's range is an error (where run.c would
read 'abc' as 0, clamp -t below 0 to 0 and -p outside [0, 1] to 0.9). -n above the context runs to
the context's end, as run.c does, and says so on stderr.

An image (edge-flash pack) is verified first, as \`edge-flash verify\` does, then runs as its board runs it:
its own app, its packed weights, its context, KV and activation formats, its memory plan and cap.

Examples:
  edge-flash run models/kjv-esp32-260k/model.bin -t 0 -n 64 -i "In the beginning"
  edge-flash run model.gguf --engine wasm3 --kv int4 --memory 160K --verbose
  edge-flash run kjv.efimg --engine wasm3 -t 0 -i "In the beginning"`)
    .action(async (modelPath: string, o, cmd: Command) => {
      const given = (flag: string) => cmd.getOptionValueSource(flag) === 'cli';
      const steps0: number = o.n;
      const mode = String(o.m);
      if (mode !== 'generate' && mode !== 'chat') throw new UserError(`unknown mode '${mode}': expected generate or chat`);
      const kv = kvFormat(o.kv ?? defaultKv(o.act));
      if (!kv) throw new UserError(`unknown --kv '${o.kv}': expected ${KV_FORMATS.map((k) => k.name).join(', ')}`);
      if (o.target !== undefined && o.target !== 'device' && o.target !== 'simd') throw new UserError(`unknown --target '${o.target}': expected device or simd`);
      const memoryLimit: number | undefined = o.memory;
      const batch: number = o.batch ?? (memoryLimit === undefined ? 16 : 1);
      const replyTokens: number = o.replyTokens;
      const image = isImageFile(modelPath);
      // --board and --key are for images: with either, a file that is not one gets the image reader's error
      if ((o.board !== undefined || o.key !== undefined) && !image) loadImageModel(modelPath, readImageFile(modelPath));
      const board = o.board !== undefined ? boardByName(o.board) : undefined;
      const engine = await engineOrFallback(o.engine, warn, given('engine'));
      const sampler = samplerFromCli(o.t, o.p, o.s);

      let start: () => ModelRuntime;
      let cap: number | null = null;
      let ctx: number;
      let steps: number;
      let modelLine: string;
      let about: string[] = [];
      let imageJson: Record<string, unknown> | undefined;
      if (image) {
        const publicKey = o.key !== undefined ? loadPublicKey(o.key) : undefined;
        const img = openImage(modelPath, readImageFile(modelPath), { board, publicKey });
        const c = img.config;
        if (o.z !== undefined) throw new UserError(`${modelPath} is an edge-flash image: it carries its tokenizer, drop -z`);
        if (given('memory') && c.plannedLinear > 0) {
          throw new UserError(`--memory: ${modelPath} runs under its own plan, ${c.plannedLinear} bytes of linear memory (${c.linearLimit} for ${img.board?.name ?? 'its board'})`, 'drop --memory, or pack the model for another board');
        }
        // --board: the planner's fit check, as `verify --board`, and the board's linear memory as the cap
        let boardCap: number | undefined;
        const fit = board ? planImageOn(img, imageToModel(img, modelPath), board) : undefined;
        if (board && fit && 'unplannable' in fit) throw new UserError(`${modelPath}: ${fit.unplannable}`, 'pack the model again with this edge-flash');
        if (board && fit && !('unplannable' in fit)) {
          if (!fit.fits) throw new UserError(`${modelPath}: does not fit ${board.name}: ${shortfall(fit)}`, `see \`edge-flash plan ${modelPath} --board ${board.name}\``);
          boardCap = fit.limits.linear;
        }
        const run = imageRun(modelPath, img, { engine: engine.name, board, memoryLimit: memoryLimit ?? boardCap });
        if (o.quant !== undefined) {
          const f = quantFormat(o.quant, run.target);
          const layers = new Set(img.tensors.filter((t) => t.role === 'matrix').map((t) => t.format.name));
          if (layers.size !== 1 || !layers.has(f.name)) {
            throw new UserError(`--quant ${o.quant}: ${modelPath} runs its weights as packed (layer matrices ${[...layers].join(', ')})`, `drop --quant, or pack it again: edge-flash pack ${modelPath} --board ${img.board?.name ?? 'B'} --quant ${o.quant} -o <image>`);
          }
        }
        if (given('kv') && kv.name !== c.kv) throw new UserError(`--kv ${kv.name}: ${modelPath} was planned with KV ${c.kv}`, `drop --kv, or pack it again with --kv ${kv.name}`);
        if (o.topk !== undefined) throw new UserError(`--topk: ${modelPath} runs the top-K it was packed with`, `drop --topk, or pack it again with --topk ${o.topk}`);
        if (given('act') && c.act !== 'f32' && o.act !== c.act) throw new UserError(`--act ${o.act}: ${modelPath} was packed with ${c.act} activations`, `drop --act, or pack it again with --act ${o.act}`);
        if (given('batch') && c.batch > 0 && batch !== c.batch) throw new UserError(`--batch ${batch}: ${modelPath} was planned with a prefill width of ${c.batch}`, 'drop --batch');
        if (o.target !== undefined && o.target !== run.target) throw new UserError(`--target ${o.target}: ${modelPath} carries a ${run.build} build of the app, and runs it`, 'drop --target');
        for (const n of run.notes) warn(n);
        const options = boardCap === undefined ? run.options : { ...run.options, memoryLimit: Math.min(run.options.memoryLimit ?? boardCap, boardCap), capMemory: true };
        if (options.capMemory) cap = options.memoryLimit ?? null;
        ctx = c.ctx;
        steps = steps0 === 0 || steps0 > ctx ? ctx : steps0;
        start = () => ModelRuntime.fromImage(img, engine, options);
        modelLine = `model: ${modelPath}: edge-flash image v${img.version} for ${img.board?.name ?? `board id ${img.boardId}`}; dim ${c.dim}, hidden ${c.hiddenDim}, ${c.nLayers} layers, ${c.nHeads} heads (${c.nKvHeads} kv), vocab ${c.vocabSize}, context ${c.ctx}`;
        imageJson = {
          board: img.board?.name ?? null, sha256: img.digest, signed: img.signature?.keyId ?? null, app_build: run.build,
          ctx: c.ctx, kv: c.kv, act: c.act, planned_linear: c.plannedLinear || null, linear_limit: c.linearLimit || null,
        };
        about = [
          `image: ${modelPath}: ${fmtBytes(img.totalSize)} for ${img.board?.name ?? `board id ${img.boardId}`}, sha256 ${img.digest.slice(0, 16)}, ` +
            `${img.signature ? `signed by ${img.signature.keyId}${img.signature.trusted ? ' (the key given)' : ''}` : 'unsigned'}; ` +
            `app ${img.app.byteLength} bytes (${run.build} build); ctx ${c.ctx}, KV ${c.kv}, activations ${c.act}` +
            (c.plannedLinear > 0 ? `, planned linear memory ${c.plannedLinear} bytes of ${c.linearLimit}` : ', not planned'),
        ];
      } else {
        const target: Target = o.target ?? (engine.name === 'v8' ? 'simd' : 'device');
        if (engine.name === 'wasm3' && target === 'simd') throw new UserError('wasm3 runs the device build only (no SIMD): drop --target simd');
        let model = loadModelOrImageError(modelPath, o.z);
        if (o.quant) model = quantizeModel(model, { layers: quantFormat(o.quant, target), classifier: null });
        // the sampler's top-p buffer only when top-p sampling can happen; the device tokenizer sized for the prompt
        const topp = sampler.temperature > 0 && sampler.topp > 0 && sampler.topp < 1;
        const textBytes = mode === 'chat' ? 1024 : Math.max(256, Buffer.byteLength(o.i ?? '') + 1);
        const opts: RuntimeOptions = {
          target, kv, act: o.act, topk: o.topk, batch, memoryLimit, capMemory: memoryLimit !== undefined, sampler: topp,
          tokenizerImage: tokenizerImage(model.tokenizer!), textBytes,
        };
        if (opts.capMemory) cap = memoryLimit ?? null;
        ctx = model.config.seqLen;
        steps = steps0 === 0 || steps0 > ctx ? ctx : steps0;
        modelLine = `model: ${model.path}: ${model.source}; dim ${model.config.dim}, hidden ${model.config.hiddenDim}, ${model.config.nLayers} layers, ${model.config.nHeads} heads (${model.config.nKvHeads} kv), vocab ${model.config.vocabSize}, context ${model.config.seqLen}`;
        if (steps < ctx) model = sizedForRun(model, steps, o.verbose);
        // packed for this host (board host) into an image in memory, then run from it like any image
        const sized = model;
        start = () => ModelRuntime.create(sized, engine, opts);
      }

      let rt: ModelRuntime;
      try {
        rt = start();
      } catch (e) {
        // an image's app that the engine rejects is the image's fault, not a bug
        if (image && !(e instanceof UserError)) throw new UserError(`${modelPath}: the image's app does not run on ${engine.name}: ${(e as Error).message.split('\n')[0]}`);
        throw e;
      }
      const target = rt.plan.target;
      try {
        if (o.verbose) {
          log(modelLine);
          for (const line of about) log(line);
          for (const line of describePlan(rt.plan)) log(line);
          log(`engine: ${engine.name}, ${target} build${image ? ' (the image\'s app)' : ''}`);
        }
        rt.setSampler(sampler);
        const chunks: Uint8Array[] = [];
        let emitted = 0;
        const emit = o.json ? (b: Uint8Array) => void chunks.push(b) : (b: Uint8Array) => { emitted++; writeOut(b); };
        let r: GenerateResult;
        try {
          if (mode === 'generate') {
            r = generateInApp(rt, o.i ?? '', steps, emit); // the app tokenizes, samples and prints, as a board
            if (!o.json) writeOut('\n');
          } else {
            // stdin is opened only when a line is needed: with -i, chat answers it and exits without reading
            let lines: AsyncIterator<string> | undefined;
            r = await chat(rt, o.i, o.y, steps, {
              readLine: async (guide) => {
                if (!o.json && process.stdin.isTTY) writeOut(guide);
                lines ??= createInterface({ input: process.stdin, terminal: false })[Symbol.asyncIterator]();
                const n = await lines.next();
                return n.done ? null : n.value;
              },
              emit,
              print: (s) => (o.json ? void chunks.push(Buffer.from(s)) : writeOut(s)),
              note: warn,
            }, { replyTokens, once: o.i !== undefined });
          }
        } catch (e) {
          // the reader has what it wanted: the generation stops here (--verbose says where)
          if (e instanceof OutputClosed && o.verbose) log(`stdout closed by its reader after ${emitted} tokens of at most ${steps} positions: generation stopped`);
          throw e;
        }
        // run.c stops at the context silently; a user who asked for more is told
        if (steps0 > ctx && r.positions >= ctx) log(`stopped at the end of the context: ${ctx} positions${image ? ' (the image\'s context)' : ''}, fewer than -n ${steps0}`);
        const mem = rt.memoryBytes();
        if (o.json) {
          const text = Buffer.concat(chunks).toString('utf8');
          writeOut(JSON.stringify({
            text, tokens: r.tokens, positions: r.positions, achieved_tok_s: r.achievedTokS,
            prefill_tok_s: r.prefillMs > 0 ? (r.promptTokens - 1) / (r.prefillMs / 1000) : null,
            decode_tok_s: r.decodeMs > 0 ? r.decodeSteps / (r.decodeMs / 1000) : null,
            memory_bytes: mem, memory_cap: cap, engine: engine.name, target, kv: rt.plan.kv.name, seed: sampler.seed.toString(),
            ...(imageJson ? { image: imageJson } : {}),
          }) + '\n');
        }
        process.stderr.write(`achieved tok/s: ${r.achievedTokS.toFixed(6)}\n`);
        if (o.verbose) {
          if (r.promptTokens > 1) log(`prefill: ${r.promptTokens - 1} tokens in ${r.prefillMs.toFixed(1)} ms (${((r.promptTokens - 1) / (r.prefillMs / 1000)).toFixed(1)} tok/s, batch ${rt.plan.batch})`);
          log(`decode: ${r.decodeSteps} tokens in ${r.decodeMs.toFixed(1)} ms (${(r.decodeSteps / (r.decodeMs / 1000)).toFixed(1)} tok/s)`);
          log(`memory: linear memory high-water mark ${mem} bytes (${(mem / 1024).toFixed(1)} KiB)`);
        }
      } finally {
        rt.close();
      }
    });
}

// A model file's runtime (its KV cache above all) is sized by the positions the run uses, not by
// the context length its header claims (an image runs under its own plan).
function sizedForRun(model: Model, steps: number, verbose: boolean): Model {
  if (verbose) log(`context: ${steps} positions (-n), not the model's ${model.config.seqLen}: the KV cache is sized for the run`);
  return { ...model, config: { ...model.config, seqLen: steps } };
}
