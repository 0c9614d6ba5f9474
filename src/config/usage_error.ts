/**
 * A mistake on the command line. main.ts prints its message as one line on stderr,
 * prefixed with `kvstore: `, and exits with status 2.
 *
 * @module
 */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}
