// The model runtime from the host: an edge-flash image run as a board runs it. The image's app is
// instantiated with edge.weights_read serving the image's bytes, its descriptor section is copied into
// linear memory and handed to model_init (host/image/pack.ts wrote both); then forward tokens and
// sample. A Model runs the same way: planned for this host, packed into an image in memory, run.
import { UserError } from '../errors.ts';
import { baseImports, GuestTrap } from '../engine/imports.ts';
import { targetFor, wasmBytes } from '../engine/index.ts';
import type { Engine, Instance } from '../engine/types.ts';
import { appBuild } from '../image/app.ts';
import { imagePlan } from '../image/descriptor.ts';
import { packPlan } from '../image/pack.ts';
import { readImage, type Image } from '../image/read.ts';
import type { Target } from '../quant/formats.ts';
import * as D from './desc.ts';
import type { Model } from './model.ts';
import { planModel, type Plan, type PlanOptions } from './plan.ts';
import type { SamplerSettings } from './sampler.ts';
import type { TextCodec } from './tokenizer.ts';
import { hashHex } from './tables-hash.ts';
import { TABLES_HASH } from './tables.gen.ts';

// assembly/model/chat.ts's codes
export const CHAT_TOO_LONG = -1, CHAT_CONTEXT_FULL = -2, CHAT_NO_TOKENIZER = -3;
export const CHAT_END_TEXT = -1, CHAT_REPLY_LIMIT = -2, CHAT_CONTEXT_END = -3, CHAT_ERROR = -4;
export const CHAT_TEMPLATE_BYTES = 34;

export interface RuntimeOptions extends Omit<PlanOptions, 'target'> {
  target?: Target;           // default: simd on V8, device on wasm3
  stackBytes?: number;
  capMemory?: boolean;       // run under the engine's memory cap at the plan's total (boards)
  app?: Uint8Array;          // the app to pack with the plan and run; default build/<target>.wasm
}

// An app built from other tables (formats, descriptor, kernel ids) would misread what this host
// writes: refused, in one line.
function tablesCheck(app: Instance): void {
  const theirs = app.has('tables_hash') ? Number(app.call('tables_hash')) >>> 0 : null;
  if (theirs !== TABLES_HASH) {
    throw new UserError(`the app was built from other tables (${theirs === null ? 'it has no tables_hash' : `tables ${hashHex(theirs)}`}, this edge-flash has ${hashHex(TABLES_HASH)}): build the app and pack the image with the same edge-flash`);
  }
}

// wasm32 linear memory: at most 65536 pages of 64 KiB (guest pointers are u32).
export const MAX_LINEAR_BYTES = 65536 * 65536;

export interface ImageRunOptions {
  stackBytes?: number;
  capMemory?: boolean;       // run under the engine's memory cap at the image's planned_linear (boards)
  memoryLimit?: number;      // the cap when it is larger, or when the image is not planned
  target?: Target;           // what its kernels are for (--verbose); default: told from the app
}

export class ModelRuntime {
  private constructor(readonly instance: Instance, readonly plan: Plan, readonly image: Image) {}

  // A Model: planned for this host's build (the plan predicts model_init to the byte), packed into an
  // image in memory, then run from the image like any other (fromImage).
  static create(model: Model, engine: Engine, opts: RuntimeOptions = {}): ModelRuntime {
    const target = opts.target ?? targetFor(engine.name);
    const app = opts.app ?? wasmBytes(target);
    // A first instance only to learn where the heap starts; the plan needs it to the byte.
    const probe = engine.instantiate(app, baseImports(), { stackBytes: opts.stackBytes });
    probe.call('arena_reset');
    const heapBase = Number(probe.call('arena_top')) >>> 0;
    const exports = new Map<string, boolean>();
    const has = (name: string) => exports.get(name) ?? exports.set(name, probe.has(name)).get(name)!;
    let plan: Plan;
    try {
      tablesCheck(probe);
      plan = planModel(model, { ...opts, target, has }, heapBase);
    } finally {
      probe.close();
    }
    if (plan.memory.total > MAX_LINEAR_BYTES) {
      throw new UserError(`the plan needs ${plan.memory.total} bytes of linear memory, over the engine's limit of ${MAX_LINEAR_BYTES} (wasm32: 65536 pages of 64 KiB)`, 'run fewer positions (-n), or try --kv int4 or --memory to stream weights');
    }
    const image = readImage(packPlan(model, plan, app, opts.memoryLimit));
    return ModelRuntime.open(image, engine, { stackBytes: opts.stackBytes, capMemory: opts.capMemory, memoryLimit: opts.memoryLimit }, plan);
  }

