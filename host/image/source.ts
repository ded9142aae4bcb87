// What `plan` and `pack` start from, and how `pack` and `keygen` write: a model file (any format
// host/formats reads) or an existing image (re-planned or re-packed for another board), and output
// written to a temporary file then renamed, so a failure never leaves a half-written file behind.
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { errnoText, UserError } from '../errors.ts';
import { loadModel } from '../formats/index.ts';
import type { Model } from '../model/model.ts';
import { IMAGE_MAGIC } from './format.ts';
import { isImage, loadImageModel } from './model.ts';
import type { Image } from './read.ts';

export interface Source {
  model: Model;
  label: string;       // for the metadata: the file name and what it is
  image?: Image;       // when the source is an image: its formats are the defaults of a re-pack
}

// Whether `path` is a file that starts with the image magic (never told by its name).
export function isImageFile(path: string): boolean {
  if (!existsSync(path) || !statSync(path).isFile()) return false;
  const head = new Uint8Array(4);
  const fd = openSync(path, 'r');
  try {
    readSyncSafe(fd, head);
  } finally {
    closeSync(fd);
  }
  return isImage(head);
}

// Whether the file starts within one byte of the image magic, or is shorter than it and starts like it:
// a damaged image (no model format starts so), whose reader's error says more than a model loader's.
export function nearImageMagic(path: string): boolean {
  if (!existsSync(path) || !statSync(path).isFile()) return false;
  const head = new Uint8Array(4);
  const fd = openSync(path, 'r');
  let n: number;
  try {
    n = readSync(fd, head, 0, 4, 0);
  } finally {
    closeSync(fd);
  }
  const magic = new TextEncoder().encode(IMAGE_MAGIC);
  if (n === 0) return false;
  if (n < 4) return head.subarray(0, n).every((b, i) => b === magic[i]);
  return head.filter((b, i) => b !== magic[i]).length <= 1;
}

export function loadSource(path: string, tokenizer?: string): Source {
  if (isImageFile(path)) {
    if (tokenizer) throw new UserError(`${path} is an edge-flash image: it carries its tokenizer, drop -z`);
    const { model, image } = loadImageModel(path, readFileSync(path));
    // The image's context is the model's seq_len from here on, as far as a board can tell.
    return { model: { ...model, config: { ...model.config, seqLen: image.config.seqLen } }, label: `${basename(path)} (${model.source})`, image };
  }
  const model = loadModel(path, { tokenizer });
  return { model, label: `${basename(path)} (${model.source})` };
}

function readSyncSafe(fd: number, buf: Uint8Array): void {
  if (readSync(fd, buf, 0, buf.length, 0) < buf.length) buf.fill(0);
}

// Writes `bytes` to `path` through `path.tmp-<pid>` + fsync + rename. Refuses to replace an existing
// file unless `force`.
export function writeAtomic(path: string, bytes: Uint8Array, opts: { force?: boolean; mode?: number } = {}): void {
  if (existsSync(path) && !opts.force) throw new UserError(`${path} exists`, 'pass --force to replace it');
  const dir = dirname(path);
  if (!existsSync(dir)) throw new UserError(`cannot write ${path}: no such directory ${dir}`);
  const tmp = join(dir, `.${basename(path)}.tmp-${process.pid}`);
  let fd: number | undefined;
  try {
    fd = openSync(tmp, 'w', opts.mode ?? 0o644);
    let off = 0;
    while (off < bytes.byteLength) off += writeSync(fd, bytes, off, bytes.byteLength - off);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    rmSync(tmp, { force: true });
    if (e instanceof UserError) throw e;
    throw new UserError(`cannot write ${path}: ${errnoText(e)}`);
  }
}
