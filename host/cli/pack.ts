// `edge-flash pack`: a model into a flash image for a board. Refuses an image that will not fit
// (the planner's table on stderr, one error line) unless --force; writes through a temporary file.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { choiceFlag, intFlag, topkFlag } from './flags.ts';
import { UserError } from '../errors.ts';
import { alternativesThatFit, ENGINES, fmtBytes, formatPlan, largestContext, planBoard } from '../image/plan.ts';
import { convertModel, deviceApp, DoesNotFitError, packModel, planRequest } from '../image/pack.ts';
import { chooseFormats, type Wanted } from '../image/choose.ts';
import type { Model } from '../model/model.ts';
import type { ImageChoices } from '../image/options.ts';
import { warn } from '../log.ts';
import { checkAgainstModel, imageChoices, withImageFormats } from '../image/options.ts';
import { loadPrivateKey, keyId, rawPublicKey } from '../image/sign.ts';
import { loadSource, writeAtomic } from '../image/source.ts';
import { log, progress } from '../log.ts';
import { packageVersion } from '../version.ts';
import { fileSha256 } from './inspect.ts';

// The creation time: now, SOURCE_DATE_EPOCH when set (reproducible builds), none with --no-timestamp.
export function creationTime(timestamp: boolean, env = process.env): Date | null {
  if (!timestamp) return null;
  const sde = env.SOURCE_DATE_EPOCH;
  if (sde !== undefined && sde !== '') {
    if (!/^\d+$/.test(sde)) throw new UserError(`SOURCE_DATE_EPOCH must be whole seconds since 1970, got '${sde}'`);
    return new Date(Number(sde) * 1000);
  }
  return new Date();
}