  // An image as it is: its app, its descriptor, its bytes through weights_read; nothing planned here.
  static fromImage(image: Image, engine: Engine, opts: ImageRunOptions = {}): ModelRuntime {
    return ModelRuntime.open(image, engine, opts);
  }

  // `plan`: the plan the image was packed from (create), whose tensors are the Model's; otherwise the
  // image's own (host/image/descriptor.ts), read from its descriptor.
  private static open(image: Image, engine: Engine, opts: ImageRunOptions, plan?: Plan): ModelRuntime {
    const c = image.config;
    // Engines cap whole 64 KiB pages; the arena's high-water mark is what must fit the limit (checked in init).
    const cap = opts.capMemory ? Math.max(c.plannedLinear, opts.memoryLimit ?? 0) : 0;
    const limit = cap > 0 ? Math.ceil(cap / 65536) * 65536 : undefined;
    const inst = engine.instantiate(image.app, baseImports({ weights: image.bytes }), { stackBytes: opts.stackBytes, memoryLimitBytes: limit });
    try {
      tablesCheck(inst);
      inst.call('arena_reset');
      const heapBase = Number(inst.call('arena_top')) >>> 0;
      const p = plan ?? imagePlan(image, heapBase, opts.target ?? (appBuild(image.app) === 'simd' ? 'simd' : 'device'));
      if (p.memory.total > MAX_LINEAR_BYTES) {
        throw new UserError(`the image needs ${p.memory.total} bytes of linear memory, over the engine's limit of ${MAX_LINEAR_BYTES} (wasm32: 65536 pages of 64 KiB)`);
      }
      const rt = new ModelRuntime(inst, p, image);
      rt.init();
      return rt;
    } catch (e) {
      inst.close();
      throw e;
    }
  }

  // A guest address: an i32 result read as the u32 it is (linear memory may pass 2 GiB).
  private pointer(name: string): number {
    return this.call(name) >>> 0;
  }

  private call(name: string, ...args: (number | bigint)[]): number {
    try {
      return Number(this.instance.call(name, ...args));
    } catch (e) {
      if (e instanceof GuestTrap) throw new UserError(`model runtime (${this.instance.engine}): ${e.message}`);
      throw e;
    }
  }

  // The descriptor section's bytes into the arena, then model_init on them, as a board boots.
  private init(): void {
    const desc = this.image.descriptor;
    this.call('arena_reset');
    const at = this.call('arena_alloc', desc.byteLength) >>> 0;
    if (at === 0) throw new UserError(`out of linear memory writing the model descriptor (${desc.byteLength} bytes)`);
    this.instance.memory().set(desc, at);
    const r = this.call('model_init', at);
    if (r === D.INIT_OUT_OF_MEMORY) throw new UserError(`out of linear memory: the model needs ${this.plan.memory.total} bytes`, 'try --kv int4 or a memory limit that streams weights');
    if (r !== D.INIT_OK) throw new Error(`model_init rejected the descriptor (code ${r})`);
    const top = this.pointer('model_memory');
    if (top !== this.plan.memory.total) throw new Error(`model_init reached ${top} bytes of linear memory, the plan said ${this.plan.memory.total}`);
    const planned = this.image.config.plannedLinear;
    if (planned > 0 && top !== planned) throw new UserError(`the image was planned for ${planned} bytes of linear memory; its app reached ${top} on this engine`, 'pack the model again with this edge-flash');
  }

  // The arena's high-water mark: every byte of linear memory the model uses.
  memoryBytes(): number {
    return this.pointer('arena_top');
  }

  // Forward tokens at pos.. (in batches of the plan's width); returns the last token's logits when asked.
  forward(tokens: ArrayLike<number>, pos: number, wantLogits = true): Float32Array | undefined {
    const B = this.plan.batch;
    const tp = this.pointer('model_tokens');
    for (let i = 0; i < tokens.length; i += B) {
      const n = Math.min(B, tokens.length - i);
      const view = new Int32Array(n);
      for (let j = 0; j < n; j++) view[j] = tokens[i + j];
      this.instance.memory().set(new Uint8Array(view.buffer), tp);
      const last = i + n >= tokens.length;
      if (this.call('model_forward', n, pos + i, last && wantLogits ? 1 : 0) !== 0) {
        throw new UserError(`cannot forward ${n} tokens at position ${pos + i}: the context holds ${this.plan.config.seqLen} and tokens must be below ${this.plan.config.vocabSize}`);
      }
    }
    return wantLogits ? this.logits() : undefined;
  }

