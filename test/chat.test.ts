// Chat turns (assembly/model/chat.ts, host/model/generate.ts chat, `run -m chat`): a reply ends at the
// model's BOS/EOS, at --reply-tokens or at the context's end, then the next prompt comes; a full
// context starts a new conversation and says so; -i answers and exits without reading stdin; the
// guide prompts are not printed when stdin is not a terminal.
import { spawnSync } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModel } from '../host/formats/index.ts';
import { CHAT_CONTEXT_END, CHAT_CONTEXT_FULL, CHAT_END_TEXT, CHAT_REPLY_LIMIT, ModelRuntime } from '../host/model/runtime.ts';
import { samplerFromCli } from '../host/model/sampler.ts';
import { TokenizerRef, tokenizerImage } from '../host/model/tokenizer.ts';
import { fromRoot } from '../host/paths.ts';
import { testEngines } from './helpers.ts';

const engines = await testEngines();
const path = fromRoot('models', 'kjv-esp32-260k', 'model.bin');
const model = loadModel(path);
const ref = new TokenizerRef(model.tokenizer!);
const enc = (s: string) => new TextEncoder().encode(s);

function runtime(engine: (typeof engines)[number]): ModelRuntime {
  const rt = ModelRuntime.create(model, engine, { tokenizerImage: tokenizerImage(model.tokenizer!), textBytes: 1024 });
  rt.setSampler(samplerFromCli(0, 0.9, 1));
  return rt;
}

// One turn through the app: the bytes printed and the end code.
function turn(rt: ModelRuntime, sys: string, user: string, limit: number): { text: string; end: number; n: number } {
  const n = rt.chatTurn(enc(sys), enc(user), limit);
  if (n < 0) return { text: '', end: n, n };
  const out: Uint8Array[] = [];
  for (;;) {
    const r = rt.chatNext();
    if (typeof r === 'number') return { text: Buffer.concat(out).toString('latin1'), end: r, n };
    out.push(r);
  }
}

// run.c's chat loop on the host for one first turn (its tokenizer, the app's forward and sampler):
// the reference the app's turn must match byte for byte until the reply ends.
function runcFirstTurn(rt: ModelRuntime, rendered: string, limit: number): string {
  const prompt = ref.encode(rendered, true, false);
  let next = 0, pos = 0, replies = 0;
  const out: Uint8Array[] = [];
  for (let i = 0; ; i++) {
    const token = i < prompt.length ? prompt[i] : next;
    next = rt.step(token, pos++);
    if (i + 1 < prompt.length) continue;
    if (next === ref.eos || next === ref.bos) break;
    out.push(ref.decode(token, next));
    if (++replies >= limit) break;
  }
  return Buffer.concat(out).toString('latin1');
}

for (const engine of engines) {
  test(`${engine.name}: the app renders the template and tokenizes as run.c does; the first reply is run.c's`, () => {
    const rt = runtime(engine);
    try {
      const a = turn(rt, 'You are kind.', 'Who made the earth?', 40);
      assert.is(a.n, ref.encode('[INST] <<SYS>>\nYou are kind.\n<</SYS>>\n\nWho made the earth? [/INST]', true, false).length);
      rt.close();
      const rt2 = runtime(engine);
      try {
        assert.is(a.text, runcFirstTurn(rt2, '[INST] <<SYS>>\nYou are kind.\n<</SYS>>\n\nWho made the earth? [/INST]', 40));
      } finally {
        rt2.close();
      }
    } finally {
      rt.close();
    }
  });

  test(`${engine.name}: a reply ends at the model's end of text, at the token limit, at the context's end`, () => {
    const rt = runtime(engine);
    try {
      rt.chatReset(0);
      const free = turn(rt, '', 'Who made the earth?', 0);
      assert.is(free.end, CHAT_END_TEXT, 'this model ends its verses with BOS');
      assert.not.match(free.text, /<s>|<\/s>/);
      // the next turn's system prompt is ignored (not the first turn), and its template is the short one
      const limited = turn(rt, 'ignored', 'And then?', 3);
      assert.is(limited.end, CHAT_REPLY_LIMIT);
      assert.is(limited.n, ref.encode('[INST] And then? [/INST]', true, false).length);
      const ctx = ref.encode('[INST] Who made the earth? [/INST]', true, false).length + 3;
      rt.chatReset(ctx);
      const full = turn(rt, '', 'Who made the earth?', 0);
      assert.is(full.end, CHAT_CONTEXT_END);
      assert.is(rt.chatPos(), ctx);
      assert.is(rt.chatTurn(enc(''), enc('Again?'), 0), CHAT_CONTEXT_FULL);
      rt.chatReset(ctx);
      assert.ok(rt.chatTurn(enc(''), enc('Again?'), 0) > 0);
    } finally {
      rt.close();
    }
  });
}

function cli(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [fromRoot('bin', 'edge-flash.js'), 'run', path, '-m', 'chat', '-t', '0', ...args], { encoding: 'latin1', input });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('-i answers that prompt and exits without reading stdin; no guide prompts without a terminal', () => {
  const r = spawnSync(process.execPath, [fromRoot('bin', 'edge-flash.js'), 'run', path, '-m', 'chat', '-t', '0', '-i', 'Who made the earth?'], { encoding: 'latin1', stdio: ['ignore', 'pipe', 'pipe'] });
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /^Assistant: .*\w/);
  assert.is((r.stdout.match(/Assistant: /g) ?? []).length, 1);
  assert.not.match(r.stdout, /Enter system prompt|User:/);
  assert.match(r.stderr, /achieved tok\/s: [1-9]/);
  // given stdin lines too, -i still answers only its prompt
  const s = cli(['-i', 'Who made the earth?'], 'More\nAnd more\n');
  assert.is(s.out, r.stdout);
});

test('turns from a pipe: one reply per line, each ended, then the next; a full context starts a new conversation', () => {
  const r = cli(['-y', 'You are kind.', '--reply-tokens', '8'], 'Hello there\nAnd then\nWhy\n');
  assert.is(r.code, 0, r.err);
  assert.not.match(r.out, /User:|Enter system prompt/);
  const replies = r.out.split('\n').filter((l) => l.startsWith('Assistant: '));
  assert.is(replies.length, 3, r.out);
  const long = cli(['-y', 'You are kind.', '-n', '90', '--reply-tokens', '0'], 'Hello there\nAnd then\nWhy\n');
  assert.is(long.code, 0, long.err);
  assert.is(long.out.split('\n').filter((l) => l.startsWith('Assistant: ')).length, 3, long.out);
  assert.match(long.err, /a new conversation starts/);
  const bad = cli(['--reply-tokens', 'abc'], '');
  assert.is(bad.code, 2);
  assert.match(bad.err, /^edge-flash: error: --reply-tokens must be an integer of at least 0, got 'abc'/);
});

test.run();
