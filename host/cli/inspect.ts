// `edge-flash inspect`: what an image holds: header, sections, sizes, hashes, model summary, board.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { errnoText, UserError } from '../errors.ts';
import { hex32 } from '../image/crc32.ts';
import { fmtBytes } from '../image/plan.ts';
import { readImage, type Image } from '../image/read.ts';
import { imagePlan } from '../image/descriptor.ts';

export function readImageFile(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new UserError(`cannot read ${path}: ${errnoText(e)}`);
  }
}

export function inspectJson(img: Image): Record<string, unknown> {
  return {
    version: img.version, board_id: img.boardId, board: img.board?.name ?? null, flags: img.flags, total_size: img.totalSize,
    header_size: img.headerSize, sha256: img.digest, signature: img.signature,
    sections: img.sections.map((s) => ({ kind: s.kind, name: s.name, offset: s.offset, size: s.size, align: s.align, crc32: hex32(s.crc) })),
    config: img.config,
    tensors: img.tensors.map((t) => ({
      name: t.name, format: t.format.name, rows: t.m, cols: t.k, stored: [t.mPadded, t.kPadded], scale: t.scale, offset: t.offset, size: t.size, resident: t.resident,
    })),
    metadata: img.metadata,
  };
}

export function inspectText(path: string, img: Image): string {
  const c = img.config;
  const out: string[] = [];
  out.push(`${path}: edge-flash image v${img.version}, ${fmtBytes(img.totalSize)} (${img.totalSize} bytes)`);
  out.push(`board     ${img.board ? `${img.board.name} (id ${img.boardId}): ${img.board.title}` : `unknown board id ${img.boardId}`}`);
  out.push(`sha256    ${img.digest}`);
  out.push(`signature ${img.signature ? `Ed25519, key ${img.signature.keyId} (public key ${img.signature.publicKey})` : 'none'}`);
  out.push(`model     dim ${c.dim}, hidden ${c.hiddenDim}, ${c.nLayers} layers, ${c.nHeads} heads (${c.nKvHeads} KV), vocab ${c.vocabSize}, seq_len ${c.seqLen}, ` +
    `${c.sharedClassifier ? 'shared' : 'separate'} classifier, rope_theta ${c.ropeTheta}, norm_eps ${c.normEps.toPrecision(3)}`);
  out.push(`runtime   ctx ${c.ctx}, KV ${c.kv}, activations ${c.act}` + (c.plannedLinear ? `, planned linear memory ${fmtBytes(c.plannedLinear)} of ${fmtBytes(c.linearLimit)}, prefill width ${c.batch}` : ', not planned'));
  out.push('');
  out.push('section      offset      size  align  crc32');
  for (const s of img.sections) out.push(`${s.name.padEnd(10)} ${String(s.offset).padStart(8)} ${String(s.size).padStart(9)} ${String(s.align).padStart(6)}  ${hex32(s.crc)}`);
  out.push('');
  const counts = new Map<string, { n: number; bytes: number; resident: number }>();
  for (const t of img.tensors) {
    const e = counts.get(t.format.name) ?? { n: 0, bytes: 0, resident: 0 };
    e.n++;
    e.bytes += t.size;
    if (t.resident) e.resident++;
    counts.set(t.format.name, e);
  }
  out.push(`tensors   ${img.tensors.length}: ${[...counts].map(([f, e]) => `${e.n} ${f} (${fmtBytes(e.bytes)}, ${e.resident} resident)`).join(', ')}`);
  // the descriptor section: what model_init runs (kernels by stable id, the staging buffer)
  const plan = imagePlan(img, 0, 'device');
  const kernels = new Map<string, number>();
  for (const t of plan.tensors) if (t.kernel) kernels.set(`${t.kernel.exportName} (${t.kernel.id})`, (kernels.get(`${t.kernel.exportName} (${t.kernel.id})`) ?? 0) + 1);
  out.push(`plan      ${plan.tensors.length} descriptor entries, batch ${plan.batch}, staging ${fmtBytes(plan.stageBytes)}, scratch ${fmtBytes(plan.scratch)}; kernels ${[...kernels].map(([k, n]) => `${k} x${n}`).join(', ')}`);
  if (img.metadata) out.push(`metadata  ${JSON.stringify(img.metadata)}`);
  return out.join('\n');
}

export function registerInspect(program: Command): void {
  program
    .command('inspect')
    .description('show what an image holds: header, sections, hashes, model, board')
    .argument('<image>', 'an edge-flash image')
    .option('--tensors', 'list every tensor')
    .option('--json', 'print one JSON object')
    .action((path: string, o) => {
      let img: Image;
      try {
        img = readImage(readImageFile(path));
      } catch (e) {
        if (e instanceof UserError && !(e.message.startsWith('cannot read'))) throw new UserError(`${path}: ${e.message}`, e.hint);
        throw e;
      }
      if (o.json) {
        process.stdout.write(JSON.stringify(inspectJson(img), null, 1) + '\n');
        return;
      }
      let text = inspectText(path, img);
      if (o.tensors) {
        text += '\n\n' + img.tensors.map((t) => `${t.name.padEnd(24)} ${t.format.name.padEnd(8)} ${`${t.m}x${t.k}`.padStart(11)} ${String(t.offset).padStart(10)} ${String(t.size).padStart(9)} ${t.resident ? 'resident' : 'streamed'}`).join('\n');
      }
      process.stdout.write(text + '\n');
    });
}
