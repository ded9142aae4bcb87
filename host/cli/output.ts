// stdout as the verbs write their results: a reader that closed the pipe (`edge-flash run ... | head`)
// stops the verb at its next write, instead of letting it compute what nobody reads (a generation
// loop is synchronous, so the stream's 'error' event would only come after it ran to -n). main()
// ends such a run quietly with exit 0, as `head` users expect.
export class OutputClosed extends Error {
  constructor() {
    super('stdout was closed by its reader');
    this.name = 'OutputClosed';
  }
}

// A write to a closed pipe fails at once (pipes and files are written synchronously on POSIX), and
// marks the stream errored before this returns.
export function writeOut(b: string | Uint8Array): void {
  const s = process.stdout;
  if (s.errored || s.destroyed) throw new OutputClosed();
  s.write(b);
  if (s.errored || s.destroyed) throw new OutputClosed();
}
