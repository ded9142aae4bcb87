// The flags `plan` and `pack` share, validated in one place: --board, --quant, --embed, --kv, --act,
// --ctx. Each bad value is one UserError naming the flag, what it got and what it takes.
import { boardByName, withFirmware, type BoardProfile } from '../board/boards.ts';
import { parseAct, parseNumber, parseTopk } from '../cli/flags.ts';
import { quantFormat } from '../cli/run.ts';
import { UserError } from '../errors.ts';
import { headDim } from '../model/config.ts';
import { KV_FORMATS, kvFormat, type KvFormat } from '../model/kv.ts';
import { defaultKv, type ActMode } from '../model/plan.ts';
import type { Model } from '../model/model.ts';
import { formatByName, type WeightFormat } from '../quant/formats.ts';
import { REFS } from '../quant/ref/index.ts';
import { EMBEDDING_FORMATS } from '../quant/formats.ts';
import { D_KEEP_WO } from '../model/desc.ts';
import type { Image } from './read.ts';

export interface ImageFlags {
  board?: string;
  firmware?: string;                  // the board's firmware whose figures to plan with (default: the profile's first)
  quant?: string;
  embed?: string;
  kv?: string;
  act?: string;
  topk?: string | number;
  ctx?: string | number;
}

export interface ImageChoices {
  board: BoardProfile;
  quant?: WeightFormat;
  embed?: WeightFormat;
  kv: KvFormat;
  act: ActMode;
  topk?: number;
  ctx?: number;
}

export function imageChoices(o: ImageFlags): ImageChoices {
  if (!o.board) throw new UserError('--board is required', 'see `edge-flash boards`');
  const board = o.firmware === undefined ? boardByName(o.board) : withFirmware(boardByName(o.board), o.firmware);
  let quant: WeightFormat | undefined;
  if (o.quant !== undefined) {
    quant = quantFormat(o.quant, 'device');
    if (!REFS[quant.name]) throw new UserError(`--quant ${quant.name}: the format has no reference quantizer to produce it`);
  }
  let embed: WeightFormat | undefined;
  if (o.embed !== undefined) {
    embed = formatByName(o.embed);
    if (!embed || !EMBEDDING_FORMATS.includes(embed)) throw new UserError(`unknown --embed '${o.embed}': expected ${EMBEDDING_FORMATS.map((f) => f.name).join(' or ')} (the runtime reads embeddings in these)`);
  }
  const act = parseAct(o.act ?? 'i8');
  const kv = kvFormat(o.kv ?? defaultKv(act));
  if (!kv) throw new UserError(`unknown --kv '${o.kv}': expected ${KV_FORMATS.map((k) => k.name).join(', ')}`);
  const topk = o.topk === undefined ? undefined : parseTopk(String(o.topk));
  const ctx = o.ctx === undefined ? undefined : parseNumber('--ctx', String(o.ctx), { integer: true, min: 1 });
  return { board, quant, embed, kv, act, topk, ctx };
}

// Checks that need the model: the context and the KV format against its shape.
export function checkAgainstModel(ch: ImageChoices, m: Model): void {
  if (ch.ctx !== undefined && ch.ctx > m.config.seqLen) throw new UserError(`--ctx ${ch.ctx} is larger than the model's seq_len ${m.config.seqLen}`);
  if (ch.kv.name === 'int3' && headDim(m.config) % 8 !== 0) throw new UserError(`--kv int3 packs 8 values in 3 bytes: this model's head size ${headDim(m.config)} is not a multiple of 8`);
}

// An image given to `plan` or `pack` keeps its KV and activation formats unless flags change them.
export function withImageFormats(o: ImageFlags, img?: Image): ImageFlags {
  if (!img) return o;
  // an a4.8 image keeps its top-K too: the fraction its descriptor's keep_wo word says (0: all)
  const keep = img.config.act === 'a4.8' && o.topk === undefined ? new DataView(img.descriptor.buffer, img.descriptor.byteOffset).getInt32(4 * D_KEEP_WO, true) : 0;
  return {
    ...o, kv: o.kv ?? img.config.kv, act: o.act ?? (img.config.act === 'f32' ? undefined : img.config.act),
    topk: o.topk ?? (img.config.act === 'a4.8' && o.act === undefined ? (keep > 0 ? keep / img.config.dim : 1) : undefined),
  };
}
