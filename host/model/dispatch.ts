// The runtime's kernels: every (format, kernel variant, activation format) of the format table, each
// with its stable id (KERNEL_IDS in host/quant/formats.ts). tools/gen-dispatch.ts writes the
// AssemblyScript switch over these ids (assembly/model/dispatch.gen.ts); the host passes an id per
// tensor in the model descriptor.
import { FORMATS, KERNEL_IDS, kernelExport, type ActFormatName, type Target, type WeightFormat } from '../quant/formats.ts';

export interface KernelEntry {
  id: number;
  format: WeightFormat;
  variant: string;
  act: ActFormatName;
  targets: Target[];
  exportName: string;
  scratch: (k: number, n: number, act: ActFormatName) => number; // the table's scratch bytes
}

const idOf = new Map(KERNEL_IDS.map((name, id) => [name, id]));

// A kernel of the table with no id is an error at load, so that no build can run without one.
export const KERNELS: readonly KernelEntry[] = FORMATS.filter((f) => !f.retired).flatMap((format) =>
  format.kernels.flatMap((kv) => kv.acts.map((act) => {
    const exportName = kernelExport(format, act, kv.name);
    const id = idOf.get(exportName);
    if (id === undefined) throw new Error(`kernel ${exportName} has no stable id: append it to KERNEL_IDS (host/quant/formats.ts)`);
    return { id, format, variant: kv.name, act, targets: kv.targets, exportName, scratch: kv.scratch };
  })),
);

export function kernelEntry(format: WeightFormat, act: ActFormatName, variant: string): KernelEntry | undefined {
  return KERNELS.find((e) => e.format.id === format.id && e.act === act && e.variant === variant);
}
