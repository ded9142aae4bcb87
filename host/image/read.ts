// The one image reader: checks an image in the order a board does (header, board, size, section table,
// CRCs, SHA-256, signature, then contents) and stops at the first failure with an ImageError naming the
// part, what it found and what it needed. Returns views into the bytes, never copies.
import { boardById, boardLabel, boardRuns, type BoardProfile } from '../board/boards.ts';
import { actFormat, formatById, matrixBytes, streamTile, type WeightFormat } from '../quant/formats.ts';
import * as D from '../model/desc.ts';
import { KERNELS } from '../model/dispatch.ts';
import { kvFormat } from '../model/kv.ts';
import type { QuantTensor } from '../quant/tensor.ts';
import { crc32, hex32 } from './crc32.ts';
import {
  ACT_CODES, C, CONFIG_BYTES, CONFIG_FLAG_SHARED, CONFIG_KNOWN_FLAGS, TENSOR_FLAG_RESIDENT,
  DIGEST_BYTES, FLAG_SIGNED, H, HEADER_BYTES, IMAGE_MAGIC, IMAGE_VERSION, KIND, KNOWN_FLAGS, KV_CODES, MAX_SECTIONS, S,
  SECTION_ENTRY_BYTES, SECTION_KINDS, SIGNATURE_TRAILER_BYTES, T, TENSOR_ENTRY_BYTES, TENSOR_NAME_BYTES, W, WEIGHTS_HEADER_BYTES,
  fail, isPow2, sectionKind, sectionName,
} from './format.ts';
import { configProblem, descriptorBytes, descriptorImageTensor, modelTensors, paddedK, paddedM, tensorBytes, type ImageConfig, type TensorRole } from './layout.ts';
import { keyId, sha256, toHex, verifyDigest } from './sign.ts';
import { hashHex } from '../model/tables-hash.ts';
import { EMBEDDING_FORMATS } from '../quant/formats.ts';
import { TABLES_HASH } from '../model/tables.gen.ts';
import { compareBytes, TOKENIZER_MAGIC } from '../model/tokenizer.ts';

export interface ReadOptions {
  board?: BoardProfile;        // the board that will run it: checks the board id and the image's size
  capacity?: number;           // bytes the image may have (default: the board's image partition)
  publicKey?: Uint8Array;      // a trusted Ed25519 key: the image must carry a valid signature by it
  partition?: boolean;         // bytes are a whole flash partition: bytes after the image are ignored
}

export interface SectionInfo {
  kind: number;
  name: string;
  offset: number;
  size: number;
  align: number;
  crc: number;
}

export interface ImageTensor {
  name: string;
  format: WeightFormat;
  m: number;
  k: number;                   // columns as the model has them
  mPadded: number;             // rows as stored: m rounded up to the format's row tile (zero rows)
  kPadded: number;             // columns as stored: k rounded up to whole blocks (zero weights)
  resident: boolean;           // the plan keeps it in linear memory
  scale: number;
  offset: number;              // from the image start
  size: number;
  layer: number | null;
  role: TensorRole;
  data: Uint8Array;            // a view into the image
}

export interface ImageSignature {
  publicKey: string;           // hex of the 32 raw bytes
  keyId: string;
  trusted: boolean;            // the key was given by the caller (otherwise only self-consistent)
}

export interface Image {
  bytes: Uint8Array;           // the image, [0, total_size): what edge.weights_read serves
  version: number;
  boardId: number;
  board?: BoardProfile;
  flags: number;
  totalSize: number;
  headerSize: number;
  sections: SectionInfo[];     // in section-table order
  digest: string;              // SHA-256, hex
  signature: ImageSignature | null;
  app: Uint8Array;
  config: ImageConfig;
  tokenizer: Uint8Array;
  tensors: ImageTensor[];
  descriptor: Uint8Array;      // the descriptor section: model_init's descriptor, image offsets (docs/model.md)
  metadata: Record<string, unknown> | null;
}

const ascii = (b: Uint8Array) => Array.from(b, (x) => (x >= 0x20 && x < 0x7f ? String.fromCharCode(x) : '.')).join('');
const hexBytes = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');

