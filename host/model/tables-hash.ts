// One number for every table that crosses a language: the weight formats (blocks, fields, kernels),
// activation and KV-cache formats, the descriptor layout, the stable kernel ids and the app's exports.
// tools/gen-dispatch.ts bakes it into the app (tables_hash) and host/model/tables.gen.ts; an image
// records its app's, and a host refuses an app built from other tables. Prose (docs, layout text) and
// host-only policy are left out.
import { createHash } from 'node:crypto';
import { ACT_FORMATS, BITMOD_GRIDS, FORMATS, KERNEL_IDS } from '../quant/formats.ts';
import * as DT from './desc-table.ts';
import { APP_EXPORT_TABLE } from './exports.ts';
import { KV_FORMATS } from './kv.ts';

export function computeTablesHash(): number {
  // host-side policy (which kernel a plan picks, what `--quant ternary` means) changes no byte either
  const skip = new Set(['doc', 'layout', 'prefer', 'ternaryFor']);
  const noDoc = <T extends object>(o: T) => Object.fromEntries(Object.entries(o).filter(([k]) => !skip.has(k)));
  const tables = {
    formats: FORMATS.map((f) => ({
      ...noDoc(f), kernels: f.kernels.map((kv) => ({ name: kv.name, targets: kv.targets, acts: kv.acts, rowTile: kv.rowTile })),
    })),
    bitmod: BITMOD_GRIDS,
    act: ACT_FORMATS.map(noDoc),
    kv: KV_FORMATS,
    desc: {
      magic: DT.DESC_MAGIC, version: DT.DESC_VERSION, header: DT.DESC_HEADER.map(noDoc), headerWords: DT.DESC_HEADER_WORDS,
      tensor: DT.DESC_TENSOR.map(noDoc), tensorWords: DT.DESC_TENSOR_WORDS, model: DT.DESC_MODEL_TENSORS, layer: DT.DESC_LAYER_TENSORS,
      init: DT.DESC_INIT_RESULTS.map((r) => r.name),
    },
    kernels: KERNEL_IDS,
    exports: APP_EXPORT_TABLE,
  };
  return createHash('sha256').update(JSON.stringify(tables)).digest().readUInt32BE(0);
}

export const hashHex = (h: number) => `0x${(h >>> 0).toString(16).padStart(8, '0')}`;
