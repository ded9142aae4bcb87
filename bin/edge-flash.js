#!/usr/bin/env node
// The edge-flash CLI entry: the bundled dist/cli.js (built by `npm run build`, run by `npm ci`).
import { existsSync } from 'node:fs';
const cli = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write('edge-flash: dist/cli.js is missing; run `npm run build` in the package folder\n');
  process.exit(2);
}
await import(cli.href);
