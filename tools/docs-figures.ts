// `npm run docs:figures`: the generated blocks of the README and the docs/ pages, rerun and rewritten in
// place, so they cannot go stale. Each block sits between `<!-- figures: NAME -->` and
// `<!-- end figures: NAME -->` in one of FILES and is made by the code the commands run:
//   commands  the command table (README.md), from the CLI's own definitions (host/cli/verbs.ts)
//   options VERB  one verb's options table (flag, default, what it does), from the same definitions,
//             wherever such a block is (the journey's verbs in README.md, every verb in docs/cli.md)
//   plan      (docs/planner.md) the demo models on every board: `plan`'s verdict, linear memory, streaming and tok/s
//             estimate with its calibration spread (host/image/plan.ts, host/image/speed.ts), and
//             the AOT build's estimate at its own fit
//   fit       (README.md) what `pack MODEL --board B` chooses with no format flags for each model in models/
//             and each board: layer format, KV format, context (host/image/choose.ts; no measurement:
//             deterministic), or no; a second row per model for the AOT build (`--engine aot`)
// `--only NAME` rewrites one block (`--only commands` also the options tables); `--check` rewrites
// nothing and exits 1 when `commands`, an options table or `fit` is stale (the measured `plan` block
// changes from run to run by nature).
import { readFileSync, writeFileSync } from 'node:fs';
import { Command } from 'commander';
import { existsSync, readdirSync } from 'node:fs';
import { boards } from '../host/board/boards.ts';
import { VERBS } from '../host/cli/verbs.ts';
import { kvFormat } from '../host/model/kv.ts';
import { convertModel, deviceApp, planRequest } from '../host/image/pack.ts';
import { ENGINES, fmtBytes, largestContext, planBoard, withContext, type Engine } from '../host/image/plan.ts';
import { imageChoices } from '../host/image/options.ts';
import { loadSource } from '../host/image/source.ts';
import { measureHostSpeed } from '../host/image/speed.ts';
import { fromRoot } from '../host/paths.ts';
import { formatByName } from '../host/quant/formats.ts';
import { chooseFormats } from '../host/image/choose.ts';

const README = 'README.md';
// every file that may hold a block, relative to the root
const FILES = [README, 'docs/cli.md', 'docs/planner.md'];

// every verb, a verb with subcommands (`runtime build`) as one per subcommand
function cliVerbs(): Array<{ c: Command; name: string }> {
  const program = new Command().name('edge-flash');
  for (const register of VERBS) register(program);
  return program.commands.flatMap((c) => (c.commands.length ? c.commands.map((sub) => ({ c: sub, name: `${c.name()} ${sub.name()}` })) : [{ c, name: c.name() }]));
}

function commandsBlock(): string {
  const verbs = cliVerbs();
  const rows = verbs.map(({ c, name }) => {
    const args = c.registeredArguments.map((a) => (a.required ? `<${a.name()}>` : `[${a.name()}]`));
    const opts = c.options.filter((o) => o.long !== '--help').map((o) => {
      const name = o.long ?? o.short!;
      const arg = /<([^>]+)>/.exec(o.flags)?.[1];
      const text = `${name}${arg ? ` ${arg}` : ''}`;
      return o.mandatory ? text : `[${text}]`;
    });
    const usage = `edge-flash ${name} ${[...args, ...opts].join(' ')}`.replace(/\|/g, '\\|');
    return `| \`${usage}\` | ${c.description().replace(/\|/g, '\\|')} |`;
  });
  return ['| command | what it does |', '| --- | --- |', ...rows].join('\n');
}

// One verb's options: flag, default, description (commander's own).
function optionsBlock(verb: string): string {
  const v = cliVerbs().find((x) => x.name === verb);
  if (!v) throw new Error(`docs-figures: no verb '${verb}' for an options block (verbs: ${cliVerbs().map((x) => x.name).join(', ')})`);
  const cell = (t: string) => t.replace(/\|/g, '\\|');
  const rows = v.c.options.filter((o) => o.long !== '--help').map((o) => {
    const d = o.defaultValue;
    const def = d === undefined || typeof d === 'boolean' ? '' : `\`${cell(String(d))}\``;
    return `| \`${cell(o.flags)}\` | ${def} | ${cell(o.description)} |`;
  });
  const args = v.c.registeredArguments.map((a) => `| \`${cell(a.required ? `<${a.name()}>` : `[${a.name()}]`)}\` | | ${cell(a.description || '')} |`);
  return ['| option | default | what it does |', '| --- | --- | --- |', ...args, ...rows].join('\n');
}