export function readImage(input: Uint8Array, opts: ReadOptions = {}): Image {
  // A plain Uint8Array view: a Node Buffer's slice() is a view, not a copy.
  const bytes = new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  const n = bytes.byteLength;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u16 = (at: number) => v.getUint16(at, true);
  const u32 = (at: number) => v.getUint32(at, true);

  // 1. Fixed header.
  if (n < HEADER_BYTES) fail('truncated', `truncated: the image is ${n} bytes, shorter than the ${HEADER_BYTES}-byte header`);
  const magic = bytes.subarray(0, 4);
  if (ascii(magic) !== IMAGE_MAGIC) {
    fail('magic', `not an edge-flash image: magic is ${hexBytes(magic)} ('${ascii(magic)}'), expected 45 46 49 4d ('${IMAGE_MAGIC}')`);
  }
  const version = u16(H.version);
  if (version === 0) fail('version', `header: format version 0 is not a valid version (this edge-flash reads version ${IMAGE_VERSION})`);
  if (version < IMAGE_VERSION) {
    fail('version', `header: format version ${version} is an older edge-flash's image (this edge-flash reads version ${IMAGE_VERSION}, which carries the runtime's descriptor): pack it again`, 'pack the model again with this edge-flash');
  }
  if (version > IMAGE_VERSION) {
    fail('future_version', `header: format version ${version} is newer than this edge-flash reads (version ${IMAGE_VERSION})`, 'update edge-flash, or pack the image again with this version');
  }
  const count = u16(H.sectionCount);
  if (count < 1 || count > MAX_SECTIONS) fail('header', `header: section count is ${count}, expected 1..${MAX_SECTIONS}`);
  const headerSize = u16(H.headerSize);
  const wantHeader = HEADER_BYTES + SECTION_ENTRY_BYTES * count;
  if (headerSize !== wantHeader) fail('header', `header: header_size is ${headerSize}, expected ${wantHeader} for ${count} sections`);
  if (u16(H.reserved) !== 0) fail('header', `header: reserved field at byte ${H.reserved} is ${u16(H.reserved)}, expected 0`);
  const flags = u16(H.flags);
  if (flags & ~KNOWN_FLAGS) fail('header', `header: unknown flags 0x${(flags & ~KNOWN_FLAGS).toString(16)} (this edge-flash knows 0x${KNOWN_FLAGS.toString(16)}: signed)`);
  if (n < headerSize) fail('truncated', `truncated: the image is ${n} bytes, shorter than its ${headerSize}-byte header and section table`);
  const storedCrc = u32(H.crc);
  const hdr = Uint8Array.from(bytes.subarray(0, headerSize)); // a copy: the CRC field is zeroed in it
  new DataView(hdr.buffer).setUint32(H.crc, 0, true);
  const headerCrc = crc32(hdr);
  if (headerCrc !== storedCrc) fail('header_crc', `header: CRC-32 is ${hex32(headerCrc)}, the header says ${hex32(storedCrc)} (header or section table corrupt)`);

  // 2. Board and size.
  const boardId = u16(H.board);
  if (opts.board && !boardRuns(opts.board, boardId)) {
    const also = opts.board.accepts.length ? ` (it also runs images for ${opts.board.accepts.join(', ')})` : '';
    fail('wrong_board', `wrong board: the image is for ${boardLabel(boardId)}, this board is ${opts.board.name} (id ${opts.board.id})${also}`,
      'pack the model again with --board ' + opts.board.name);
  }
  const signed = (flags & FLAG_SIGNED) !== 0;
  const trailer = DIGEST_BYTES + (signed ? SIGNATURE_TRAILER_BYTES : 0);
  const totalSize = u32(H.totalSize);
  if (totalSize < headerSize + trailer) fail('header', `header: total_size is ${totalSize}, smaller than the header and trailer (${headerSize + trailer} bytes)`);
  const capacity = opts.capacity ?? opts.board?.imageCapacity;
  if (capacity !== undefined && totalSize > capacity) {
    const where = opts.board?.flash.imagePartition ? `a model slot of board ${opts.board.name} (two share partition '${opts.board.flash.imagePartition}')` : opts.board ? `board ${opts.board.name}` : 'the target';
    fail('oversized', `oversized: the image is ${totalSize} bytes, ${where} holds ${capacity}`);
  }
  if (n < totalSize) fail('truncated', `truncated: the image is ${n} bytes, its header says ${totalSize}`);
  if (n > totalSize && !opts.partition) fail('trailing', `trailing data: ${n - totalSize} bytes follow the image's end at byte ${totalSize}`);
  const digestOffset = totalSize - trailer;

  // 3. Section table: kinds, alignment, bounds, overlaps, presence.
  const sections: SectionInfo[] = [];
  for (let i = 0; i < count; i++) {
    const e = HEADER_BYTES + i * SECTION_ENTRY_BYTES;
    const s: SectionInfo = { kind: u32(e + S.kind), name: '', offset: u32(e + S.offset), size: u32(e + S.size), align: u32(e + S.align), crc: u32(e + S.crc) };
    const k = sectionKind(s.kind);
    if (!k) fail('section_kind', `section ${i}: unknown kind ${s.kind} (version ${IMAGE_VERSION} knows ${SECTION_KINDS.map((x) => `${x.kind} ${x.name}`).join(', ')})`);
    s.name = k.name;
    if (sections.some((x) => x.kind === s.kind)) fail('section_duplicate', `section ${i}: a second '${k.name}' section`);
    if (!isPow2(s.align) || s.align > 65536 || s.align < k.minAlign) {
      fail('section_align', `section '${k.name}': alignment ${s.align}, expected a power of two from ${k.minAlign} to 65536`);
    }
    if (s.offset % s.align !== 0) fail('misaligned', `section '${k.name}' starts at byte ${s.offset}, not a multiple of its alignment ${s.align}`);
    if (s.offset < headerSize || s.offset + s.size > digestOffset) {
      fail('section_bounds', `section '${k.name}' spans [${s.offset}, ${s.offset + s.size}), outside the payload [${headerSize}, ${digestOffset})`);
    }
    sections.push(s);
  }
  const byOffset = [...sections].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < byOffset.length; i++) {
    const a = byOffset[i - 1], b = byOffset[i];
    if (b.offset < a.offset + a.size) {
      fail('overlap', `sections '${a.name}' [${a.offset}, ${a.offset + a.size}) and '${b.name}' [${b.offset}, ${b.offset + b.size}) overlap`);
    }
  }
  for (const k of SECTION_KINDS) {
    if (k.required && !sections.some((s) => s.kind === k.kind)) fail('section_missing', `no '${k.name}' section (kind ${k.kind}), which every image needs`);
  }

  // 4. Integrity: section CRCs, the digest, the signature.
  for (const s of sections) {
    const got = crc32(bytes.subarray(s.offset, s.offset + s.size));
    if (got !== s.crc) fail('section_crc', `section '${s.name}': CRC-32 is ${hex32(got)}, the section table says ${hex32(s.crc)} (section corrupt)`);
  }
  const digest = sha256(bytes.subarray(0, digestOffset));
  const storedDigest = bytes.subarray(digestOffset, digestOffset + DIGEST_BYTES);
  if (toHex(digest) !== toHex(storedDigest)) {
    fail('sha256', `SHA-256 of bytes [0, ${digestOffset}) is ${toHex(digest)}, the image says ${toHex(storedDigest)}`);
  }
  let signature: ImageSignature | null = null;
  if (signed) {
    const pub = bytes.subarray(digestOffset + DIGEST_BYTES, digestOffset + DIGEST_BYTES + 32);
    const sig = bytes.subarray(digestOffset + DIGEST_BYTES + 32, digestOffset + trailer);
    if (!verifyDigest(digest, sig, pub)) fail('signature', `signature: the Ed25519 signature does not verify with the image's key ${keyId(pub)}`);
    if (opts.publicKey && toHex(pub) !== toHex(opts.publicKey)) {
      fail('signature', `signature: signed by key ${keyId(pub)}, expected key ${keyId(opts.publicKey)}`);
    }
    signature = { publicKey: toHex(pub), keyId: keyId(pub), trusted: !!opts.publicKey };
  } else if (opts.publicKey) {
    fail('signature', `signature: the image is not signed; key ${keyId(opts.publicKey)} is required`);
  }

  // 5. Contents.
  const sec = (kind: number) => sections.find((s) => s.kind === kind);
  const body = (s: SectionInfo) => bytes.subarray(s.offset, s.offset + s.size);
  const app = body(sec(KIND.app)!);
  if (app.byteLength < 8 || app[0] !== 0 || app[1] !== 0x61 || app[2] !== 0x73 || app[3] !== 0x6d || app[4] !== 1 || app[5] || app[6] || app[7]) {
    fail('app', `section 'app': not a WebAssembly version 1 module (starts ${hexBytes(app.subarray(0, 8))}, expected 00 61 73 6d 01 00 00 00)`);
  }
  const config = readConfig(body(sec(KIND.config)!));
  const tokenizer = body(sec(KIND.tokenizer)!);
  checkTokenizer(tokenizer, config.vocabSize);
  const ws = sec(KIND.weights)!;
  const tensors = readTensors(bytes, ws, config);
  const descriptor = body(sec(KIND.descriptor)!);
  checkDescriptor(descriptor, config, tensors, sec(KIND.tokenizer)!);
  let metadata: Record<string, unknown> | null = null;
  const ms = sec(KIND.metadata);
  if (ms) metadata = readMetadata(body(ms));
  if (metadata && 'tables' in metadata && metadata.tables !== hashHex(TABLES_HASH)) {
    fail('metadata', `the image's app was built from tables ${String(metadata.tables)}, this edge-flash has ${hashHex(TABLES_HASH)}: pack it again with this edge-flash`);
  }

  return {
    bytes: bytes.subarray(0, totalSize), version, boardId, board: boardById(boardId), flags, totalSize, headerSize, sections, digest: toHex(digest), signature,
    app, config, tokenizer, tensors, descriptor, metadata,
  };
}

