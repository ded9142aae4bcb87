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

// What a failed file operation says to a user: the errno code as words (EISDIR: "is a directory").
const ERRNO_WORDS: Record<string, string> = {
  ENOENT: 'no such file', EISDIR: 'is a directory', ENOTDIR: 'not a directory', EACCES: 'permission denied',
  EPERM: 'operation not permitted', EEXIST: 'already exists', ENOSPC: 'no space left on the device', EROFS: 'read-only file system',
  EMFILE: 'too many open files', ELOOP: 'too many symbolic links', ENAMETOOLONG: 'file name too long', EBUSY: 'busy',
};
export function errnoText(e: unknown): string {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (code && ERRNO_WORDS[code]) return ERRNO_WORDS[code];
  return code ?? (e as Error)?.message ?? String(e);
}
