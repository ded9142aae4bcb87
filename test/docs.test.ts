// The manual's links: every relative link of README.md, CHANGELOG.md and docs/*.md names a file of the
// repository, and its #anchor a heading of that file (GitHub's slugs), so that moving a section between
// pages cannot leave a dead link. And the README stays a manual: under 400 lines, a contents line that
// reaches every journey step.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fromRoot } from '../host/paths.ts';

const pages = ['README.md', 'CHANGELOG.md', ...readdirSync(fromRoot('docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

// GitHub's heading anchors: lower case, punctuation dropped (but - and _), spaces to -, repeats numbered
function anchors(md: string): Set<string> {
  const out = new Set<string>();
  const seen = new Map<string, number>();
  let fence = false;
  for (const line of md.split('\n')) {
    if (/^```/.test(line)) fence = !fence;
    const h = !fence && /^#{1,6} (.*)$/.exec(line);
    if (!h) continue;
    const base = h[1].trim().toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, '').replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n ? `${base}-${n}` : base);
  }
  return out;
}

function links(md: string): string[] {
  const body = md.replace(/```[^]*?```/g, '').replace(/`[^`\n]*`/g, '');
  return [...body.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]).filter((l) => !/^[a-z]+:/.test(l));
}

test('every relative link names a file, and every anchor a heading of it', () => {
  const dead: string[] = [];
  for (const page of pages) {
    const text = readFileSync(fromRoot(page), 'utf8');
    for (const link of links(text)) {
      const [path, anchor] = link.split('#');
      const target = path ? join(dirname(fromRoot(page)), path) : fromRoot(page);
      if (!existsSync(target)) { dead.push(`${page}: ${link} (no ${relative(fromRoot(), target)})`); continue; }
      if (anchor && target.endsWith('.md') && !anchors(readFileSync(target, 'utf8')).has(anchor)) dead.push(`${page}: ${link} (no heading #${anchor})`);
    }
  }
  assert.equal(dead, []);
});

test('the README is a manual: under 400 lines, its contents reach the journey, every docs page is linked', () => {
  const readme = readFileSync(fromRoot('README.md'), 'utf8');
  assert.ok(readme.split('\n').length < 400, `${readme.split('\n').length} lines`);
  const toc = readme.split('\n').find((l) => l.startsWith('**Contents:**'));
  assert.ok(toc, 'no contents line');
  for (const step of ['1-a-virtual-board', '2-pack-a-model-for-the-board', '3-flash-it', '4-chat', '5-a-plain-terminal', '6-a-real-esp32', '7-a-raspberry-pi']) {
    assert.ok(readme.includes(`(#${step})`) && anchors(readme).has(step), step);
  }
  // the two commands come first, before the journey
  assert.ok(readme.indexOf('npm ci && npm start') < readme.indexOf('## The journey'));
  assert.ok(readme.indexOf('npm ci && npm test') < readme.indexOf('## The journey'));
  const linked = new Set(links(readme).map((l) => l.split('#')[0]));
  const unlinked = readdirSync(fromRoot('docs')).filter((f) => f.endsWith('.md') && !linked.has(`docs/${f}`));
  assert.equal(unlinked, []);
});

test('a dead link and a wrong anchor are found (the checker itself)', () => {
  assert.ok(anchors('# A b\n## The virtual board: `edge-flash sim`\n```\n# not a heading\n```\n## A b').has('the-virtual-board-edge-flash-sim'));
  assert.ok(anchors('# A b\n## A b').has('a-b-1'));
  assert.not.ok(anchors('```\n# not a heading\n```').has('not-a-heading'));
  assert.equal(links('see [x](docs/x.md#y), [web](https://e.org) and `[no](code.md)`'), ['docs/x.md#y']);
});

test.run();