// The demo models with the flags the README gives them, on every board.
const DEMOS = [
  { dir: 'kjv-esp32-260k', quant: 'tb1', kv: 'int4' },
  { dir: 'kjv-s3-3m', quant: 'tb1', kv: 'int4' },
  { dir: 'kjv-rpi-15m', quant: 'tb1', kv: 'int8' },
];

async function planBlock(log: (s: string) => void): Promise<string> {
  const rows: string[] = [];
  const fmtRate = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toPrecision(2));
  for (const d of DEMOS) {
    const src = loadSource(fromRoot('models', d.dir, 'model.bin'));
    const kv = kvFormat(d.kv)!;
    const { model } = convertModel(src.model, { quant: formatByName(d.quant)! });
    const seqLen = model.config.seqLen;
    const speeds = new Map<number, Awaited<ReturnType<typeof measureHostSpeed>>>();
    const speedAt = async (ctx: number, m: typeof model) => {
      if (!speeds.has(ctx)) speeds.set(ctx, await measureHostSpeed(m, kv, 'i8'));
      return speeds.get(ctx)!;
    };
    // the AOT build's estimate (plan --engine aot): its own fit, the same measurement at its context
    const aotRate = async (req: ReturnType<typeof planRequest>): Promise<string> => {
      const r = { ...req, engine: 'aot' as const };
      let ctx = seqLen;
      if (!planBoard(r).fits) ctx = largestContext(r, seqLen);
      if (ctx === 0) return 'no fit';
      const at = { ...r, model: withContext(r.model, ctx) };
      const s = await speedAt(ctx, at.model);
      if ('error' in s) return 'no wasm3 here';
      const est = planBoard({ ...at, speed: s }).tokPerSec;
      if (!est) return 'calibration spread over 25 %: rerun quiet';
      return `${fmtRate(est.value)}${ctx < seqLen ? ` (ctx ${ctx})` : ''}`;
    };
    let first = true;
    for (const board of boards()) {
      log(`docs-figures: plan ${d.dir} on ${board.name}`);
      const req = planRequest(model, { board, kv, act: 'i8', app: deviceApp() }, 1024);
      let plan = planBoard(req);
      let fits = 'yes';
      if (!plan.fits) {
        const ctx = largestContext(req, seqLen);
        if (ctx === 0) {
          rows.push(`| ${first ? `${d.dir} (ctx ${seqLen}, ${d.kv} KV)` : ''} | ${board.name} | no: ${plan.problems[0].split(':')[0]} | | | | ${await aotRate(req)} |`);
          first = false;
          continue;
        }
        fits = `at ctx <= ${ctx}`;
        plan = planBoard({ ...req, model: withContext(req.model, ctx) });
      }
      const ctx = plan.request.model.config.seqLen;
      const s = await speedAt(ctx, plan.request.model);
      let rate = 'no wasm3 here';
      if (!('error' in s)) {
        plan = planBoard({ ...plan.request, speed: s });
        rate = plan.tokPerSec ? `${fmtRate(plan.tokPerSec.value)} (±${((s.spread ?? 0) * 50).toFixed(0)} %)` : 'calibration spread over 25 %: rerun quiet';
      }
      const streamed = plan.runtime.tensors.every((t) => t.resident) ? 'all resident' : fmtBytes(plan.streamedBytesPerToken);
      rows.push(`| ${first ? `${d.dir} (ctx ${seqLen}, ${d.kv} KV)` : ''} | ${board.name} | ${fits} | ${fmtBytes(plan.linear)} | ${streamed} | ${rate} | ${await aotRate(req)} |`);
      first = false;
    }
  }
  return ['| model | board | fits | linear memory | streamed a token | est. tok/s (± half the calibration spread) | AOT est. tok/s (plan --engine aot) |', '| --- | --- | --- | --- | --- | --- | --- |', ...rows].join('\n');
}

