// `edge-flash ports [--json]`: serial ports with USB vendor/product, and which look like an ESP32 or a Pi gadget.
import type { Command } from 'commander';
import { listPorts } from '../board/ports.ts';

export function registerPorts(program: Command): void {
  program
    .command('ports')
    .description('list serial ports (USB vendor/product, and which look like an ESP32 or a Raspberry Pi gadget)')
    .option('--json', 'print a JSON array')
    .action(async (o) => {
      const ports = await listPorts();
      if (o.json) return void process.stdout.write(JSON.stringify(ports, null, 1) + '\n');
      if (!ports.length) return void process.stdout.write('no serial ports found\n');
      for (const p of ports) process.stdout.write(`${p.path}\t${p.vendorId ? `${p.vendorId}:${p.productId}` : '-'}\t${p.guess ?? ''}\t${p.description ?? ''}\n`);
    });
}
