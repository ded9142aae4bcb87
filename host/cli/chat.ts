// `edge-flash chat --port P`: interactive (readline, streamed tokens, Ctrl-C cancels the reply, Ctrl-D
// quits, its own /commands as the board's terminal has), or scripted with -i PROMPT: prints the reply
// and exits. Every setting is checked here, in the wire's ranges, before anything is sent.
import { createHash } from 'node:crypto';
import type { Command } from 'commander';
import { createInterface } from 'node:readline';
import { chat, formatInfo, formatStats, info, type ChatSettings } from '../board/commands.ts';
import type { Client } from '../board/client.ts';
import { boardBaud, connectBoard } from '../board/connect.ts';
import { boardByName } from '../board/boards.ts';
import { UserError } from '../errors.ts';
import { readImage, type Image } from '../image/read.ts';
import { log } from '../log.ts';
import { parseNumber } from './flags.ts';
import { readImageFile, refuseModelFile } from './inspect.ts';

export type ChatBase = Omit<ChatSettings, 'prompt' | 'newConversation'>;

// The CHAT frame's ranges (docs/protocol.md): steps u16, seed u32, temperature and top-p f32; the
// board refuses a negative temperature and a top-p outside [0, 1] (boards/runtime/core/protocol.c).
export const SETTING_RULES = {
  steps: { flag: '-n', cmd: '/steps', rule: { integer: true, min: 0, max: 65535 } },
  temperature: { flag: '-t', cmd: '/temp', rule: { min: 0, max: 1e6 } },
  topP: { flag: '-p', cmd: '/topp', rule: { min: 0, max: 1 } },
  seed: { flag: '-s', cmd: '/seed', rule: { integer: true, min: 0, max: 4294967295 } },
} as const;

export function chatSettings(o: { n: string; t: string; p: string; s: string; m: string }): ChatBase {
  if (o.m !== 'generate' && o.m !== 'chat') throw new UserError(`-m: '${o.m}' is not generate or chat`);
  const get = (k: keyof typeof SETTING_RULES, v: string) => parseNumber(SETTING_RULES[k].flag, v, SETTING_RULES[k].rule);
  return { steps: get('steps', o.n), temperature: get('temperature', o.t), topP: get('topP', o.p), seed: get('seed', o.s), mode: o.m };
}

export function registerChat(program: Command): void {
  program
    .command('chat')
    .description('talk to the model on a board: interactive, or one prompt with -i')
    .requiredOption('--port <path>', 'serial port, or the virtual board\'s pty')
    .option('--baud <rate>', 'baud rate (default: the board\'s profile rate (serial.baud, `edge-flash boards`) where the board is known: --board, or the board --image names; otherwise 115200)')
    .option('--board <name>', 'the board on the port, for its serial rate (see `edge-flash boards`)')
    .option('-i <prompt>', 'one prompt: print the reply and exit')
    .option('-n <steps>', 'positions to run, prompt included; 0 = context (at most 65535)', '256')
    .option('-t <temperature>', 'temperature; 0 = greedy', '1.0')
    .option('-p <top_p>', 'top-p in [0, 1]; 1 = off', '0.9')
    .option('-s <seed>', 'seed, 0..4294967295; 0 = the board picks', '0')
    .option('-m <mode>', 'generate | chat', 'chat')
    .option('--image <file>', 'the image the board runs (as flashed): the banner and /info show its model and context')
    .option('--json', 'with -i: one JSON object (text, tokens, stats)')
    .option('--trace', 'hex dump of the wire on stderr')
    .addHelpText('after', `
Interactive: Ctrl-C cancels a reply (at the prompt: quits), Ctrl-D quits. Lines that start with / are
commands, not prompts: /help, /info, /temp T, /topp P, /seed N, /steps N, /new, /quit.`)
    .action(async (o) => {
      const base = chatSettings(o);
      const image = o.image !== undefined ? describedImage(o.image) : undefined;
      // the rate: --baud, else the profile's of --board or of the board the image names (a silent port's line names it)
      const { baud } = boardBaud(o.baud, o.board !== undefined ? boardByName(o.board) : image?.image.board);
      const client = await connectBoard(o.port, baud, !!o.trace);
      try {
        if (o.i !== undefined) {
          const r = await chat(client, { ...base, prompt: o.i, newConversation: true }, o.json ? undefined : (t) => process.stdout.write(t)).done;
          if (o.json) process.stdout.write(JSON.stringify({ text: r.text, tokens: r.tokens, context: r.context, stats: r.stats }) + '\n');
          else {
            process.stdout.write('\n');
            log(formatStats(r.stats, { steps: base.steps, context: r.context }));
          }
          return;
        }
        await interactiveChat(client, base, { port: o.port, image });
      } finally {
        await client.close();
      }
    });
}

export interface DescribedImage { path: string; image: Image; sha256: string }

function describedImage(path: string): DescribedImage {
  const bytes = readImageFile(path);
  refuseModelFile(path, bytes);
  try {
    return { path, image: readImage(bytes), sha256: createHash('sha256').update(bytes).digest('hex') };
  } catch (e) {
    if (e instanceof UserError) throw new UserError(`--image ${path}: ${e.message}`, e.hint);
    throw e;
  }
}

