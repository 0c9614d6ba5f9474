/**
 * Replication commands: promote a replica, point a node at a master, wait for replicas.
 *
 * ```
 * $ kvstore promote --endpoint replica1:50052
 * OK promoted: replid 3f9a... from seq 1042
 * $ kvstore replicaof replica1:50052 --endpoint replica2:50053
 * OK
 * $ kvstore wait 2 1000 --endpoint master:50051
 * 2
 * ```
 *
 * @module
 */

import { WAIT_TIMEOUT_MS_MAX } from "../../config/limits.ts";
import { UsageError } from "../../config/usage_error.ts";
import { INT32_MAX } from "../client.ts";
import { type ClientCommand, EXIT_NOT_FOUND, EXIT_OK } from "../command.ts";

export const promote: ClientCommand = {
  name: "promote",
  args: "",
  summary: "Turn a replica into a master that keeps its data and starts a new history.",
  arity: [0, 0],
  async run(context) {
    const response = await context.client().promote();
    if (context.json) {
      context.print({ ...response, seq: Number(response.seq) });
    } else if (response.promoted) {
      context.print(`OK promoted: replid ${response.replid} from seq ${response.seq}`);
    } else {
      context.print(`OK already a master: replid ${response.replid} at seq ${response.seq}`);
    }
    return EXIT_OK;
  },
};

export const replicaof: ClientCommand = {
  name: "replicaof",
  args: "HOST:PORT",
  summary: "Make the node a replica of the master at HOST:PORT (its data is replaced by the master's).",
  arity: [1, 1],
  async run(context) {
    const [masterAddress] = context.positionals;
    const response = await context.client().replicaOf(masterAddress);
    context.print(context.json ? { ...response, master_address: masterAddress } : "OK");
    return EXIT_OK;
  },
};

export const wait: ClientCommand = {
  name: "wait",
  args: "NUM_REPLICAS TIMEOUT_MS",
  summary:
    "Wait until NUM_REPLICAS replicas have every write so far (0 ms: up to an hour); print how many; exit 1 if too few.",
  arity: [2, 2],
  async run(context) {
    const [replicasText, timeoutText] = context.positionals;
    const replicas = Number(replicasText);
    const timeoutMs = Number(timeoutText);
    // NUM_REPLICAS travels as an int32: a larger number would reach the master as another.
    if (!/^[0-9]+$/.test(replicasText) || replicas > INT32_MAX) {
      throw new UsageError(
        `Invalid NUM_REPLICAS ${JSON.stringify(replicasText)}: expected a whole number from 0 to ${INT32_MAX}`,
      );
    }
    if (!/^[0-9]+$/.test(timeoutText) || !Number.isSafeInteger(timeoutMs)) {
      throw new UsageError(`Invalid TIMEOUT_MS ${JSON.stringify(timeoutText)}: expected a whole number, 0 or more`);
    }
    // The call itself must outlive the wait.
    const deadlineMs = Math.max(
      context.timeoutMs,
      (timeoutMs === 0 ? WAIT_TIMEOUT_MS_MAX : timeoutMs) + context.timeoutMs,
    );
    // An interrupted wait is cancelled, so it does not hold one of the master's blocked
    // Wait slots until its timeout.
    const reached = await context.client().wait(replicas, timeoutMs, { deadlineMs, signal: context.signal });
    context.print(context.json ? { replicas: reached.replicas, seq: reached.seq } : String(reached.replicas));
    // Like `get` of a missing key: the command worked, but the answer is no.
    return reached.replicas >= replicas ? EXIT_OK : EXIT_NOT_FOUND;
  },
};
