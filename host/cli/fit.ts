// Whether an image fits a board, as the planner says (host/image/plan.ts planBoard) for the formats,
// context and app the image carries: `verify --board` and `run <image> --board` ask the same question
// that `plan` and `pack` answer, so an image packed with --ignore-fit cannot pass where it does not fit.
import type { BoardProfile } from '../board/boards.ts';
import type { Model } from '../model/model.ts';
import { kvFormat } from '../model/kv.ts';
import { appFootprint } from '../image/pack.ts';
import { fmtBytes, planBoard, type BoardPlan, type BoardPlanRequest, type Engine } from '../image/plan.ts';
import { appProblem } from '../image/app.ts';
import type { Image } from '../image/read.ts';

// `model` is the image's own (host/image/model.ts imageToModel: its formats, seq_len = its context).
// An app that is not an edge-flash device app has no footprint to plan with: what keeps it from running.
// `engine`: what runs the app on the board (wasm3, or the AOT build of `firmware --aot`).
export function planImageOn(img: Image, model: Model, board: BoardProfile, engine: Engine = 'wasm3'): BoardPlan | { unplannable: string } {
  const r = imagePlanRequest(img, model, board, engine);
  return 'unplannable' in r ? r : planBoard(r);
}

// The planner's request for an image as it is: its formats, context, app, tokenizer, metadata, signature.
export function imagePlanRequest(img: Image, model: Model, board: BoardProfile, engine: Engine = 'wasm3'): BoardPlanRequest | { unplannable: string } {
  const problem = appProblem(img.app);
  if (problem) return { unplannable: problem };
  const c = img.config;
  return {
    model, kv: kvFormat(c.kv)!, act: c.act === 'i4' ? 'i4' : 'i8', board, app: appFootprint(img.app),
    tokenizer: img.tokenizer, textBytes: c.textBytes,
    metadataBytes: img.sections.find((s) => s.name === 'metadata')?.size ?? null, signed: img.signature !== null, engine,
  };
}

// By how much a plan misses its board, one phrase per limit it is over.
export function shortfall(plan: BoardPlan): string {
  const over: string[] = [];
  if (plan.linear > plan.limits.linear) over.push(`linear memory ${fmtBytes(plan.linear)} needed, ${fmtBytes(plan.limits.linear)} available: ${fmtBytes(plan.linear - plan.limits.linear)} short`);
  if (plan.problems.some((p) => p.startsWith(`${plan.engine} needs`))) over.push(`${plan.engine} heap ${fmtBytes(plan.heap)} needed, ${fmtBytes(Math.max(0, plan.limits.heap))} available: ${fmtBytes(plan.heap - Math.max(0, plan.limits.heap))} short`);
  if (plan.image > plan.limits.image) over.push(`image ${fmtBytes(plan.image)}, ${fmtBytes(plan.limits.image)} of flash for it: ${fmtBytes(plan.image - plan.limits.image)} over`);
  return over.length ? over.join('; ') : plan.problems.join('; ');
}