  logits(): Float32Array {
    const p = this.pointer('model_logits');
    return new Float32Array(this.instance.memory().slice(p, p + this.plan.config.vocabSize * 4).buffer);
  }

  setSampler(s: SamplerSettings): void {
    this.call('sampler_init', s.temperature, s.topp, BigInt.asUintN(64, s.seed));
  }

  // Forward one token and sample the next one inside WASM.
  step(token: number, pos: number): number {
    const next = this.call('model_step', token, pos);
    if (next < 0) throw new UserError(`cannot decode token ${token} at position ${pos} (context ${this.plan.config.seqLen})`);
    return next;
  }

  // Sample from the current logits (after forward) inside WASM.
  sample(): number {
    return this.call('sampler_sample', this.call('model_logits'), this.plan.config.vocabSize);
  }

  // The device tokenizer (when the plan carries one): what a board runs to tokenize and print.
  codec(): TextCodec {
    const img = this.plan.tokenizerImage;
    if (!img) throw new Error('this runtime was planned without a device tokenizer');
    const dv = new DataView(img.buffer, img.byteOffset);
    const cap = this.plan.textBytes;
    return {
      bos: dv.getInt32(16, true),
      eos: dv.getInt32(20, true),
      encode: (text, bos, eos) => {
        const bytes = typeof text === 'string' ? new TextEncoder().encode(text) : text;
        if (bytes.length > cap) throw new UserError(`the prompt is ${bytes.length} bytes; the device tokenizer was planned for ${cap}`);
        this.instance.memory().set(bytes, this.pointer('tok_text'));
        const n = this.call('tok_encode', bytes.length, bos ? 1 : 0, eos ? 1 : 0);
        if (n < 0) throw new Error('tok_encode failed');
        const p = this.pointer('tok_tokens');
        return Array.from(new Int32Array(this.instance.memory().slice(p, p + 4 * n).buffer));
      },
      decode: (prev, token) => {
        const n = this.call('tok_decode', prev, token);
        if (n < 0) throw new UserError(`token ${token} is outside the vocabulary`);
        const p = this.pointer('tok_piece');
        return this.instance.memory().slice(p, p + n);
      },
    };
  }

  // The app's chat turns (assembly/model/chat.ts): a new conversation of `context` positions (0: all).
  chatReset(context: number): void {
    this.call('chat_reset', context);
  }

  // Starts a turn; returns the prompt's token count or a CHAT_* code (negative).
  chatTurn(system: Uint8Array, user: Uint8Array, replyLimit: number): number {
    if (!this.plan.tokenizerImage) throw new Error('this runtime was planned without a device tokenizer');
    const text = new Uint8Array(system.length + user.length);
    text.set(system);
    text.set(user, system.length);
    if (text.length > this.plan.textBytes) return CHAT_TOO_LONG;
    this.instance.memory().set(text, this.call('tok_text'));
    return this.call('chat_turn', system.length, user.length, replyLimit);
  }

  // One position of the turn: the bytes to print (empty while the prompt goes in), or an end code.
  chatNext(): Uint8Array | number {
    const n = this.call('chat_next');
    if (n < 0) return n;
    const p = this.call('tok_piece');
    return this.instance.memory().slice(p, p + n);
  }

  // The app's generate (assembly/model/chat.ts gen_*): tokenize and prefill; the prompt's token count or a code.
  genBegin(prompt: Uint8Array, steps: number): number {
    if (!this.plan.tokenizerImage) throw new Error('this runtime was planned without a device tokenizer');
    if (prompt.length > this.plan.textBytes) return CHAT_TOO_LONG;
    this.instance.memory().set(prompt, this.call('tok_text'));
    return this.call('gen_begin', prompt.length, steps);
  }

  // The next printed piece, or an end code.
  genNext(): Uint8Array | number {
    const n = this.call('gen_next');
    if (n < 0) return n;
    const p = this.call('tok_piece');
    return this.instance.memory().slice(p, p + n);
  }

  genToken(): number {
    return this.call('gen_token');
  }

  chatPos(): number {
    return this.call('chat_pos');
  }

  close(): void {
    this.instance.close();
  }
}
