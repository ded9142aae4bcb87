// The registry of CLI verbs: one line per verb, one file per verb.
import type { Command } from 'commander';
import { registerBench } from './bench.ts';
import { registerBoards } from './boards.ts';
import { registerEval } from './eval.ts';
import { registerInspect } from './inspect.ts';
import { registerKeygen } from './keygen.ts';
import { registerPack } from './pack.ts';
import { registerPlan } from './plan.ts';
import { registerQuantize } from './quantize.ts';
import { registerRun } from './run.ts';
import { registerVerify } from './verify.ts';
import { registerPorts } from './ports.ts';
import { registerFlash } from './flash.ts';
import { registerChat } from './chat.ts';
import { registerMonitor } from './monitor.ts';
import { registerSim } from './sim.ts';
import { registerDemo } from './demo.ts';
import { registerFirmware } from './firmware.ts';
import { registerRuntime } from './runtime.ts';

export const VERBS: ReadonlyArray<(program: Command) => void> = [
  registerBench,
  registerRun,
  registerPlan,
  registerPack,
  registerInspect,
  registerVerify,
  registerBoards,
  registerKeygen,
  registerQuantize,
  registerEval,
  registerPorts,
  registerFlash,
  registerChat,
  registerMonitor,
  registerSim,
  registerDemo,
  registerFirmware,
  registerRuntime,
];
