// The runtime's kernel numbering: every (format, kernel variant, activation format) of the format
// table, in table order, gets one id. tools/gen-dispatch.ts writes the AssemblyScript switch over
// these ids (assembly/model/dispatch.gen.ts); the host passes an id per tensor in the model
// descriptor. Both sides derive the ids from the same table at build time.
import { FORMATS, kernelExport, type ActFormatName, type Target, type WeightFormat } from '../quant/formats.ts';

export interface KernelEntry {
  id: number;
  format: WeightFormat;
  variant: string;
  act: ActFormatName;
  targets: Target[];
  exportName: string;
  scratch?: (k: number, n: number, act: ActFormatName) => number; // the table's scratch bytes, when it states them
}

export const KERNELS: readonly KernelEntry[] = FORMATS.filter((f) => !f.retired).flatMap((format) =>
  format.kernels.flatMap((kv) => kv.acts.map((act) => ({ format, variant: kv.name, act, targets: kv.targets, exportName: kernelExport(format, act, kv.name), scratch: (kv as { scratch?: KernelEntry['scratch'] }).scratch }))),
).map((e, id) => ({ id, ...e }));

export function kernelEntry(format: WeightFormat, act: ActFormatName, variant: string): KernelEntry | undefined {
  return KERNELS.find((e) => e.format.id === format.id && e.act === act && e.variant === variant);
}
