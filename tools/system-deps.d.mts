// Types for tools/system-deps.mjs (plain JavaScript: it runs before `npm ci` has brought tsx).
export interface Machine {
  arch: string;
  uid: number;
  hasApt(): boolean;
  command(name: string): boolean;
  file(path: string): boolean;
  glob(pattern: string): boolean;
  lib(name: string): boolean;
  sh(line: string): boolean;
  gccMajor(): number | string | undefined;
  /** the machine asked again after an install (a real machine's answers are cached) */
  refresh?(): Machine;
}
export interface SystemDep {
  tool: string;
  check: { commands?: string[]; files?: string[]; globs?: string[]; libs?: string[]; sh?: string };
  packages: string[] | ((m: Machine) => string[]);
  why: string;
  /** not Debian's to give (Rust): what to do */
  hint?: string;
  /** checked on x86-64 only */
  x86_64?: boolean;
  /** the CLI itself needs it (npm start's set-up) */
  start?: boolean;
}
export interface SetupPlan {
  action: 'none' | 'install' | 'stop' | 'warn';
  packages: string[];
  missing: string[];
  hints?: string[];
  command?: string[];
  line: string;
}
export const SYSTEM_DEPS: SystemDep[];
export function realMachine(): Machine;
export function present(dep: SystemDep, m: Machine): boolean;
export function missingDeps(m: Machine, deps?: SystemDep[]): SystemDep[];
export function packagesFor(rows: SystemDep[], m: Machine): string[];
export function setupPlan(m: Machine, deps?: SystemDep[]): SetupPlan;
export const START_DEPS: SystemDep[];
export function setUp(m?: Machine, log?: (s: string) => void, exec?: (argv: string[], timeoutMs: number) => number, deps?: SystemDep[]): number;
export function setUpStart(m?: Machine, log?: (s: string) => void, exec?: (argv: string[], timeoutMs: number) => number, has?: (path: string) => boolean, build?: (step: string) => number): number;
