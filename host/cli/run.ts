// `edge-flash run`: llama2.c's `run` over the WASM runtime (host/model/). Same flags and defaults as
// run.c (-t 1.0, -p 0.9, -s time, -n 256, -m generate, -z tokenizer.bin); text streams to stdout,
// `achieved tok/s` goes to stderr at the end.
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { UserError } from '../errors.ts';
import { engineOrFallback } from '../engine/index.ts';
import { loadModel } from '../formats/index.ts';
import { log, warn } from '../log.ts';
import { chat, generate, type GenerateResult } from '../model/generate.ts';
import { kvFormat, KV_FORMATS } from '../model/kv.ts';
import { describePlan } from '../model/plan.ts';
import { quantizeModel } from '../model/quantize.ts';
import { ModelRuntime } from '../model/runtime.ts';
import { samplerFromCli } from '../model/sampler.ts';
import { tokenizerImage } from '../model/tokenizer.ts';
import { formatByName, FORMATS, type Target } from '../quant/formats.ts';

// C's atoi/atof as run.c parses its flags: leading number, else 0.
export function atoi(s: string): number {
  const m = /^\s*([+-]?\d+)/.exec(s);
  return m ? Number(BigInt.asIntN(32, BigInt(m[1]))) : 0;
}
export function atof(s: string): number {
  const m = /^\s*([+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?inf(inity)?|[+-]?nan)/i.exec(s);
  if (!m) return 0;
  const t = m[1].toLowerCase().replace('infinity', 'inf');
  return t.endsWith('inf') ? (t.startsWith('-') ? -Infinity : Infinity) : t.endsWith('nan') ? NaN : Number(m[1]);
}

// "ternary" picks the fastest ternary layout of the engine's build.
export function quantFormat(name: string, target: Target) {
  const n = name === 'ternary' ? (target === 'simd' ? 'tt4' : 'tb1') : name;
  const f = formatByName(n);
  if (!f) throw new UserError(`unknown --quant format '${name}': expected ternary or one of ${FORMATS.filter((x) => !x.retired).map((x) => x.name).join(', ')}`);
  return f;
}

export function parseBytes(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(k|ki|kib|kb|m|mi|mib|mb)?$/i.exec(s.trim());
  if (!m) throw new UserError(`bad byte count '${s}': expected e.g. 163840, 160K or 2M`);
  const unit = (m[2] ?? '').toLowerCase();
  return Math.floor(Number(m[1]) * (unit.startsWith('k') ? 1024 : unit.startsWith('m') ? 1 << 20 : 1));
}

export function registerRun(program: Command): void {
  program
    .command('run')
    .description("generate text with a model on V8 or wasm3 (llama2.c run's flags and defaults)")
    .argument('<model>', 'llama2.c .bin (legacy, v1, v2), GGUF, or safetensors (+ config.json)')
    .option('-z <path>', 'tokenizer.bin (default: the model\'s own, or tokenizer.bin beside it or here)')
    .option('-t <float>', 'temperature in [0, inf]; 0 = greedy', '1.0')
    .option('-p <float>', 'top-p in [0, 1]; 1 = off', '0.9')
    .option('-s <int>', 'random seed; 0 = time', '0')
    .option('-n <int>', 'positions to run (prompt included); 0 = context length', '256')
    .option('-i <string>', 'input prompt')
    .option('-m <mode>', 'generate | chat', 'generate')
    .option('-y <string>', 'system prompt in chat mode')
    .option('--engine <name>', 'v8 | wasm3', 'v8')
    .option('--target <build>', 'device (MVP, what wasm3 and boards run) | simd (default on V8)')
    .option('--quant <format>', 'quantize the layer matrices on load: ternary, tq2, tq1, tb1, tt4, q8_0, i4g32, ... (docs/formats.md)')
    .option('--act <format>', 'activations before quantized matmuls: i8 (BitNet b1.58) | i4 (a4.8, ternary kernels)', 'i8')
    .option('--kv <format>', 'KV cache: f32 | int8 | int4 | int3', 'f32')
    .option('--memory <bytes>', 'linear memory limit (e.g. 160K): weights that do not fit stream from the image every token')
    .option('--batch <n>', 'prefill tokens per forward (GEMM width); default 16, or 1 under --memory')
    .option('--json', 'print one JSON object (text, tokens, timings, memory) instead of streaming text')
    .option('--verbose', 'print the memory plan, prefill and decode speeds and the memory high-water mark')
    .addHelpText('after', `
Examples:
  edge-flash run models/kjv-esp32-260k/model.bin -t 0 -n 64 -i "In the beginning"
  edge-flash run model.gguf --engine wasm3 --kv int4 --memory 160K --verbose`)
    .action(async (modelPath: string, o) => {
      const steps0 = atoi(o.n);
      const mode = String(o.m);
      if (mode !== 'generate' && mode !== 'chat') throw new UserError(`unknown mode '${mode}': expected generate or chat`);
      const kv = kvFormat(o.kv);
      if (!kv) throw new UserError(`unknown --kv '${o.kv}': expected ${KV_FORMATS.map((k) => k.name).join(', ')}`);
      if (o.act !== 'i8' && o.act !== 'i4') throw new UserError(`unknown --act '${o.act}': expected i8 or i4`);
      const memoryLimit = o.memory !== undefined ? parseBytes(o.memory) : undefined;
      const batch = o.batch === undefined ? (memoryLimit === undefined ? 16 : 1) : Number(o.batch);
      if (!Number.isInteger(batch) || batch < 1) throw new UserError(`--batch must be a positive integer, got '${o.batch}'`);
      const engine = await engineOrFallback(o.engine, warn);
      const target: Target = o.target ?? (engine.name === 'v8' ? 'simd' : 'device');
      if (target !== 'device' && target !== 'simd') throw new UserError(`unknown --target '${o.target}': expected device or simd`);
      if (engine.name === 'wasm3' && target === 'simd') throw new UserError('wasm3 runs the device build only (no SIMD): drop --target simd');

      let model = loadModel(modelPath, { tokenizer: o.z });
      if (o.quant) model = quantizeModel(model, { layers: quantFormat(o.quant, target), classifier: null });
      const sampler = samplerFromCli(atof(o.t), atof(o.p), atoi(o.s));
      let steps = Math.max(0, steps0);
      if (steps === 0 || steps > model.config.seqLen) steps = model.config.seqLen;

      // the sampler's top-p buffer only when top-p sampling can happen; the device tokenizer sized for the prompt
      const topp = sampler.temperature > 0 && sampler.topp > 0 && sampler.topp < 1;
      const textBytes = mode === 'chat' ? 1024 : Math.max(256, Buffer.byteLength(o.i ?? '') + 1);
      const rt = ModelRuntime.create(model, engine, {
        target, kv, act: o.act, batch, memoryLimit, capMemory: memoryLimit !== undefined, sampler: topp,
        tokenizerImage: tokenizerImage(model.tokenizer!), textBytes,
      });
      const tok = rt.codec();
      try {
        if (o.verbose) {
          log(`model: ${model.path}: ${model.source}; dim ${model.config.dim}, hidden ${model.config.hiddenDim}, ${model.config.nLayers} layers, ${model.config.nHeads} heads (${model.config.nKvHeads} kv), vocab ${model.config.vocabSize}, context ${model.config.seqLen}`);
          for (const line of describePlan(rt.plan)) log(line);
          log(`engine: ${engine.name}, ${target} build`);
        }
        rt.setSampler(sampler);
        const chunks: Uint8Array[] = [];
        const emit = o.json ? (b: Uint8Array) => void chunks.push(b) : (b: Uint8Array) => void process.stdout.write(b);
        let r: GenerateResult;
        if (mode === 'generate') {
          r = generate(rt, tok, o.i ?? '', steps, emit);
          if (!o.json) process.stdout.write('\n');
        } else {
          const lines = createInterface({ input: process.stdin, terminal: false })[Symbol.asyncIterator]();
          r = await chat(rt, tok, o.i, o.y, steps, {
            readLine: async (guide) => {
              if (!o.json) process.stdout.write(guide);
              const n = await lines.next();
              return n.done ? null : n.value;
            },
            emit,
            print: (s) => (o.json ? chunks.push(Buffer.from(s)) : process.stdout.write(s)),
          });
        }
        const mem = rt.memoryBytes();
        if (o.json) {
          const text = Buffer.concat(chunks).toString('utf8');
          process.stdout.write(JSON.stringify({
            text, tokens: r.tokens, positions: r.positions, achieved_tok_s: r.achievedTokS,
            prefill_tok_s: r.prefillMs > 0 ? (r.promptTokens - 1) / (r.prefillMs / 1000) : null,
            decode_tok_s: r.decodeMs > 0 ? r.decodeSteps / (r.decodeMs / 1000) : null,
            memory_bytes: mem, engine: engine.name, target, kv: kv.name, seed: sampler.seed.toString(),
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
