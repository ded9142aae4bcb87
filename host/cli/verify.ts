// `edge-flash verify`: every check a board makes (header, board, size, section table, CRCs, SHA-256,
// signature, contents). Exit 0 with one line, or exit 2 with one line naming the first failing part.
import type { Command } from 'commander';
import { boardByName } from '../board/boards.ts';
import { UserError } from '../errors.ts';
import { imageToModel } from '../image/model.ts';
import { readImage } from '../image/read.ts';
import { loadPublicKey } from '../image/sign.ts';
import { planImageOn, shortfall } from './fit.ts';
import { fileSha256, readImageFile, refuseModelFile } from './inspect.ts';

export function registerVerify(program: Command): void {
  program
    .command('verify')
    .description('check an image as a board would; exit 0, or one line naming the first failing part')
    .argument('<image>', 'an edge-flash image')
    .option('--board <name>', 'also check that this board runs it and that it fits there, as `plan` and `pack` check (memory, heap, flash)')
    .option('--key <public key>', 'require a signature by this Ed25519 public key (PEM, or 64 hex digits)')
    .action((path: string, o) => {
      const board = o.board ? boardByName(o.board) : undefined;
      const publicKey = o.key ? loadPublicKey(o.key) : undefined;
      const bytes = readImageFile(path);
      refuseModelFile(path, bytes);
      try {
        const img = readImage(bytes, { board, publicKey });
        checkAppModule(img.app);
        let unchecked = '';
        if (board) {
          const plan = planImageOn(img, imageToModel(img, path), board);
          if ('unplannable' in plan) unchecked = ` (fit not checked: ${plan.unplannable})`;
          else if (!plan.fits) throw new UserError(`does not fit ${board.name}: ${shortfall(plan)}`, `see \`edge-flash plan ${path} --board ${board.name}\``);
        }
        const sig = img.signature ? `, signature by ${img.signature.keyId}${img.signature.trusted ? ' (the key given)' : ' (key not checked: pass --key)'}` : ', unsigned';
        process.stdout.write(`${path}: ok: ${img.sections.length} section CRCs, digest ${img.digest.slice(0, 16)}, file SHA-256 ${fileSha256(bytes).slice(0, 16)}${sig}, for ${img.board?.name ?? `board id ${img.boardId}`}${board ? `, runs on ${board.name}${unchecked}` : ''}\n`);
      } catch (e) {
        if (e instanceof UserError) throw new UserError(`${path}: ${e.message}`, e.hint);
        throw e;
      }
    });
}

// A board loads the app as a WebAssembly module: its structure must validate (whatever the CRCs say).
function checkAppModule(app: Uint8Array): void {
  try {
    new WebAssembly.Module(app as Uint8Array<ArrayBuffer>);
  } catch (e) {
    throw new UserError(`app section: expected a valid WebAssembly module, found one that does not validate (${(e as Error).message.replace(/^WebAssembly\.Module\(\): /, '')})`);
  }
}
