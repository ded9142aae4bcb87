// `edge-flash inspect`: what an image holds (header, sections, sizes, hashes, model summary, board), or
// what a model file holds (format, architecture, shapes, tensor types, tokenizer, metadata), as
// gguf-dump shows a GGUF.
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { errnoText, UserError } from '../errors.ts';
import { hex32 } from '../image/crc32.ts';
import { fmtBytes } from '../image/plan.ts';
import { readImage, type Image } from '../image/read.ts';
import { imagePlan } from '../image/descriptor.ts';
import { isImageFile, nearImageMagic } from '../image/source.ts';
import { loadModel } from '../formats/index.ts';
import { ggmlTypeName, isGguf, parseGguf } from '../formats/gguf.ts';
import { LLAMA2C_MAGIC, readLlama2c } from '../formats/llama2c.ts';
import { isSafetensors } from '../formats/safetensors.ts';
import { isImage } from '../image/model.ts';
import { headDim, kvDim } from '../model/config.ts';
import { MATRIX_NAMES, type Model } from '../model/model.ts';

export function readImageFile(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new UserError(`cannot read ${path}: ${errnoText(e)}`);
  }
}

// flash and verify of a model file: what it is and what makes an image of it, before anything is sent.
export function refuseModelFile(path: string, bytes: Uint8Array): void {
  if (isImage(bytes) || (bytes.length >= 4 && bytes.subarray(0, 4).filter((b, i) => b !== 'EFIM'.charCodeAt(i)).length <= 1)) return;
  let kind: string | null = null;
  if (isGguf(bytes)) kind = 'a GGUF model';
  else if (bytes.length >= 4 && new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true) === LLAMA2C_MAGIC) kind = 'a llama2.c model';
  else if (isSafetensors(bytes)) kind = 'a safetensors model';
  else {
    try {
      readLlama2c(path, bytes);
      kind = 'a llama2.c model';
    } catch {
      return; // not a model either: the image reader says what it found
    }
  }
  throw new UserError(`${path} is ${kind}, not an edge-flash image: pack it first`, `edge-flash pack ${path} --board <board> -o model.efimg`);
}

export function inspectJson(img: Image, fileSha256?: string): Record<string, unknown> {
  return {
    version: img.version, board_id: img.boardId, board: img.board?.name ?? null, flags: img.flags, total_size: img.totalSize,
    header_size: img.headerSize, sha256: img.digest, file_sha256: fileSha256 ?? null, signature: img.signature,
    sections: img.sections.map((s) => ({ kind: s.kind, name: s.name, offset: s.offset, size: s.size, align: s.align, crc32: hex32(s.crc) })),
    config: img.config,
    tensors: img.tensors.map((t) => ({
      name: t.name, format: t.format.name, rows: t.m, cols: t.k, stored: [t.mPadded, t.kPadded], scale: t.scale, offset: t.offset, size: t.size, resident: t.resident,
    })),
    metadata: img.metadata,
  };
}

// Two SHA-256s: the image's digest (of its bytes up to the digest, stored in it, what a signature signs)
// and the whole file's (sha256sum's, what flash uploads and the board's VERIFY checks).
export const fileSha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

export function inspectText(path: string, img: Image, fileSha?: string): string {
  const c = img.config;
  const out: string[] = [];
  out.push(`${path}: edge-flash image v${img.version}, ${fmtBytes(img.totalSize)} (${img.totalSize} bytes)`);
  out.push(`board     ${img.board ? `${img.board.name} (id ${img.boardId}): ${img.board.title}` : `unknown board id ${img.boardId}`}`);
  out.push(`digest    ${img.digest} (SHA-256 of the image up to its digest, stored in it${img.signature ? ' and signed' : ''})`);
  if (fileSha) out.push(`file      ${fileSha} (SHA-256 of the whole file: sha256sum's, the one flash verifies)`);
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
    .description('show what an image holds (header, sections, hashes, model, board), or a model file (format, shapes, tensor types, tokenizer, metadata)')
    .argument('<file>', 'an edge-flash image, or a model file (GGUF, llama2.c .bin, safetensors)')
    .option('--tensors', 'list every tensor')
    .option('--json', 'print one JSON object')
    .action((path: string, o) => {
      if (modelFolder(path) || (!isImageFile(path) && !nearImageMagic(path) && existsAsFile(path))) return inspectModelFile(path, o);
      let img: Image;
      const bytes = readImageFile(path);
      try {
        img = readImage(bytes);
      } catch (e) {
        if (e instanceof UserError && !(e.message.startsWith('cannot read'))) throw new UserError(`${path}: ${e.message}`, e.hint);
        throw e;
      }
      const sha = fileSha256(bytes);
      if (o.json) {
        process.stdout.write(JSON.stringify(inspectJson(img, sha), null, 1) + '\n');
        return;
      }
      let text = inspectText(path, img, sha);
      if (o.tensors) {
        text += '\n\n' + img.tensors.map((t) => `${t.name.padEnd(24)} ${t.format.name.padEnd(8)} ${`${t.m}x${t.k}`.padStart(11)} ${String(t.offset).padStart(10)} ${String(t.size).padStart(9)} ${t.resident ? 'resident' : 'streamed'}`).join('\n');
      }
      process.stdout.write(text + '\n');
    });
}

