// The edge-flash CLI: a thin shell over exported functions. Each verb lives in one file under
// host/cli/ and is registered in VERBS below; results go to stdout, logs and progress to stderr.
import { Command, CommanderError } from 'commander';
import { errnoText, UserError, EXIT_USER_ERROR } from '../errors.ts';
import { versionLine } from '../version.ts';
import { OutputClosed } from './output.ts';
import { VERBS } from './verbs.ts';

export async function main(argv: string[]): Promise<number> {
  const program = new Command();
  program
    .name('edge-flash')
    .description('Run tiny quantized language models on microcontrollers and small boards, as portable WebAssembly.')
    .version(versionLine(), '-V, --version', 'print the version (and the wasm3 it carries)')
    .exitOverride()
    // commander's usage errors ("error: required option ...") as every other error: one line, exit 2
    .configureOutput({
      writeErr: (s) => process.stderr.write(s),
      outputError: (s, write) => write(`edge-flash: ${s.trim()} (run with --help for usage)\n`),
    });
  for (const register of VERBS) register(program);
  try {
    await program.parseAsync(argv, { from: 'user' });
    // a verb's verdict for scripts (`plan --check`: 1 when it does not fit)
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
      return EXIT_USER_ERROR;
    }
    // stdout closed by its reader (`| head`): it has what it wanted
    if (e instanceof OutputClosed) return 0;
    if (e instanceof UserError) {
      process.stderr.write(`edge-flash: error: ${e.message}${e.hint ? ` (${e.hint})` : ''}\n`);
      return EXIT_USER_ERROR;
    }
    const err = e as Error;
    // a file operation that no verb anticipated is still the user's file, not a bug
    if ((err as NodeJS.ErrnoException).syscall && (err as NodeJS.ErrnoException).code) {
      const f = e as NodeJS.ErrnoException;
      process.stderr.write(`edge-flash: error: cannot ${f.syscall}${f.path ? ` ${f.path}` : ''}: ${errnoText(f)}\n`);
      return EXIT_USER_ERROR;
    }
    process.stderr.write(`edge-flash: internal error: ${err.message}\n`);
    if (process.env.EDGE_FLASH_DEBUG) process.stderr.write(`${err.stack}\n`);
    return 1;
  }
}

// Only when bundled as the CLI entry (dist/cli.js); tests import main() directly.
if (process.env.EDGE_FLASH_CLI_ENTRY === '1' || import.meta.url.endsWith('/dist/cli.js')) {
  // stdout closed by the reader (`edge-flash run ... | head`): the reader has what it wanted, so end
  // quietly with 0, as `head` users expect
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
