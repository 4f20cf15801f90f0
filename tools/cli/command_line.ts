// What every ringstore command prints when its command line is refused: one
// line `ringstore: CODE: message` (then the usage), the code being
// parseArgs's (ERR_PARSE_ARGS_UNKNOWN_OPTION, …) or ERR_INVALID_ARG.
import { statSync, type Stats } from 'node:fs';

import { pathError } from '../../engine/store_error.js';

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

/**
 * What a store's path names now, or undefined if nothing: a path that
 * cannot name a file (ENOTDIR, ELOOP, ENAMETOOLONG, EACCES) is the engine's
 * ERR_STORE_PATH, as open() reports it, not Node's raw stat error.
 */
export function statStorePath(path: string, doing: string): Stats | undefined {
  try {
    return statSync(path, { throwIfNoEntry: false });
  } catch (error) {
    throw pathError(path, error, doing);
  }
}

/**
 * What a FILE argument (a dump to read or write) names now, or undefined if
 * nothing: a path that cannot name a file is ERR_INVALID_ARG naming it,
 * with the system error as cause, not Node's raw stat error.
 */
export function statFileArgument(file: string): Stats | undefined {
  try {
    return statSync(file, { throwIfNoEntry: false });
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    throw Object.assign(usageError(`FILE '${file}' cannot be used: ${typeof code === 'string' ? code : String(error)}`), { cause: error });
  }
}
