// `pack --board B` with no --quant and no --kv on a model that does not fit as loaded: the formats
// and context the planner says fit, the most precise first. Full context if any layer and KV format
// fits it (more weight bits first, then more KV bits); else the largest context any of them reaches
// (unless --ctx was given), and the most precise formats at that context.
import { headDim } from '../model/config.ts';
import { KV_FORMATS, type KvFormat } from '../model/kv.ts';
import { alternativesThatFit, largestContext, planBoard, reshapedModel, withContext, type BoardPlanRequest } from '../image/plan.ts';
import { FORMATS, formatByName, runsOn, type WeightFormat } from '../quant/formats.ts';
import { REFS } from '../quant/ref/index.ts';

export interface Choice {
  quant: WeightFormat;
  kv: KvFormat;
  ctx: number;
}

const bits = (f: WeightFormat) => (f.blockBytes * 8) / f.block;
// candidates in order of precision: weight bits, then KV bits (a stable sort keeps FORMATS' order)
function candidates(r: BoardPlanRequest): { f: WeightFormat; kv: KvFormat }[] {
  const fs = FORMATS.filter((x) => !x.retired && REFS[x.name] && runsOn(x, 'device')).sort((a, b) => bits(b) - bits(a)); // a board runs the device build
  const kvs = KV_FORMATS.filter((k) => k.name !== 'int3' || headDim(r.model.config) % 8 === 0);
  return fs.flatMap((f) => kvs.map((kv) => ({ f, kv })));
}

// `r` plans the model as loaded at the context asked for; null when nothing fits even one position.
export function chooseFormats(r: BoardPlanRequest, maxCtx: number, ctxGiven: boolean): Choice | null {
  const ctx = r.model.config.seqLen;
  const order = candidates(r);
  const rank = (q: string, kv: string) => order.findIndex((c) => c.f.name === q && c.kv.name === kv);
  const atCtx = alternativesThatFit(r).sort((a, b) => rank(a.quant, a.kv) - rank(b.quant, b.kv));
  if (atCtx.length) return { quant: formatByName(atCtx[0].quant)!, kv: KV_FORMATS.find((k) => k.name === atCtx[0].kv)!, ctx };
  if (ctxGiven) return null;
  // the largest context: each layer format with its smallest KV format reaches the most
  const smallestKv = order[order.length - 1].kv;
  let best: { f: WeightFormat; ctx: number } | null = null;
  for (const f of [...new Set(order.map((c) => c.f))]) {
    const n = largestContext({ ...r, model: reshapedModel(r.model, f), kv: smallestKv }, maxCtx);
    if (n > 0 && (!best || n > best.ctx)) best = { f, ctx: n };
  }
  if (!best) return null;
  const at = withContext(r.model, best.ctx);
  for (const c of order) {
    if (planBoard({ ...r, model: reshapedModel(at, c.f), kv: c.kv, speed: undefined }).fits) return { quant: c.f, kv: c.kv, ctx: best.ctx };
  }
  return { quant: best.f, kv: smallestKv, ctx: best.ctx };
}
