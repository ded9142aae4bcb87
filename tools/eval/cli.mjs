// The eval scripts' one way to call the CLI: the command on stderr, its --json result parsed, a
// failing command thrown with its stderr (a table row must not be made of a failed run).
import { spawnSync } from 'node:child_process';

export function cli(args) {
  process.stderr.write(`$ edge-flash ${args.join(' ')}\n`);
  const r = spawnSync(process.execPath, ['bin/edge-flash.js', ...args], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`edge-flash ${args.join(' ')}: exit ${r.status}\n${r.stderr}`);
  return JSON.parse(r.stdout);
}
