// `edge-flash chat --port P`: interactive (readline, streamed tokens, Ctrl-C cancels the reply, Ctrl-D
// quits), or scripted with -i PROMPT: prints the reply and exits.
import type { Command } from 'commander';
import { createInterface } from 'node:readline';
import { chat, formatStats, type ChatSettings } from '../board/commands.ts';
import type { Client } from '../board/client.ts';
import { connectBoard, parseBaud } from '../board/connect.ts';
import { UserError } from '../errors.ts';
import { log } from '../log.ts';
import { parseNumber } from './flags.ts';

export function registerChat(program: Command): void {
  program
    .command('chat')
    .description('talk to the model on a board: interactive, or one prompt with -i')
    .requiredOption('--port <path>', 'serial port, or the virtual board\'s pty')
    .option('--baud <rate>', 'baud rate', '115200')
    .option('-i <prompt>', 'one prompt: print the reply and exit')
    .option('-n <steps>', 'positions to run, prompt included; 0 = context', '256')
    .option('-t <temperature>', 'temperature; 0 = greedy', '1.0')
    .option('-p <top_p>', 'top-p; 1 = off', '0.9')
    .option('-s <seed>', 'seed; 0 = the board picks', '0')
    .option('-m <mode>', 'generate | chat', 'chat')
    .option('--json', 'with -i: one JSON object (text, tokens, stats)')
    .option('--trace', 'hex dump of the wire on stderr')
    .action(async (o) => {
      if (o.m !== 'generate' && o.m !== 'chat') throw new UserError(`-m: '${o.m}' is not generate or chat`);
      const base: Omit<ChatSettings, 'prompt' | 'newConversation'> = {
        seed: parseNumber('-s', o.s, { integer: true, min: 0 }), temperature: parseNumber('-t', o.t, {}), topP: parseNumber('-p', o.p, {}), steps: parseNumber('-n', o.n, { integer: true, min: 0 }), mode: o.m,
      };
      const client = await connectBoard(o.port, parseBaud(o.baud), !!o.trace);
      try {
        if (o.i !== undefined) {
          const r = await chat(client, { ...base, prompt: o.i, newConversation: true }, o.json ? undefined : (t) => process.stdout.write(t)).done;
          if (o.json) process.stdout.write(JSON.stringify({ text: r.text, tokens: r.tokens, context: r.context, stats: r.stats }) + '\n');
          else {
            process.stdout.write('\n');
            log(formatStats(r.stats));
          }
          return;
        }
        await interactiveChat(client, base);
      } finally {
        await client.close();
      }
    });
}

// The interactive loop: readline on stdin, the reply streamed to stdout, its stats on stderr; Ctrl-C
// cancels a reply (or quits at the prompt), Ctrl-D quits. One conversation: the first line starts it.
export async function interactiveChat(client: Client, base: Omit<ChatSettings, 'prompt' | 'newConversation'>, first = true): Promise<void> {
  const rl = createInterface({ input: process.stdin, output: process.stderr, prompt: '> ' });
  let current: ReturnType<typeof chat> | null = null;
  rl.on('SIGINT', () => {
    if (current) void current.cancel().catch(() => {});
    else rl.close();
  });
  rl.prompt();
  for await (const line of rl) {
    if (!line.trim()) {
      rl.prompt();
      continue;
    }
    current = chat(client, { ...base, prompt: line, newConversation: first }, (t) => process.stdout.write(t));
    first = false;
    try {
      const r = await current.done;
      process.stdout.write('\n');
      log(formatStats(r.stats));
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      log(`edge-flash: error: ${e.message}`);
    }
    current = null;
    rl.prompt();
  }
}
