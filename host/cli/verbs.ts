// The registry of CLI verbs: one line per verb, one file per verb.
import type { Command } from 'commander';
import { registerBench } from './bench.ts';
import { registerRun } from './run.ts';

export const VERBS: ReadonlyArray<(program: Command) => void> = [
  registerBench,
  registerRun,
];
