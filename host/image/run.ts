// `edge-flash run <image>`: an image run as a board runs it. The image is read with every check a board
// makes (header, CRCs, SHA-256, signature, contents and descriptor: the reader's errors, as `verify`
// gives them), then its own app runs its descriptor as model_init reads it (ModelRuntime.fromImage:
// the image's bytes through edge.weights_read, the one host import a board provides; the tensors
// resident and streamed as planned, its context, KV and activation formats and prefill width) under a
// linear memory cap of the plan's size. Nothing is planned or laid out again here. The
// app tokenizes the prompt and decodes tokens itself from the image's tokenizer section (EFTK), copied
// into linear memory at model_init as the plan counts it: the host only moves bytes in and out.
import type { BoardProfile } from '../board/boards.ts';
import type { EngineName } from '../engine/types.ts';
import { UserError } from '../errors.ts';
import type { ImageRunOptions } from '../model/runtime.ts';
import type { Target } from '../quant/formats.ts';
import { appBuild, appProblem, type AppBuild } from './app.ts';
import type { Image } from './read.ts';

export interface ImageRun {
  build: AppBuild;            // what the app is: the device (MVP) build, the simd build, or unknown
  target: Target;             // the build the app is
  options: ImageRunOptions;   // for ModelRuntime.fromImage
  notes: string[];            // what runs differently from a board, one line each
}

export interface ImageRunRequest {
  engine: EngineName;
  board?: BoardProfile;       // the board to run it as (default: the image's own)
  memoryLimit?: number;       // a cap for an image not planned (packed with --ignore-fit), or a board's
}

// How to run an image on an engine: its app and memory cap; the plan is the image's descriptor.
// Refuses what a board could not run: a SIMD app under wasm3.
export function imageRun(path: string, image: Image, req: ImageRunRequest): ImageRun {
  const problem = appProblem(image.app);
  if (problem) throw new UserError(`${path}: ${problem}`, 'pack the model again with this edge-flash');
  const build = appBuild(image.app);
  if (build === 'simd' && req.engine === 'wasm3') {
    throw new UserError(`${path}: the image's app is a SIMD build, which wasm3 (and a board) cannot run`, 'run it with --engine v8, or pack it again: pack puts in the device build');
  }
  const c = image.config;
  const notes: string[] = [];
  const planned = c.plannedLinear > 0;
  if (build === 'simd') notes.push(`${path} carries a SIMD build of the app, which a board cannot run: it runs the kernels the image's plan names`);
  if (!planned && req.memoryLimit === undefined) notes.push(`${path} was not planned (packed with --ignore-fit): it runs the plan it records with no memory cap`);
  const options: ImageRunOptions = {
    target: build === 'simd' ? 'simd' : 'device',
    memoryLimit: req.memoryLimit,
    capMemory: planned || req.memoryLimit !== undefined,
    // wasm3's value stack as the image's board sizes it
    stackBytes: req.engine === 'wasm3' ? (req.board ?? image.board)?.wasm3.stack : undefined,
  };
  return { build, target: options.target!, options, notes };
}