// A model folder's weights: model.bin, or model.gguf where that is all it holds (the F16 fp twins).
const weightsOf = (dir: string) => ['model.bin', 'model.gguf'].map((f) => fromRoot('models', dir, f)).find((p) => existsSync(p));

function fitBlock(log: (s: string) => void): string {
  const models = readdirSync(fromRoot('models')).filter((d) => weightsOf(d)).sort();
  const all = boards();
  const rows = models.flatMap((dir) => {
    log(`docs-figures: fit ${dir}`);
    const src = loadSource(weightsOf(dir)!);
    // `pack MODEL --board B` with no format flags: the planner's choice (host/image/choose.ts), or no
    const cells = (engine: Engine) => all.map((board) => {
      const pick = chooseFormats(src.model, imageChoices({ board: board.name }), {}, { engine });
      if (!pick) return 'no';
      const streams = pick.plan.runtime.tensors.every((t) => t.resident) ? '' : `, streams ${fmtBytes(pick.plan.streamedBytesPerToken)}`;
      return `${pick.quant.name}, ${pick.kv.name}, ctx ${pick.ctx}${streams}`;
    });
    const label = `${dir} (ctx ${src.model.config.seqLen})`;
    return ENGINES.map((e) => `| ${e === 'wasm3' ? label : `${dir}, --engine aot`} | ${cells(e).join(' | ')} |`);
  });
  return [`| model | ${all.map((b) => b.name).join(' | ')} |`, `| --- |${all.map(() => ' --- |').join('')}`, ...rows].join('\n');
}

function replaceBlock(text: string, name: string, body: string, file = README): string {
  const open = `<!-- figures: ${name} -->`, close = `<!-- end figures: ${name} -->`;
  const a = text.indexOf(open), b = text.indexOf(close);
  if (a < 0 || b < a) throw new Error(`${file} has no ${open} ... ${close} block`);
  return `${text.slice(0, a + open.length)}\n${body}\n${text.slice(b)}`;
}

// the options blocks of one file's text, each rewritten
function withOptions(text: string, file: string): string {
  for (const m of [...text.matchAll(/<!-- figures: options ([a-z0-9 -]+?) -->/g)]) text = replaceBlock(text, `options ${m[1]}`, optionsBlock(m[1]), file);
  return text;
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const check = args.includes('--check');
  const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined;
  const log = (s: string) => process.stderr.write(s + '\n');
  const before = new Map(FILES.map((f) => [f, readFileSync(fromRoot(f), 'utf8')]));
  // the CLI's tables first (commands and every options block), then the planner's
  const commands = new Map(before);
  if (!only || only === 'commands') {
    commands.set(README, replaceBlock(commands.get(README)!, 'commands', commandsBlock()));
    for (const f of FILES) commands.set(f, withOptions(commands.get(f)!, f));
  }
  const after = new Map(commands);
  if (!only || only === 'fit') after.set(README, replaceBlock(after.get(README)!, 'fit', fitBlock(log)));
  if (check) {
    const staleCommands = FILES.filter((f) => commands.get(f) !== before.get(f));
    const staleFit = after.get(README) !== commands.get(README);
    if (staleCommands.length) log(`docs-figures: the command or options tables of ${staleCommands.join(', ')} are stale: run \`npm run docs:figures -- --only commands\``);
    if (staleFit) log('docs-figures: the README\'s fit table is stale: run `npm run docs:figures -- --only fit`');
    if (staleCommands.length || staleFit) return 1;
    log(`docs-figures: the README's ${only ? `${only} table matches` : 'command table matches the CLI (and every options table), its fit table the planner'}`);
    return 0;
  }
  if (!only || only === 'plan') after.set('docs/planner.md', replaceBlock(after.get('docs/planner.md')!, 'plan', await planBlock(log), 'docs/planner.md'));
  for (const f of FILES) {
    if (after.get(f) === before.get(f)) continue;
    writeFileSync(fromRoot(f), after.get(f)!);
    log(`docs-figures: ${f} rewritten`);
  }
  if (FILES.every((f) => after.get(f) === before.get(f))) log('docs-figures: every block unchanged');
  return 0;
}

process.exitCode = await main();
