// What every ringstore command prints when its command line is refused: one
// line `ringstore: CODE: message` (then the usage), the code being
// parseArgs's (ERR_PARSE_ARGS_UNKNOWN_OPTION, …) or ERR_INVALID_ARG.

/** A refused argument: a TypeError coded ERR_INVALID_ARG. */
export function usageError(message: string): Error {
  return Object.assign(new TypeError(message), { code: 'ERR_INVALID_ARG' });
}

/** An error a command ends with: `ringstore: CODE: message`. */
export function commandError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

/** The code of a refused command line, for the one-line error. */
export function usageCode(error: unknown): string {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : 'ERR_INVALID_ARG';
}