function modelLine(d: DescribedImage | undefined, context: number | null): string {
  if (!d) return `model: not known here (pass --image FILE, the image you flashed); context ${context ?? 'shown after the first reply'}`;
  const c = d.image.config;
  return `model: ${d.path}: dim ${c.dim}, ${c.nLayers} layers, vocab ${c.vocabSize}, ${d.image.tensors.find((t) => t.name.endsWith('ffn_down'))?.format.name ?? ''} weights, KV ${c.kv}; context ${c.ctx} positions`;
}

export const CHAT_HELP = [
  '/help     this list',
  '/info     the board, its image, the model and these settings',
  '/temp T   temperature (0 = greedy)',
  '/topp P   top-p in [0, 1] (1 = off)',
  '/seed N   seed of the next replies (0 = the board picks)',
  '/steps N  positions per reply, prompt included (0 = the context)',
  '/new      a new conversation',
  '/quit     leave (as Ctrl-D); Ctrl-C cancels a reply',
].join('\n');

const settingsLine = (s: ChatBase) => `settings: temperature ${s.temperature}, top-p ${s.topP}, seed ${s.seed || 'board picks'}, steps ${s.steps || 'context'}, mode ${s.mode}`;

// The interactive loop: readline on stdin, the reply streamed to stdout, its stats and every command's
// answer on stderr; Ctrl-C cancels a reply (or quits at the prompt), Ctrl-D quits. One conversation
// until /new: the first line starts it. The demo's chat is this loop too.
export async function interactiveChat(client: Client, start: ChatBase, o: { port: string; image?: DescribedImage; first?: boolean }): Promise<void> {
  const s: ChatBase = { ...start };
  let first = o.first ?? true;
  let context: number | null = null;
  const board = await info(client);
  const flashed = board.bootedSha256 ? `image ${board.bootedSha256.slice(0, 16)} in slot ${board.bootedSlot}` : 'no image booted (flash one first)';
  log(`edge-flash chat: ${board.board} on ${o.port} (runtime ${board.runtimeVersion}), ${flashed}`);
  if (o.image && board.bootedSha256 && o.image.sha256 !== board.bootedSha256) log(`warning: --image ${o.image.path} is not the image the board runs (SHA-256 ${o.image.sha256.slice(0, 16)}, the board's ${board.bootedSha256.slice(0, 16)})`);
  log(modelLine(o.image, null));
  log('Ctrl-C cancels a reply, Ctrl-D quits, /help lists the commands');
  const rl = createInterface({ input: process.stdin, output: process.stderr, prompt: '> ' });
  let current: ReturnType<typeof chat> | null = null;
  rl.on('SIGINT', () => {
    if (current) void current.cancel().catch(() => {});
    else rl.close();
  });
  rl.prompt();
  for await (const line of rl) {
    const text = line.trim();
    if (!text) {
      rl.prompt();
      continue;
    }
    if (text.startsWith('/')) {
      const r = command(text, s, () => { first = true; });
      if (r === 'quit') break;
      if (r === 'info') log(`${formatInfo(await info(client))}\n${modelLine(o.image, context)}\n${settingsLine(s)}`);
      else log(r);
      rl.prompt();
      continue;
    }
    current = chat(client, { ...s, prompt: line, newConversation: first }, (t) => process.stdout.write(t));
    first = false;
    try {
      const r = await current.done;
      context = r.context;
      process.stdout.write('\n');
      log(formatStats(r.stats, { steps: s.steps, context: r.context }));
      if (r.stats.reason === 'context' && r.stats.promptTokens + r.stats.tokens >= r.context - 1) {
        first = true;
        log('the context is full: the next line starts a new conversation');
      }
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      log(`edge-flash: error: ${e.message}`);
    }
    current = null;
    rl.prompt();
  }
  rl.close();
}

// One /command: its answer (a line), 'info', or 'quit'. Values are checked as the flags are.
function command(line: string, s: ChatBase, newConversation: () => void): string {
  const [cmd, ...rest] = line.split(/\s+/);
  const arg = rest.join(' ');
  const set = (k: 'temperature' | 'topP' | 'seed' | 'steps', label: string): string => {
    if (!arg) return `error: ${cmd} needs a value (/help lists the commands)`;
    try {
      s[k] = parseNumber(cmd, arg, SETTING_RULES[k].rule);
    } catch (e) {
      if (e instanceof UserError) return `error: ${e.message}`;
      throw e;
    }
    return `${label} ${s[k]}${k === 'steps' && s[k] === 0 ? ' (the context)' : k === 'seed' && s[k] === 0 ? ' (the board picks)' : ''}`;
  };
  switch (cmd) {
    case '/help': return CHAT_HELP;
    case '/info': return 'info';
    case '/quit': case '/exit': return 'quit';
    case '/new': newConversation(); return 'new conversation';
    case '/temp': return set('temperature', 'temperature');
    case '/topp': return set('topP', 'top-p');
    case '/seed': return set('seed', 'seed');
    case '/steps': return set('steps', 'steps');
    default: return `error: unknown command ${cmd} (/help lists the commands; a prompt cannot start with /)`;
  }
}