export function registerPack(program: Command): void {
  program
    .command('pack')
    .description('pack a model, its tokenizer and the device app into a verified flash image for a board; refuses one that does not fit, and with no --quant or --kv picks the formats and context that do')
    .argument('<model>', 'a model file (llama2.c .bin, GGUF, safetensors) or an edge-flash image to re-pack')
    .requiredOption('--board <name>', 'target board (see `edge-flash boards`)')
    .requiredOption('-o, --output <image>', 'the image file to write')
    .option('-z <path>', 'tokenizer.bin (default: the model\'s own, or tokenizer.bin beside it)')
    .option('--quant <format>', 'layer matrices in this format: ternary, tb1, tq2, q8_0, i4g32, ... (default: chosen by the planner, docs/planner.md)')
    .option('--embed <format>', 'token embedding (and an unshared classifier): f32 or q8_0 (default: q8_0 under a sub-8-bit --quant)')
    .option('--kv <format>', 'KV cache: f32, int8, int4, int3 (default: chosen as pack chooses, docs/planner.md; an image\'s own)')
    .option('--act <format>', 'activations before quantized matmuls: i8 (BitNet b1.58), i4, or a4.8 (i4 into wq, wk, wv, w1, w3; the inputs of wo and w2 top-K sparsified, then i8) (default: i8, or the image\'s own)')
    .option('--topk <fraction>', 'a4.8: fraction of the wo and w2 inputs kept, in (0, 1]; 1: no sparsification (default: 0.5 under --act a4.8, else 1)', topkFlag('--topk'))
    .option('--ctx <n>', 'context (KV cache length) to plan for (default: the largest that fits, up to the model\'s seq_len)', intFlag('--ctx', { min: 1, max: 1 << 24 }))
    .option('--firmware <name>', 'plan for this firmware of the board (its heap figures, boards/<board>.json firmwares): esp32c3 has bare-metal (default) and esp-idf; the ESP32 and ESP32-S3 esp-idf')
    .option('--engine <name>', 'what runs the image on the board: wasm3 (default) or aot (the firmware of `firmware --aot`: no interpreter heap, so more linear memory; plan --engine aot)', choiceFlag('--engine', ENGINES), 'wasm3')
    .option('--sign <key.pem>', 'sign the image with this Ed25519 private key (`edge-flash keygen`)')
    .option('--no-timestamp', 'leave the creation time out of the metadata (SOURCE_DATE_EPOCH also sets it)')
    .option('--force', 'replace an existing output file')
    .option('--ignore-fit', 'write the image although the planner says it does not fit the board (it will not run there)')
    .option('--json', 'print a JSON summary instead of the summary line')
    .addHelpText('after', `
The image (docs/image-format.md) carries build/device.wasm, the model config, the tokenizer and the
weights, each tensor 64-byte aligned for reads from memory-mapped flash; CRC-32 per section, SHA-256
over the whole, optionally an Ed25519 signature. It is read back and verified before it is written.

Examples:
  edge-flash pack models/kjv-esp32-260k/model.bin --board esp32s3 --quant tb1 --kv int4 -o kjv.efimg
  edge-flash pack model.gguf --board rpi4 --sign key.pem -o model.efimg`)
    .action(async (modelPath: string, o) => {
      imageChoices(o); // the flags' errors before the model is read
      if (existsSync(o.output) && !o.force) throw new UserError(`${o.output} exists`, 'pass --force to replace it');
      const signingKey = o.sign ? loadPrivateKey(o.sign) : undefined;
      const created = creationTime(o.timestamp);
      const src = loadSource(modelPath, o.z);
      const ch = imageChoices(withImageFormats(o, src.image));
      checkAgainstModel(ch, src.model);
      // what the user did not name (layer format, KV format, context), the planner chooses: quality, then speed
      // (host/image/choose.ts, docs/planner.md); an image re-packs in its own formats
      if (!src.image) applyChoice('pack', src.model, ch, { quant: ch.quant, kv: kvNamed(o.kv, ch), ctx: ch.ctx }, o.engine);
      const bar = progress(1 + src.model.config.nLayers * 7 + (src.model.classifier ? 1 : 0), 'pack');
      let result;
      try {
        result = packModel(src.model, {
          ...ch, app: deviceApp(), signingKey, created, tool: `edge-flash ${packageVersion()}`, source: src.label, force: o.ignoreFit, engine: o.engine,
          onTensor: (_done, _total, name) => bar.tick(name ? 1 : 0, name),
        });
      } catch (e) {
        bar.done();
        // the planner's table says why (stderr); the error line says what to do
        if (e instanceof DoesNotFitError) {
          log('pack: searching the largest context and the formats that fit');
          const r = e.plan.request;
          process.stderr.write(formatPlan(e.plan, { largestCtx: largestContext(r, src.model.config.seqLen), alternatives: alternativesThatFit(r), sourceSeqLen: src.model.config.seqLen }) + '\n');
        }
        throw e;
      }
      bar.done();
      const { bytes, plan, image, relErrors } = result;
      writeAtomic(o.output, bytes, { force: o.force });
      const worst = [...relErrors].sort((a, b) => b[1] - a[1])[0];
      if (worst && worst[1] > 0) log(`pack: largest quantization error ${worst[1].toPrecision(3)} (max |w - w'| / max |w|) in ${worst[0]}`);
      if (!plan.fits) log(`pack: warning: written with --ignore-fit although it does not fit ${ch.board.name}: ${plan.problems.join('; ')}`);
      const summary = {
        image: resolve(o.output), board: ch.board.name, bytes: bytes.byteLength, sha256: image.digest, file_sha256: fileSha256(bytes),
        signed: signingKey ? keyId(rawPublicKey(signingKey)) : null, fits: plan.fits,
        linear_bytes: plan.linear, linear_limit: plan.limits.linear, streamed_bytes_per_token: plan.streamedBytesPerToken,
        ctx: image.config.ctx, kv: image.config.kv, tensors: image.tensors.length,
      };
      process.stdout.write(o.json ? JSON.stringify(summary) + '\n' :
        `wrote ${resolve(o.output)}: ${fmtBytes(bytes.byteLength)} for ${ch.board.name}, ${image.tensors.length} tensors, ctx ${image.config.ctx}, KV ${image.config.kv}, ` +
        `linear memory ${fmtBytes(plan.linear)} of ${fmtBytes(plan.limits.linear)}, ${fmtBytes(plan.streamedBytesPerToken)} streamed a token, ` +
        `digest ${image.digest.slice(0, 16)} (file SHA-256 ${fileSha256(bytes).slice(0, 16)}, the one flash verifies)${signingKey ? `, signed by ${keyId(rawPublicKey(signingKey))}` : ''}; verified\n`);
    });
}

// The KV format the user fixed: --kv, or --act a4.8's own (int3: the mode is trained and measured with it).
export function kvNamed(flag: string | undefined, ch: ImageChoices): ImageChoices['kv'] | undefined {
  return flag !== undefined || ch.act === 'a4.8' ? ch.kv : undefined;
}

// The planner's choice for what `want` leaves open, applied to `ch`; one line on stderr with the flags
// that reproduce it, and a warning where quality drops. Nothing fits: `ch` stays (the refusal says why).
export function applyChoice(verb: string, model: Model, ch: ImageChoices, want: Wanted, engine?: 'wasm3' | 'aot'): void {
  if (want.quant && want.kv && want.ctx !== undefined) return;
  const t0 = Date.now();
  const pick = chooseFormats(model, ch, want, { engine, act: ch.act, topk: ch.topk, progress: (l) => log(`${verb}: ${l}`) });
  if (!pick) return;
  Object.assign(ch, { quant: pick.quant, kv: pick.kv, ctx: pick.ctx });
  log(`${verb}: chose ${pick.flags} for ${ch.board.name}: ${pick.reason} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  for (const w of pick.warnings) warn(`${verb}: ${w}`);
}
