const SAFE_WORD = /^[A-Za-z0-9_./:=,@%+-]+$/;

/** POSIX shell quoting, for commands run by `/bin/sh -c` and for commands a user copies from a message. */
export function shellQuote(word: string): string {
  return SAFE_WORD.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
