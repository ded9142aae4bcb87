// `edge-flash run <image>`: an image run as a board runs it. The image is read with every check a board
// makes (header, CRCs, SHA-256, signature, contents: the reader's errors, as `verify` gives them), then
// its own app runs its packed weights (as stored: padded, in their formats, the same tensors resident
// and streamed) at the image's context, KV and activation formats and prefill width, under a linear
// memory cap of the plan's size, with the one host import a board provides (edge.weights_read). The
// app tokenizes the prompt and decodes tokens itself from the image's tokenizer section (EFTK), copied
// into linear memory at model_init as the plan counts it: the host only moves bytes in and out.
import type { BoardProfile } from '../board/boards.ts';
import type { EngineName } from '../engine/types.ts';
import { UserError } from '../errors.ts';
import { kvFormat } from '../model/kv.ts';
import type { Model } from '../model/model.ts';
import type { Plan } from '../model/plan.ts';
import type { RuntimeOptions } from '../model/runtime.ts';
import type { Target } from '../quant/formats.ts';
import { appBuild, appProblem, type AppBuild } from './app.ts';
import { fmtBytes, plannedTensors } from './plan.ts';
import type { Image } from './read.ts';

export interface ImageRun {
  build: AppBuild;            // what the app is: the device (MVP) build, the simd build, or unknown
  target: Target;             // the build the runtime plans kernels for
  options: RuntimeOptions;    // for ModelRuntime.create
  notes: string[];            // what runs differently from the image's plan, one line each
}

export interface ImageRunRequest {
  engine: EngineName;
  board?: BoardProfile;       // the board to run it as (default: the image's own)
  memoryLimit?: number;       // only for an image not planned (packed with --force)
}

// How to run an image on an engine: its app, plan settings and memory cap. Refuses what a board could
// not run: a SIMD app under wasm3.
export function imageRun(path: string, image: Image, model: Model, req: ImageRunRequest): ImageRun {
  const problem = appProblem(image.app);
  if (problem) throw new UserError(`${path}: ${problem}`, 'pack the model again with this edge-flash');
  const build = appBuild(image.app);
  if (build === 'simd' && req.engine === 'wasm3') {
    throw new UserError(`${path}: the image's app is a SIMD build, which wasm3 (and a board) cannot run`, 'run it with --engine v8, or pack it again: pack puts in the device build');
  }
  const c = image.config;
  const kv = kvFormat(c.kv)!;
  const notes: string[] = [];
  const planned = c.plannedLinear > 0;
  const streams = image.tensors.some((t) => !t.resident);
  if (build === 'simd' && planned) notes.push(`${path} carries a SIMD build of the app: it runs with SIMD kernels, not the device build's plan it records`);
  if (!planned && req.memoryLimit === undefined) notes.push(`${path} was not planned (packed with --force): it runs with every weight resident and no memory cap`);
  const options: RuntimeOptions = {
    app: image.app,
    target: build === 'simd' ? 'simd' : 'device',
    kv,
    act: c.act === 'i4' ? 'i4' : 'i8',
    batch: c.batch > 0 ? c.batch : undefined,
    // The planner (planBoard) keeps every weight resident when that fits, else fits the board's limit.
    memoryLimit: planned ? (streams ? c.linearLimit : undefined) : req.memoryLimit,
    capMemory: planned || req.memoryLimit !== undefined,
    sampler: true,
    // the app tokenizes and prints from the image's tokenizer section, as on a board
    tokenizerImage: image.tokenizer,
    textBytes: c.textBytes,
    // wasm3's value stack as the image's board sizes it
    stackBytes: req.engine === 'wasm3' ? (req.board ?? image.board)?.wasm3.stack : undefined,
  };
  return { build, target: options.target!, options, notes };
}

// How the runtime's plan differs from the one the image records (another edge-flash packed it): one
// line each; none when they agree. The packer plans for the device build; a SIMD app is not compared.
export function planDifferences(image: Image, model: Model, plan: Plan): string[] {
  const c = image.config;
  if (c.plannedLinear === 0 || plan.target !== 'device') return [];
  const out: string[] = [];
  if (plan.memory.total !== c.plannedLinear) out.push(`this runtime plans ${plan.memory.total} bytes of linear memory (${fmtBytes(plan.memory.total)}); the image was planned for ${c.plannedLinear}`);
  if (c.batch > 0 && plan.batch !== c.batch) out.push(`this runtime prefills ${plan.batch} tokens at a time; the image was planned for ${c.batch}`);
  const res = new Set(plannedTensors(plan, image.config).filter((t) => t.resident).map((t) => t.name));
  const differ = image.tensors.filter((t) => t.resident !== res.has(t.name)).map((t) => `${t.name} (${t.resident ? 'resident' : 'streamed'} in the image)`);
  if (differ.length) out.push(`this runtime keeps other tensors resident than the image: ${differ.slice(0, 4).join(', ')}${differ.length > 4 ? `, and ${differ.length - 4} more` : ''}`);
  return out;
}
