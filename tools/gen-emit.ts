// Where the generators' outputs go: written (only when they change), or with --check compared with
// the committed files and nothing written, so that a check can fail (test/run.mjs runs it before the
// build regenerates anything; CI builds with it).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export function emit(generator: string, files: readonly (readonly [path: string, text: string])[]): void {
  const check = process.argv.includes('--check');
  const stale: string[] = [];
  for (const [path, text] of files) {
    const old = existsSync(path) ? readFileSync(path, 'utf8') : null;
    if (old === text) continue;
    if (check) stale.push(path);
    else {
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, text);
    }
  }
  if (stale.length) {
    process.stderr.write(`${generator}: ${stale.join(', ')} ${stale.length === 1 ? 'is' : 'are'} not what the table generates: run \`node tools/build.mjs gen\` and commit\n`);
    process.exit(1);
  }
}

// The text between `<!-- NAME:begin -->` and `<!-- NAME:end -->` of a hand-written doc, replaced.
export function spliceDoc(path: string, name: string, body: string): string {
  const text = readFileSync(path, 'utf8');
  const begin = `<!-- ${name}:begin (generated: do not edit) -->`;
  const end = `<!-- ${name}:end -->`;
  const a = text.indexOf(begin), b = text.indexOf(end);
  if (a < 0 || b < a) throw new Error(`${path}: no ${begin} ... ${end} markers`);
  return text.slice(0, a + begin.length) + '\n' + body + text.slice(b);
}