export function readConfig(b: Uint8Array): ImageConfig {
  if (b.byteLength !== CONFIG_BYTES) fail('config', `section 'config' is ${b.byteLength} bytes, expected ${CONFIG_BYTES}`);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const u32 = (at: number) => v.getUint32(at, true);
  const flags = u32(C.flags);
  if (flags & ~CONFIG_KNOWN_FLAGS) fail('config', `config: unknown flags 0x${(flags & ~CONFIG_KNOWN_FLAGS).toString(16)}`);
  const kv = v.getUint8(C.kv), act = v.getUint8(C.act);
  if (kv >= KV_CODES.length) fail('config', `config: kv_format is ${kv}, expected 0..${KV_CODES.length - 1} (${KV_CODES.join(', ')})`);
  if (act >= ACT_CODES.length) fail('config', `config: act_format is ${act}, expected 0..${ACT_CODES.length - 1} (${ACT_CODES.join(', ')})`);
  if (b.subarray(C.reservedTail).some((x) => x !== 0)) fail('config', 'config: reserved bytes are not zero');
  const c: ImageConfig = {
    dim: u32(C.dim), hiddenDim: u32(C.hiddenDim), nLayers: u32(C.nLayers), nHeads: u32(C.nHeads), nKvHeads: u32(C.nKvHeads),
    vocabSize: u32(C.vocabSize), seqLen: u32(C.seqLen), sharedClassifier: (flags & CONFIG_FLAG_SHARED) !== 0,
    ctx: u32(C.ctx), kv: KV_CODES[kv], act: ACT_CODES[act], normEps: v.getFloat32(C.normEps, true), ropeTheta: v.getFloat32(C.ropeTheta, true),
    plannedLinear: u32(C.plannedLinear), linearLimit: u32(C.linearLimit), batch: v.getUint16(C.batch, true), textBytes: u32(C.textBytes),
  };
  const problem = configProblem(c);
  if (problem) fail('config', `config: ${problem}`);
  return c;
}

