// `edge-flash boards`: the board profiles (boards/*.json), as a table or as JSON.
import type { Command } from 'commander';
import { boards } from '../board/boards.ts';
import { fmtBytes } from '../image/plan.ts';

export function registerBoards(program: Command): void {
  program
    .command('boards')
    .description('list the board profiles: memory, flash, serial, wasm3 limits, speed basis')
    .option('--json', 'print the profiles as JSON')
    .action((o) => {
      if (o.json) {
        process.stdout.write(JSON.stringify(boards(), null, 1) + '\n');
        return;
      }
      const rows = boards().map((b) => [
        b.name, String(b.id), `${b.cpu.arch}${b.cpu.clockMHz ? ` ${b.cpu.clockMHz} MHz` : ''}`,
        fmtBytes(b.memory.linearMemoryMax), `${fmtBytes(b.memory.heapTotal)}${b.memory.linearInHeap ? ' shared' : ''}`, fmtBytes(b.imageCapacity),
        b.flash.imagePartition ? `partition '${b.flash.imagePartition}'` : 'file', `${b.serial.transport}${b.serial.baud ? ` ${b.serial.baud}` : ''}`,
        b.speed.fibN ? `fib(${b.speed.fibN}) ${b.speed.fibSeconds} s${/^estimate/.test(b.speed.basis) ? ' (estimate)' : ''}` : 'measured here',
      ]);
      const head = ['board', 'id', 'cpu', 'linear max', 'heap', 'image max', 'image in', 'serial', 'wasm3 speed'];
      const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
      const line = (r: string[]) => r.map((c, i) => c.padEnd(w[i])).join('  ').trimEnd();
      process.stdout.write([line(head), ...rows.map(line)].join('\n') + '\n\nSources and the basis of every figure: boards/<board>.json (`edge-flash boards --json`).\n');
    });
}
