// The version line: the package version and the wasm3 version that the addon carries.
import { readFileSync } from 'node:fs';
import { wasm3Version } from './engine/wasm3.ts';
import { fromRoot } from './paths.ts';

export function packageVersion(): string {
  return JSON.parse(readFileSync(fromRoot('package.json'), 'utf8')).version;
}

export function versionLine(): string {
  const w3 = wasm3Version();
  return `edge-flash ${packageVersion()} (wasm3 ${w3 ?? 'addon not built: V8 only'}, node ${process.versions.node}, V8 ${process.versions.v8})`;
}