// The app's tokenizer (EFTK, assembly/model/tokenizer.ts reads it as it is): every field the app's
// BPE relies on is checked, so a board's tokenizer never reads past the section or loops.
export function checkTokenizer(b: Uint8Array, vocabSize: number): void {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const i32 = (at: number) => v.getInt32(at, true), u32 = (at: number) => v.getUint32(at, true);
  if (b.byteLength < 32) fail('tokenizer', `section 'tokenizer' is ${b.byteLength} bytes, shorter than its 32-byte header`);
  if (u32(0) !== TOKENIZER_MAGIC) fail('tokenizer', `tokenizer: magic is ${hexBytes(b.subarray(0, 4))}, expected 45 46 54 4b ('EFTK')`);
  if (u32(4) !== 1) fail('tokenizer', `tokenizer: version ${u32(4)}, expected 1`);
  const vocab = u32(8), maxLen = u32(12), bos = i32(16), eos = i32(20), dummy = i32(24);
  if (vocab !== vocabSize) fail('tokenizer', `tokenizer: ${vocab} tokens, the config declares ${vocabSize}`);
  if (maxLen < 1 || maxLen > 65536) fail('tokenizer', `tokenizer: max_token_length is ${maxLen}, expected 1..65536`);
  for (const [name, id] of [['bos', bos], ['eos', eos]] as const) {
    if (id < 0 || id >= vocab) fail('tokenizer', `tokenizer: ${name} is ${id}, expected 0..${vocab - 1}`);
  }
  if (dummy < -1 || dummy >= vocab) fail('tokenizer', `tokenizer: the dummy-prefix id is ${dummy}, expected -1..${vocab - 1}`);
  if (u32(28) !== 0) fail('tokenizer', 'tokenizer: reserved header word is not zero');
  const offsets = 32 + 4 * vocab, sorted = offsets + 4 * (vocab + 1), bytes = sorted + 4 * vocab, pieces = bytes + 4 * 256;
  if (b.byteLength < pieces) fail('tokenizer', `tokenizer: ${b.byteLength} bytes, its tables for ${vocab} tokens need ${pieces}`);
  for (let i = 0; i < vocab; i++) if (Number.isNaN(v.getFloat32(32 + 4 * i, true))) fail('tokenizer', `tokenizer: token ${i} has a NaN score`);
  if (u32(offsets) !== 0) fail('tokenizer', `tokenizer: the first piece starts at ${u32(offsets)}, expected 0`);
  for (let i = 0; i < vocab; i++) {
    const len = u32(offsets + 4 * (i + 1)) - u32(offsets + 4 * i);
    if (len < 0 || len > maxLen) fail('tokenizer', `tokenizer: token ${i} has length ${len}, expected 0..${maxLen} (max_token_length)`);
  }
  const total = u32(offsets + 4 * vocab);
  if (pieces + total !== b.byteLength) fail('tokenizer', `tokenizer: the pieces end at byte ${pieces + total}, the section has ${b.byteLength}`);
  const piece = (id: number) => b.subarray(pieces + u32(offsets + 4 * id), pieces + u32(offsets + 4 * (id + 1)));
  if (b.subarray(pieces).includes(0)) fail('tokenizer', 'tokenizer: a piece holds a NUL byte (pieces are stored up to their first NUL)');
  const seen = new Uint8Array(vocab);
  let prev: Uint8Array | null = null;
  for (let i = 0; i < vocab; i++) {
    const id = u32(sorted + 4 * i);
    if (id >= vocab || seen[id]) fail('tokenizer', `tokenizer: sorted entry ${i} is ${id}, not a token id not yet listed (expected a permutation of 0..${vocab - 1})`);
    seen[id] = 1;
    if (prev && compareBytes(prev, piece(id)) > 0) fail('tokenizer', `tokenizer: sorted entry ${i} (token ${id}) is out of byte order`);
    prev = piece(id);
  }
  for (let i = 0; i < 256; i++) if (u32(bytes + 4 * i) >= vocab) fail('tokenizer', `tokenizer: byte ${i}'s fallback token is ${u32(bytes + 4 * i)}, expected 0..${vocab - 1}`);
}

