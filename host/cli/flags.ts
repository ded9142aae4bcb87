// The one parser of numeric flags, for every verb: a value is a whole number written as one (or a
// decimal where the flag takes one) inside the flag's range, else one UserError naming the flag, its
// range and what it got. Used as commander's argParser, so defaults (numbers) are not re-parsed.
import { UserError } from '../errors.ts';
import { ACT_MODES, type ActMode } from '../model/plan.ts';

export interface NumberRule {
  integer?: boolean;   // whole numbers only (digits, an optional sign); else decimals and exponents too
  min?: number;
  max?: number;
  what?: string;       // how the help names it, e.g. 'a temperature'
}

const INT = /^[+-]?\d+$/;
const FLOAT = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function range(r: NumberRule): string {
  const kind = r.integer ? 'an integer' : 'a number';
  if (r.min !== undefined && r.max !== undefined) return `${kind} in ${r.min}..${r.max}`;
  if (r.min !== undefined) return `${kind} of at least ${r.min}`;
  if (r.max !== undefined) return `${kind} of at most ${r.max}`;
  return kind;
}

export function parseNumber(flag: string, value: string, r: NumberRule): number {
  const s = String(value).trim();
  const n = Number(s);
  const ok = (r.integer ? INT : FLOAT).test(s) && Number.isFinite(n) && (!r.integer || Number.isSafeInteger(n)) &&
    (r.min === undefined || n >= r.min) && (r.max === undefined || n <= r.max);
  if (!ok) throw new UserError(`${flag} must be ${range(r)}, got '${value}'`);
  return n;
}

// commander argParsers: `.option('-n <int>', 'positions', intFlag('-n', { min: 0 }), 256)`.
export const intFlag = (flag: string, r: Omit<NumberRule, 'integer'> = {}) => (v: string): number => parseNumber(flag, v, { ...r, integer: true });
export const floatFlag = (flag: string, r: Omit<NumberRule, 'integer'> = {}) => (v: string): number => parseNumber(flag, v, r);

// One of a fixed set of names: `.option('--engine <name>', '...', choiceFlag('--engine', ENGINES), 'wasm3')`.
export const choiceFlag = <T extends string>(flag: string, choices: readonly T[]) => (v: string): T => {
  const s = String(v).trim();
  if (!(choices as readonly string[]).includes(s)) throw new UserError(`${flag} must be one of ${choices.join(', ')}, got '${v}'`);
  return s as T;
};

// A byte count: 163840, 160K, 2M (K and M are binary: KiB, MiB).
export function parseBytes(s: string, flag = '--memory'): number {
  const m = /^(\d+(?:\.\d+)?)\s*(k|ki|kib|kb|m|mi|mib|mb)?$/i.exec(String(s).trim());
  if (!m) throw new UserError(`${flag}: bad byte count '${s}': expected e.g. 163840, 160K or 2M`);
  const unit = (m[2] ?? '').toLowerCase();
  const n = Math.floor(Number(m[1]) * (unit.startsWith('k') ? 1024 : unit.startsWith('m') ? 1 << 20 : 1));
  if (!(n >= 1) || n > 2 ** 32) throw new UserError(`${flag}: byte count '${s}' is out of range: expected 1 byte to 4G (wasm32's address space)`);
  return n;
}
export const bytesFlag = (flag: string) => (v: string): number => parseBytes(v, flag);

// `sim --faults drop=R,flip=R,disconnect-at=N%,seed=S`: what the virtual board's line does to bytes.
// drop and flip are per-byte probabilities (each direction); disconnect-at is the share of an upload
// after which the link drops (once per image); seed makes a run repeatable.
export interface Faults {
  drop: number;
  flip: number;
  disconnectAt: number | null;   // percent, 0 < N < 100
  seed: number;
}

const FAULT_KEYS = 'drop=R, flip=R (probabilities per byte), disconnect-at=N% (0 < N < 100), seed=S';

export function parseFaults(s: string, flag = '--faults'): Faults {
  const f: Faults = { drop: 0, flip: 0, disconnectAt: null, seed: 1 };
  const seen = new Set<string>();
  const parts = String(s).split(',').map((x) => x.trim());
  if (parts.every((p) => p === '')) throw new UserError(`${flag} is empty: expected ${FAULT_KEYS}`);
  for (const part of parts) {
    const m = /^([a-z-]+)=(.*)$/.exec(part);
    if (!m) throw new UserError(`${flag}: '${part}' is not key=value: expected ${FAULT_KEYS}`);
    const [, key, value] = m;
    if (seen.has(key)) throw new UserError(`${flag}: ${key} is given twice`);
    seen.add(key);
    if (key === 'drop' || key === 'flip') f[key] = parseNumber(`${flag} ${key}`, value, { min: 0, max: 1 });
    else if (key === 'seed') f.seed = parseNumber(`${flag} seed`, value, { integer: true, min: 0, max: Number.MAX_SAFE_INTEGER });
    else if (key === 'disconnect-at') {
      const n = parseNumber(`${flag} disconnect-at`, value.replace(/%$/, ''), { min: 0, max: 100 });
      if (!(n > 0 && n < 100)) throw new UserError(`${flag} disconnect-at must be a percentage between 0 and 100 (exclusive), got '${value}'`);
      f.disconnectAt = n;
    } else throw new UserError(`${flag}: unknown fault '${key}': expected ${FAULT_KEYS}`);
  }
  return f;
}

// --act: the activation mode (host/model/plan.ts ActMode).
export function parseAct(v: string, flag = '--act'): ActMode {
  const s = String(v).trim();
  if (!(ACT_MODES as readonly string[]).includes(s)) throw new UserError(`unknown ${flag} '${v}': expected ${ACT_MODES.slice(0, -1).join(', ')} or ${ACT_MODES[ACT_MODES.length - 1]}`);
  return s as ActMode;
}

// --topk: the fraction of a4.8's intermediate states kept, in (0, 1].
export function parseTopk(v: string, flag = '--topk'): number {
  const n = parseNumber(flag, v, { min: 0, max: 1 });
  if (!(n > 0)) throw new UserError(`${flag} must be a fraction in (0, 1] (1: no sparsification), got '${v}'`);
  return n;
}
export const topkFlag = (flag: string) => (v: string): number => parseTopk(v, flag);
export const actFlag = (flag: string) => (v: string): ActMode => parseAct(v, flag);