// A folder that holds a model (model.safetensors with its config.json, or model.bin), as loadModel takes one.
function modelFolder(path: string): boolean {
  try {
    return statSync(path).isDirectory() && (existsAsFile(join(path, 'model.safetensors')) || existsAsFile(join(path, 'model.bin')));
  } catch {
    return false;
  }
}

function existsAsFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

// ---- a model file -----------------------------------------------------------------------------

interface ModelTensorRow { name: string; shape: number[]; type: string; bytes: number }

// Every tensor of a loaded model, by the names of the image (and GGUF's where the file is one).
function modelTensors(m: Model): ModelTensorRow[] {
  const rows: ModelTensorRow[] = [];
  const mat = (name: string, t: Model['embedding']) => rows.push({ name, shape: [t.m, t.k], type: t.format.name, bytes: t.data.byteLength });
  const vec = (name: string, v: Float32Array) => rows.push({ name, shape: [v.length], type: 'f32', bytes: v.byteLength });
  mat('token_embd', m.embedding);
  m.layers.forEach((l, i) => {
    vec(`blk.${i}.attn_norm`, l.rmsAtt);
    for (const n of MATRIX_NAMES) mat(`blk.${i}.${n}`, l[n]);
    vec(`blk.${i}.ffn_norm`, l.rmsFfn);
  });
  vec('output_norm', m.rmsFinal);
  if (m.classifier) mat('output', m.classifier);
  return rows;
}

export function inspectModelJson(path: string, m: Model, fileBytes: number, gguf?: ReturnType<typeof ggufSummary>): Record<string, unknown> {
  const c = m.config;
  const t = m.tokenizer;
  return {
    kind: 'model', path: m.path, format: m.source, file_bytes: fileBytes,
    architecture: 'llama',
    config: { ...c, headDim: headDim(c), kvDim: kvDim(c), ropeTheta: m.ropeTheta, normEps: m.normEps },
    tensors: modelTensors(m),
    file_tensors: gguf?.tensors ?? null,
    tokenizer: t ? { tokens: t.pieces.length, bos: t.bos, eos: t.eos, max_token_length: t.maxTokenLength } : null,
    metadata: gguf?.meta ?? null,
  };
}

// A GGUF's own view: its tensor types (as ggml names them) and its scalar metadata (arrays by length).
function ggufSummary(path: string, bytes: Uint8Array): { meta: Record<string, unknown>; tensors: Array<{ name: string; ne: number[]; type: string }> } {
  const f = parseGguf(path, bytes);
  const meta: Record<string, unknown> = {};
  for (const [k, v] of f.meta) meta[k] = Array.isArray(v) ? `[${v.length} items]` : typeof v === 'bigint' ? v.toString() : v;
  return { meta, tensors: [...f.tensors.values()].map((x) => ({ name: x.name, ne: x.ne, type: ggmlTypeName(x.type) })) };
}

function inspectModelFile(path: string, o: { json?: boolean; tensors?: boolean }): void {
  const m = loadModel(path, { needTokenizer: false });
  const file = m.path;
  const size = statSync(file).size;
  let gguf: ReturnType<typeof ggufSummary> | undefined;
  const bytes = readImageFile(file);
  if (isGguf(bytes)) gguf = ggufSummary(file, bytes);
  if (o.json) {
    process.stdout.write(JSON.stringify(inspectModelJson(path, m, size, gguf), null, 1) + '\n');
    return;
  }
  const c = m.config;
  const rows = modelTensors(m);
  // tensor types as the file stores them (a GGUF's ggml types), with their bytes where known
  const types = new Map<string, { n: number; bytes: number }>();
  for (const r of gguf ? gguf.tensors.map((x) => ({ type: x.type, bytes: 0 })) : rows) {
    const e = types.get(r.type) ?? { n: 0, bytes: 0 };
    e.n++;
    e.bytes += r.bytes;
    types.set(r.type, e);
  }
  const t = m.tokenizer;
  const out = [
    `${path}: a model file (${m.source}), ${fmtBytes(size)} (${size} bytes): not an image; \`edge-flash pack ${path} --board <board>\` makes one`,
    `arch      llama: dim ${c.dim}, hidden ${c.hiddenDim}, ${c.nLayers} layers, ${c.nHeads} heads (${c.nKvHeads} KV, head size ${headDim(c)}), vocab ${c.vocabSize}, seq_len ${c.seqLen}, ` +
      `${c.sharedClassifier ? 'shared' : 'separate'} classifier, rope_theta ${m.ropeTheta}, norm_eps ${m.normEps.toPrecision(3)}`,
    `tensors   ${gguf ? gguf.tensors.length : rows.length}: ${[...types].map(([k, e]) => `${e.n} ${k}${e.bytes ? ` (${fmtBytes(e.bytes)})` : ''}`).join(', ')}`,
    `tokenizer ${t ? `${t.pieces.length} tokens, bos ${t.bos}, eos ${t.eos}, longest ${t.maxTokenLength} bytes` : 'none in the file, none beside it (pass one to run or pack with -z)'}`,
  ];
  if (gguf) out.push(`metadata  ${Object.entries(gguf.meta).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(', ')}`);
  if (o.tensors) {
    out.push('');
    const list = gguf ? gguf.tensors.map((x) => ({ name: x.name, shape: x.ne, type: x.type })) : rows;
    for (const r of list) out.push(`${r.name.padEnd(28)} ${r.type.padEnd(10)} ${r.shape.join(' x ')}`);
  }
  process.stdout.write(out.join('\n') + '\n');
}
