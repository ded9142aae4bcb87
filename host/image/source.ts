// What `plan` and `pack` start from, and how `pack` and `keygen` write: a model file (any format
// host/formats reads) or an existing image (re-planned or re-packed for another board), and output
// written to a temporary file then renamed, so a failure never leaves a half-written file behind.
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { UserError } from '../errors.ts';
import { loadModel } from '../formats/index.ts';
import type { Model } from '../model/model.ts';
import { isImage, loadImageModel } from './model.ts';

export interface Source {
  model: Model;
  label: string;       // for the metadata: the file name and what it is
}

export function loadSource(path: string, tokenizer?: string): Source {
  if (existsSync(path) && statSync(path).isFile()) {
    const head = new Uint8Array(4);
    const fd = openSync(path, 'r');
    try {
      readSyncSafe(fd, head);
    } finally {
      closeSync(fd);
    }
    if (isImage(head)) {
      if (tokenizer) throw new UserError(`${path} is an edge-flash image: it carries its tokenizer, drop -z`);
      const { model, image } = loadImageModel(path, readFileSync(path));
      // The image's context is the model's seq_len from here on, as far as a board can tell.
      return { model: { ...model, config: { ...model.config, seqLen: image.config.seqLen } }, label: `${basename(path)} (${model.source})` };
    }
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
    throw new UserError(`cannot write ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}
