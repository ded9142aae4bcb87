// The version line: the package version and the wasm3 version that the addon carries.
import { readFileSync } from 'node:fs';
import { fromRoot } from './paths.ts';

export function packageVersion(): string {
  return JSON.parse(readFileSync(fromRoot('package.json'), 'utf8')).version;
}

export function versionLine(): string {
  return `edge-flash ${packageVersion()}`;
}
