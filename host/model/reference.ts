// A plain float64 forward pass of the llama model (run.c's forward, written for clarity, not speed):
// the reference the WASM runtime is tested against. Quantization-aware: weights are the exact values
// their format decodes to, activations before a quantized matmul go through the same per-token
// quantizer as the runtime (host/quant/ref/act.ts), and K/V through the same KV quantizer
// (host/model/kv.ts); everything else is float64.
import type { ActFormatName } from '../quant/formats.ts';
import { quantizeAct, sparsifyTopK } from '../quant/ref/act.ts';
import { headDim, kvDim } from './config.ts';
import { int4Attention, kvQuantize, kvRoundTrip, type KvFormat, KV_FORMATS } from './kv.ts';
import { MATRIX_NAMES, matrixShape, type Matrix, type Model } from './model.ts';
import { dequantize } from './quantize.ts';
import { maxOf } from '../arrays.ts';

export interface ReferenceOptions {
  act?: (t: Matrix) => ActFormatName; // activation format before each matmul (default: f32)
  kv?: KvFormat;
  // inputs of wo and w2 kept by top-K sparsification (BitNet a4.8), as the plan's keepWo/keepW2; 0: all
  keep?: { wo: number; w2: number };
  // Diagnostics (tools/eval/kv-probe.ts): each KV head's K or V row as cached, in place of the KV
  // format's round trip; attention is then the float64 one for every format (int4 included).
  kvTransform?: (v: Float64Array, isV: boolean, layer: number) => ArrayLike<number>;
}

interface DenseLayer {
  rmsAtt: Float64Array; rmsFfn: Float64Array;
  w: Record<(typeof MATRIX_NAMES)[number], { t: Matrix; w: Float64Array; rows: number; cols: number }>;
}

export class ReferenceModel {
  private layers: DenseLayer[];
  private emb: Float64Array;
  private cls: { t: Matrix; w: Float64Array; rows: number; cols: number };
  private rmsFinal: Float64Array;
  private keys: Float64Array[][];   // [layer][pos] (kv_dim)
  private values: Float64Array[][];
  private kq: Array<Array<Array<{ codes: Int8Array; scale: number }>>> = []; // int4: [layer][pos][kv head]
  private vq: Array<Array<Array<{ codes: Int8Array; scale: number }>>> = [];
  private act: (t: Matrix) => ActFormatName;
  private kv: KvFormat;
  private keep: { wo: number; w2: number };
  private kvTransform?: ReferenceOptions['kvTransform'];

  constructor(readonly model: Model, opts: ReferenceOptions = {}) {
    const c = model.config;
    this.act = opts.act ?? (() => 'f32');
    this.kv = opts.kv ?? KV_FORMATS[0];
    this.kvTransform = opts.kvTransform;
    this.keep = opts.keep ?? { wo: 0, w2: 0 };
    const dense = (t: Matrix, rows: number, cols: number) => ({ t, w: Float64Array.from(dequantize(t, rows, cols)), rows, cols });
    this.layers = model.layers.map((l) => {
      const w = {} as DenseLayer['w'];
      for (const n of MATRIX_NAMES) {
        const [rows, cols] = matrixShape(c, n);
        w[n] = dense(l[n], rows, cols);
      }
      return { rmsAtt: Float64Array.from(l.rmsAtt), rmsFfn: Float64Array.from(l.rmsFfn), w };
    });
    this.emb = Float64Array.from(dequantize(model.embedding, c.vocabSize, c.dim));
    this.cls = model.classifier ? dense(model.classifier, c.vocabSize, c.dim) : { t: model.embedding, w: this.emb, rows: c.vocabSize, cols: c.dim };
    this.rmsFinal = Float64Array.from(model.rmsFinal);
    this.keys = c.nLayers ? Array.from({ length: c.nLayers }, () => []) : [];
    this.values = Array.from({ length: c.nLayers }, () => []);
    this.kq = Array.from({ length: c.nLayers }, () => []);
    this.vq = Array.from({ length: c.nLayers }, () => []);
  }

  private matmul(m: { t: Matrix; w: Float64Array; rows: number; cols: number }, x: Float64Array): Float64Array {
    const act = this.act(m.t);
    let xv: ArrayLike<number> = x;
    let xs = 1;
    if (act !== 'f32') {
      const q = quantizeAct(Float32Array.from(x), 1, m.cols, act);
      xv = q.q;
      xs = q.scales[0];
    }
    const y = new Float64Array(m.rows);
    for (let r = 0; r < m.rows; r++) {
      let acc = 0;
      for (let i = 0; i < m.cols; i++) acc += m.w[r * m.cols + i] * xv[i];
      y[r] = acc * xs;
    }
    return y;
  }

