/**
 * `kvstore health`: asks a node's standard gRPC health service whether it serves, like
 * `etcdctl endpoint health` or grpc-health-probe. Exit 0 when SERVING, 1 when not, 3
 * when the node cannot be reached. `--watch` prints every change until the node ends
 * the stream (it does on shutdown) or the command is interrupted.
 *
 * @module
 */

import { HealthClient, type ServingStatus } from "../health_client.ts";
import { type ClientCommand, EXIT_NOT_FOUND, EXIT_OK } from "../command.ts";

export const health: ClientCommand = {
  name: "health",
  args: "",
  summary: "Check whether the node is SERVING (exit 0) or NOT_SERVING (exit 1), via grpc.health.v1.",
  details:
    "A replica is NOT_SERVING until its first sync with the master; every node turns NOT_SERVING when it starts " +
    'to shut down. The service "" means the node as a whole.',
  arity: [0, 0],
  flags: [
    { name: "service", type: "string", valueName: "NAME", help: 'Service to ask about (default "", the node)' },
    { name: "watch", type: "boolean", help: "Print each status change until the node ends the stream" },
  ],
  async run(context) {
    const service = (context.flags.service as string | undefined) ?? "";
    const client = new HealthClient(context.endpoint, { deadlineMs: context.timeoutMs });
    const show = (status: ServingStatus) =>
      context.print(
        context.json
          ? { endpoint: context.endpoint, service, status, at: new Date().toISOString() }
          : context.flags.watch === true
          ? `${new Date().toISOString()} ${status}`
          : status,
      );
    try {
      if (context.flags.watch !== true) {
        const status = await client.check(service);
        show(status);
        return status === "SERVING" ? EXIT_OK : EXIT_NOT_FOUND;
      }
      let last = "UNKNOWN" as ServingStatus;
      // Printing happens in the stream's callback, where a throw would end the process: a
      // status that cannot be printed (stdout full or gone) ends the watch, and the
      // command then fails with it as any command's output does.
      let outputFailure: { error: unknown } | null = null;
      const watch = client.watch(service, (status) => {
        last = status;
        try {
          show(status);
        } catch (error) {
          outputFailure ??= { error };
          watch.cancel();
        }
      });
      // Ctrl-C ends the watch: as a SIGINT on its own, as the shell's interruption in it.
      const interrupt = () => watch.cancel();
      Deno.addSignalListener("SIGINT", interrupt);
      context.signal.addEventListener("abort", interrupt);
      try {
        await watch.ended;
      } finally {
        Deno.removeSignalListener("SIGINT", interrupt);
        context.signal.removeEventListener("abort", interrupt);
      }
      if (outputFailure !== null) throw (outputFailure as { error: unknown }).error;
      return last === "SERVING" ? EXIT_OK : EXIT_NOT_FOUND;
    } finally {
      client.close();
    }
  },
};
