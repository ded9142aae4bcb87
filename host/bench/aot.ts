// The AOT app (boards/runtime: `make -C boards/runtime aot`) driven from the host: the image a
// ModelRuntime runs written to a file, then boards/runtime/test/app_run.c (built on the AOT app layer
// as build/app_run-aot, on wasm3's as build/app_run) runs it as a board does and makes the calls the
// ModelRuntime makes: model_init on its descriptor, sampler_init, then model_step or gen_begin/gen_next.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import type { ModelRuntime } from '../model/runtime.ts';
import { fromRoot } from '../paths.ts';

export const APP_RUN = { aot: fromRoot('boards', 'runtime', 'build', 'app_run-aot'), wasm3: fromRoot('boards', 'runtime', 'build', 'app_run') } as const;
export type AppLayer = keyof typeof APP_RUN;

export function appRunBinary(layer: AppLayer): string {
  const bin = APP_RUN[layer];
  if (!existsSync(bin)) throw new UserError(`no ${bin}: the ${layer} app layer is not built`, 'run make -C boards/runtime aot (needs wabt: tools/install-system-deps.sh)');
  return bin;
}

export interface Dump { path: string; boardId: number }

// What app_run reads: the image the runtime runs (its app, descriptor section and bytes: a ModelRuntime
// always runs from an image, packed in memory when it was made from a Model).
export function dumpRuntime(rt: ModelRuntime, dir: string): Dump {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'image.efimg');
  writeFileSync(path, rt.image.bytes);
  return { path, boardId: rt.image.boardId };
}

function appRun(layer: AppLayer, d: Dump, args: string[]): { out: string; err: string } {
  const bin = appRunBinary(layer);
  const r = spawnSync(bin, ['--image', d.path, '--board-id', String(d.boardId), ...args], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.error || r.status !== 0) throw new UserError(`${bin} failed: ${r.error?.message ?? (r.stderr || `exit ${r.status}`).trim().split('\n')[0]}`);
  return { out: r.stdout, err: r.stderr };
}

// Greedy decode from BOS for `steps` positions: the tokens and tok/s as run.c counts it.
export function appRunDecode(layer: AppLayer, d: Dump, steps: number): { tokens: number[]; tokS: number } {
  const { out, err } = appRun(layer, d, ['--decode', String(steps)]);
  const m = /achieved tok\/s: ([\d.]+)/.exec(err);
  if (!m) throw new UserError(`app_run (${layer}) printed no "achieved tok/s" line`);
  return { tokens: out.trim().split(' ').map(Number), tokS: Number(m[1]) };
}

// The app's generate (greedy): the text it prints, and a newline, as `edge-flash run -t 0` prints it.
export function appRunGenerate(layer: AppLayer, d: Dump, prompt: string, steps: number): string {
  return appRun(layer, d, ['--generate', String(steps), '--prompt', prompt]).out;
}

// The AOT twin of a wasm3 bench row: the same runtime dumped, and its first `check` positions decoded
// on both (greedy from BOS) must agree token for token before anything is timed.
export function aotTwin(rt: ModelRuntime, dir: string, check: number): Dump {
  const dump = dumpRuntime(rt, dir);
  rt.setSampler({ temperature: 0, topp: 0.9, seed: 1n });
  const want: number[] = [];
  let tok = 1;
  for (let pos = 0; pos < check; pos++) want.push((tok = rt.step(tok, pos)));
  const got = appRunDecode('aot', dump, check).tokens;
  const at = want.findIndex((t, i) => t !== got[i]);
  if (at >= 0) throw new Error(`the AOT app decodes token ${got[at]} at position ${at} where wasm3 decodes ${want[at]}: the two builds of the app disagree`);
  return dump;
}

// How the AOT app was compiled (app_run-aot prints it): for the bench rows' `build`.
export function aotBuild(): string {
  const r = spawnSync(appRunBinary('aot'), ['--build'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : 'unknown';
}
