/**
 * Yielding to the event loop from long work.
 *
 * An `await` on a promise that is already settled (or that settles in a microtask)
 * does not let the event loop run: network callbacks wait until the whole chain of
 * microtasks is done. Work that must share the loop with requests (a snapshot writing a
 * million keys, a fullSync streaming them) awaits {@linkcode nextTurn} between bounded
 * chunks instead of relying on I/O to yield, which a synchronous write does not.
 *
 * @module
 */

import { setImmediate } from "node:timers";

/** Resolves on the next turn of the event loop, after the I/O callbacks already due. */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