function readTensors(bytes: Uint8Array, ws: SectionInfo, config: ImageConfig): ImageTensor[] {
  const v = new DataView(bytes.buffer, bytes.byteOffset + ws.offset, ws.size);
  if (ws.size < WEIGHTS_HEADER_BYTES) fail('tensor', `section 'weights' is ${ws.size} bytes, shorter than its ${WEIGHTS_HEADER_BYTES}-byte directory header`);
  const specs = modelTensors(config);
  const count = v.getUint32(W.count, true);
  if (count !== specs.length) fail('tensor', `weights: the directory lists ${count} tensors, the config needs ${specs.length}`);
  const align = v.getUint32(W.align, true);
  if (!isPow2(align) || align < 16 || align > ws.align) fail('tensor', `weights: tensor alignment ${align}, expected a power of two from 16 to the section's alignment ${ws.align}`);
  const dataOffset = v.getUint32(W.dataOffset, true);
  const dirEnd = WEIGHTS_HEADER_BYTES + TENSOR_ENTRY_BYTES * count;
  if (dataOffset < dirEnd || dataOffset > ws.size) fail('tensor', `weights: data_offset is ${dataOffset}, expected ${dirEnd}..${ws.size} (after the directory, inside the section)`);
  if (v.getUint32(W.reserved, true) !== 0) fail('tensor', 'weights: reserved directory field is not zero');
  const out: ImageTensor[] = [];
  let prevEnd = dataOffset;
  for (let i = 0; i < count; i++) {
    const e = WEIGHTS_HEADER_BYTES + i * TENSOR_ENTRY_BYTES;
    const nameBytes = new Uint8Array(v.buffer, v.byteOffset + e, TENSOR_NAME_BYTES);
    const nul = nameBytes.indexOf(0);
    if (nul < 0 || nameBytes.subarray(nul).some((x) => x !== 0)) fail('tensor', `weights: tensor ${i}'s name is not NUL-terminated and NUL-padded`);
    const name = ascii(nameBytes.subarray(0, nul));
    const spec = specs[i];
    if (name !== spec.name) fail('tensor', `weights: tensor ${i} is named '${name}', expected '${spec.name}'`);
    const fid = v.getUint16(e + T.format, true);
    const format = formatById(fid);
    if (!format) fail('tensor', `tensor '${name}': unknown format id ${fid}`);
    if (format.retired) fail('tensor', `tensor '${name}': format ${format.name} (id ${fid}) is retired: ${format.retired}`);
    if (spec.role === 'norm' && format.name !== 'f32') fail('tensor', `tensor '${name}': a norm weight in ${format.name}, expected f32`);
    if (spec.role === 'embedding' && !format.embedding) fail('tensor', `tensor '${name}': an embedding in ${format.name}, expected ${EMBEDDING_FORMATS.map((f) => f.name).join(' or ')} (the runtime reads one row a token)`);
    const m = v.getUint32(e + T.rows, true), k = v.getUint32(e + T.cols, true);
    if (m !== spec.m || k !== spec.k) fail('tensor', `tensor '${name}' is ${m}x${k}, the config needs ${spec.m}x${spec.k}`);
    if (spec.role === 'embedding' && k % format.block !== 0) fail('tensor', `tensor '${name}': ${k} columns are not a multiple of ${format.name}'s block ${format.block} (embeddings are not padded)`);
    const scale = v.getFloat32(e + T.scale, true);
    if (!Number.isFinite(scale)) fail('tensor', `tensor '${name}': tensor scale is ${scale}, expected a finite number`);
    const tflags = v.getUint16(e + T.flags, true);
    if (tflags & ~TENSOR_FLAG_RESIDENT) fail('tensor', `tensor '${name}': unknown flags 0x${(tflags & ~TENSOR_FLAG_RESIDENT).toString(16)}`);
    if (v.getUint32(e + T.reserved, true) !== 0 || v.getUint32(e + T.reserved + 4, true) !== 0) {
      fail('tensor', `tensor '${name}': reserved bytes are not zero`);
    }
    const off = v.getUint32(e + T.offset, true), size = v.getUint32(e + T.size, true);
    const want = tensorBytes(format, m, k);
    if (size !== want) fail('tensor', `tensor '${name}': ${size} bytes, a ${m}x${k} ${format.name} matrix (stored as ${paddedM(format, m)}x${paddedK(format, k)}) has ${want}`);
    if (off % align !== 0) fail('misaligned', `tensor '${name}' starts at byte ${off} of section 'weights', not a multiple of the tensor alignment ${align}`);
    if (off < prevEnd || off + size > ws.size) {
      fail('tensor', `tensor '${name}' spans [${off}, ${off + size}) of section 'weights', expected within [${prevEnd}, ${ws.size}) after the tensor before it`);
    }
    prevEnd = off + size;
    const abs = ws.offset + off;
    out.push({ name, format, m, k, mPadded: paddedM(format, m), kPadded: paddedK(format, k), resident: (tflags & TENSOR_FLAG_RESIDENT) !== 0, scale, offset: abs, size, layer: spec.layer, role: spec.role, data: bytes.subarray(abs, abs + size) });
  }
  return out;
}