  // the runtime's f32 values, top-K sparsified (host/quant/ref/act.ts)
  private sparsify(x: Float64Array, keep: number): Float64Array {
    return keep > 0 ? Float64Array.from(sparsifyTopK(Float32Array.from(x), 1, x.length, keep)) : x;
  }

  private rmsnorm(x: Float64Array, w: Float64Array): Float64Array {
    let ss = 0;
    for (const v of x) ss += v * v;
    const s = 1 / Math.sqrt(ss / x.length + this.model.normEps);
    return x.map((v, i) => w[i] * (s * v));
  }

  // Logits (vocab) for `token` at `pos`; positions must come in order from 0.
  forward(token: number, pos: number): Float64Array {
    const c = this.model.config;
    const hs = headDim(c), kvd = kvDim(c), kvMul = c.nHeads / c.nKvHeads;
    let x = this.emb.slice(token * c.dim, (token + 1) * c.dim);
    for (let l = 0; l < c.nLayers; l++) {
      const L = this.layers[l];
      const xb = this.rmsnorm(x, L.rmsAtt);
      const q = this.matmul(L.w.wq, xb), k = this.matmul(L.w.wk, xb), v = this.matmul(L.w.wv, xb);
      for (let i = 0; i < c.dim; i += 2) {
        const freq = 1 / this.model.ropeTheta ** ((i % hs) / hs);
        const a = pos * freq, cr = Math.cos(a), ci = Math.sin(a);
        const rot = (vec: Float64Array) => {
          const v0 = vec[i], v1 = vec[i + 1];
          vec[i] = v0 * cr - v1 * ci;
          vec[i + 1] = v0 * ci + v1 * cr;
        };
        rot(q);
        if (i < kvd) rot(k);
      }
      const kq = new Float64Array(kvd), vq = new Float64Array(kvd);
      const tf = this.kvTransform;
      for (let h = 0; h < c.nKvHeads; h++) {
        const kh = k.subarray(h * hs, (h + 1) * hs), vh = v.subarray(h * hs, (h + 1) * hs);
        kq.set(tf ? tf(kh, false, l) : kvRoundTrip(kh, this.kv), h * hs);
        vq.set(tf ? tf(vh, true, l) : kvRoundTrip(vh, this.kv), h * hs);
      }
      this.keys[l][pos] = this.kv.qmax || tf ? kq : k;
      this.values[l][pos] = this.kv.qmax || tf ? vq : v;
      const att = new Float64Array(c.dim);
      const int4 = this.kv.name === 'int4' && !tf;
      if (int4) {
        // the runtime's integer attention (host/model/kv.ts int4Attention)
        this.kq[l][pos] = Array.from({ length: c.nKvHeads }, (_, g) => kvQuantize(k.subarray(g * hs, (g + 1) * hs), this.kv));
        this.vq[l][pos] = Array.from({ length: c.nKvHeads }, (_, g) => kvQuantize(v.subarray(g * hs, (g + 1) * hs), this.kv));
        for (let h = 0; h < c.nHeads; h++) {
          const g = Math.floor(h / kvMul);
          const o = int4Attention(Float32Array.from(q.subarray(h * hs, (h + 1) * hs)), this.kq[l].map((p) => p[g]), this.vq[l].map((p) => p[g]));
          att.set(o, h * hs);
        }
      }
      for (let h = 0; h < c.nHeads && !int4; h++) {
        const g = Math.floor(h / kvMul);
        const scores = new Float64Array(pos + 1);
        for (let t = 0; t <= pos; t++) {
          let s = 0;
          for (let i = 0; i < hs; i++) s += q[h * hs + i] * this.keys[l][t][g * hs + i];
          scores[t] = s / Math.sqrt(hs);
        }
        const mx = maxOf(scores);
        let sum = 0;
        for (let t = 0; t <= pos; t++) sum += scores[t] = Math.exp(scores[t] - mx);
        for (let t = 0; t <= pos; t++) {
          const a = scores[t] / sum;
          for (let i = 0; i < hs; i++) att[h * hs + i] += a * this.values[l][t][g * hs + i];
        }
      }
      const o = this.matmul(L.w.wo, this.sparsify(att, this.keep.wo));
      x = x.map((v, i) => v + o[i]);
      const xb2 = this.rmsnorm(x, L.rmsFfn);
      const h1 = this.matmul(L.w.w1, xb2), h3 = this.matmul(L.w.w3, xb2);
      const hb = h1.map((v, i) => (v / (1 + Math.exp(-v))) * h3[i]);
      const d = this.matmul(L.w.w2, this.sparsify(hb, this.keep.w2));
      x = x.map((v, i) => v + d[i]);
    }
    return this.matmul(this.cls, this.rmsnorm(x, this.rmsFinal));
  }
}
