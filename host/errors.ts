// The one user-facing error type: one line on stderr, exit code 2 (like esptool's FatalError).
// Anything else that escapes is a bug and is reported as such.

export class UserError extends Error {
  readonly hint?: string;
  constructor(message: string, hint?: string) {
    super(message);
    this.name = 'UserError';
    this.hint = hint;
  }
}

export const EXIT_USER_ERROR = 2;