const f32bits = (x: number) => new Uint32Array(new Float32Array([x]).buffer)[0];

// The descriptor section is what model_init reads: its header agrees with the config and the
// tokenizer section, and every entry describes the image tensor it reads (format, stored shape, image
// range, row bytes and tile, a kernel of the table for its format, the residency the directory
// records), so a board can hand it to model_init as it is.
function checkDescriptor(b: Uint8Array, c: ImageConfig, tensors: ImageTensor[], tok: SectionInfo): void {
  const need = descriptorBytes(c);
  if (b.byteLength !== need) fail('descriptor', `section 'descriptor' is ${b.byteLength} bytes, a model of ${c.nLayers} layers needs ${need}`);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const w = (i: number) => v.getInt32(4 * i, true);
  const u = (i: number) => v.getUint32(4 * i, true);
  if (u(D.D_MAGIC) !== D.DESC_MAGIC) fail('descriptor', `descriptor: magic is 0x${u(D.D_MAGIC).toString(16)}, expected 0x${D.DESC_MAGIC.toString(16)} ('EFDM')`);
  if (w(D.D_VERSION) !== D.DESC_VERSION) fail('descriptor', `descriptor: version ${w(D.D_VERSION)}, expected ${D.DESC_VERSION}`);
  const n = need / 4 - D.D_TENSORS;
  if (w(D.D_N_TENSORS) * D.T_WORDS !== n) fail('descriptor', `descriptor: ${w(D.D_N_TENSORS)} tensor entries, a model of ${c.nLayers} layers has ${n / D.T_WORDS}`);
  const same: Array<[string, number, number]> = [
    ['dim', D.D_DIM, c.dim], ['hidden_dim', D.D_HIDDEN, c.hiddenDim], ['n_layers', D.D_LAYERS, c.nLayers], ['n_heads', D.D_HEADS, c.nHeads],
    ['n_kv_heads', D.D_KV_HEADS, c.nKvHeads], ['vocab_size', D.D_VOCAB, c.vocabSize], ['seq_len', D.D_SEQ, c.ctx],
    ['kv_format', D.D_KV_FORMAT, kvFormat(c.kv)!.id],
  ];
  for (const [name, at, want] of same) if (w(at) !== want) fail('descriptor', `descriptor: ${name} is ${w(at)}, the config says ${want}${name === 'seq_len' ? ' (ctx)' : ''}`);
  if (u(D.D_ROPE_THETA) !== f32bits(c.ropeTheta) || u(D.D_NORM_EPS) !== f32bits(c.normEps)) fail('descriptor', 'descriptor: rope_theta or norm_eps differs from the config');
  const batch = w(D.D_BATCH);
  if (batch < 1 || batch > c.ctx || (c.batch > 0 && batch !== c.batch)) fail('descriptor', `descriptor: batch is ${batch}, expected ${c.batch > 0 ? c.batch : `1..${c.ctx}`} (the config's)`);
  if (w(D.D_SAMPLER) !== 0 && w(D.D_SAMPLER) !== 1) fail('descriptor', `descriptor: sampler is ${w(D.D_SAMPLER)}, expected 0 or 1`);
  const keeps: Array<[string, number, number]> = [['keep_wo', D.D_KEEP_WO, c.dim], ['keep_w2', D.D_KEEP_W2, c.hiddenDim]];
  for (const [name, at, most] of keeps) if (w(at) < 0 || w(at) > most) fail('descriptor', `descriptor: ${name} is ${w(at)}, expected 0..${most}`);
  for (let i = D.D_KEEP_W2 + 1; i < D.D_TENSORS; i++) if (w(i) !== 0) fail('descriptor', `descriptor: reserved word ${i} is not zero`);
  // The app copies the tokenizer section and keeps a text_bytes prompt buffer, or (all three 0) keeps
  // no tokenizer: a host then tokenizes (ModelRuntime.create for a model run by token ids).
  const none = u(D.D_TOK_OFFSET) === 0 && u(D.D_TOK_BYTES) === 0 && w(D.D_TEXT_BYTES) === 0;
  if (!none && (u(D.D_TOK_OFFSET) !== tok.offset || u(D.D_TOK_BYTES) !== tok.size)) {
    fail('descriptor_tokenizer', `descriptor: the tokenizer is at [${u(D.D_TOK_OFFSET)}, +${u(D.D_TOK_BYTES)}), the tokenizer section at [${tok.offset}, +${tok.size})`);
  }
  if (!none && w(D.D_TEXT_BYTES) !== c.textBytes) fail('descriptor_tokenizer', `descriptor: text_bytes is ${w(D.D_TEXT_BYTES)}, the config says ${c.textBytes}`);
  const stage = w(D.D_STAGE);
  const resident = new Uint8Array(tensors.length);
  for (let i = 0; i < n / D.T_WORDS; i++) {
    const e = D.D_TENSORS + i * D.T_WORDS;
    const t = tensors[descriptorImageTensor(c, i)];
    const what = `descriptor entry ${i} (${t.name})`;
    const vector = i === D.TENSOR_RMS_FINAL || (i >= D.TENSOR_LAYER0 && [D.L_RMS_ATT, D.L_RMS_FFN].includes((i - D.TENSOR_LAYER0) % D.PER_LAYER));
    const matrix = i !== D.TENSOR_EMBEDDING && !vector;
    if (w(e + D.T_FORMAT) !== t.format.id) fail('descriptor_tensor', `${what}: format id ${w(e + D.T_FORMAT)}, the tensor is ${t.format.name} (${t.format.id})`);
    if (w(e + D.T_M) !== t.mPadded || w(e + D.T_K) !== t.kPadded) fail('descriptor_tensor', `${what}: ${w(e + D.T_M)}x${w(e + D.T_K)}, the tensor is stored as ${t.mPadded}x${t.kPadded}`);
    if (u(e + D.T_OFFSET) !== t.offset || u(e + D.T_BYTES) !== t.size) {
      fail('descriptor_tensor', `${what}: image bytes [${u(e + D.T_OFFSET)}, +${u(e + D.T_BYTES)}), the tensor is at [${t.offset}, +${t.size})`);
    }
    if (w(e + D.T_PTR) !== 0) fail('descriptor_tensor', `${what}: pointer is ${u(e + D.T_PTR)}, expected 0 (model_init sets it)`);
    if (u(e + D.T_SCALE) !== f32bits(t.scale)) fail('descriptor_tensor', `${what}: tensor scale differs from the directory's ${t.scale}`);
    const rowBytes = matrixBytes(t.format, 1, t.kPadded), tile = matrix ? streamTile(t.format) : 1;
    if (w(e + D.T_ROW_BYTES) !== rowBytes || w(e + D.T_ROW_TILE) !== tile) {
      fail('descriptor_tensor', `${what}: rows of ${w(e + D.T_ROW_BYTES)} bytes in tiles of ${w(e + D.T_ROW_TILE)}, expected ${rowBytes} and ${tile}`);
    }
    const kid = w(e + D.T_KERNEL), qmax = w(e + D.T_QMAX);
    if (matrix) {
      const k = KERNELS.find((x) => x.id === kid);
      if (!k) fail('descriptor_kernel', `${what}: kernel id ${kid} is not a kernel of this edge-flash (test/fixtures/kernel-ids.txt)`);
      if (k.format.id !== t.format.id) fail('descriptor_kernel', `${what}: kernel ${kid} (${k.exportName}) is for ${k.format.name}, the tensor is ${t.format.name}`);
      if (qmax !== actFormat(k.act).qmax) fail('descriptor_kernel', `${what}: activation qmax ${qmax}, kernel ${k.exportName} takes ${actFormat(k.act).qmax}`);
    } else if (kid !== -1 || qmax !== 0) fail('descriptor_kernel', `${what}: kernel ${kid} and qmax ${qmax}, expected -1 and 0 (no matmul)`);
    const res = w(e + D.T_RESIDENT);
    if (res !== 0 && res !== 1) fail('descriptor_resident', `${what}: resident is ${res}, expected 0 or 1`);
    if (vector && res === 0) fail('descriptor_resident', `${what}: a norm weight streamed (the runtime keeps them resident)`);
    if (res === 0) {
      const needStage = matrix ? rowBytes * tile : t.format.family === 'float' ? 0 : rowBytes; // f32 rows (f32p8: floats) are read straight into the activations
      if (stage < needStage) fail('descriptor_resident', `${what} streams through a ${stage}-byte staging buffer, one ${matrix ? 'row tile' : 'row'} needs ${needStage}`);
    }
    resident[descriptorImageTensor(c, i)] |= res;
  }
  tensors.forEach((t, j) => {
    if (t.resident !== (resident[j] === 1)) fail('descriptor_resident', `tensor '${t.name}' is ${t.resident ? 'resident' : 'streamed'} in the directory, ${t.resident ? 'streamed' : 'resident'} in the descriptor`);
  });
}

function readMetadata(b: Uint8Array): Record<string, unknown> {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(b);
  } catch {
    fail('metadata', `section 'metadata' is not valid UTF-8`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    fail('metadata', `section 'metadata' is not a JSON text`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('metadata', `section 'metadata' is JSON but not an object`);
  return value as Record<string, unknown>;
}

// An image tensor as the kernels take it (host/model/model.ts Matrix): the padded shape, so the
// activations are zero-padded from t.k to t.kPadded and outputs past t.m are dropped.
export function quantTensor(t: ImageTensor): QuantTensor {
  return { format: t.format, m: t.mPadded, k: t.kPadded, data: t.data, scale: t.scale };
}

// The descriptor section's words (a copy: 4-byte aligned).
export function descriptorWords(img: Image): Int32Array {
  return new Int32Array(Uint8Array.from(img.descriptor).buffer);
}

export function sectionOf(img: Image, name: string): SectionInfo | undefined {
  return img.sections.find((s) => s.name === name);
}
export { sectionName };
