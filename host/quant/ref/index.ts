// The registry of scalar references, one entry per live row of the format table.
import { UserError } from '../../errors.ts';
import type { WeightFormat } from '../formats.ts';
import { BITMOD_REFS } from './bitmod.ts';
import { FLOAT_REFS } from './float.ts';
import { LOWBIT_REFS } from './lowbit.ts';
import { Q8_REFS } from './q8.ts';
import { TERNARY_REFS } from './ternary.ts';
import type { FormatRef } from './types.ts';

export const REFS: Record<string, FormatRef> = {
  ...FLOAT_REFS,
  ...TERNARY_REFS,
  ...Q8_REFS,
  ...LOWBIT_REFS,
  ...BITMOD_REFS,
};

export function refFor(format: WeightFormat): FormatRef {
  const r = REFS[format.name];
  if (!r) throw new UserError(`format '${format.name}' has no reference implementation yet`);
  return r;
}
