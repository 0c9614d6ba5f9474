/**
 * A connection storm: far more raw TCP connections than a server may keep, held open
 * while a real client tries a call, then closed. Used against a node and a router run
 * under a low open-file limit, which must refuse connections past their limit and go on
 * accepting once the storm is over.
 *
 * @module
 */

import { KvClient } from "../../src/client/client.ts";

/** Opens `count` connections to `address`, tries one call while they are held (the limit
 * may turn it away too), and closes them all. */
export async function connectionStorm(address: string, count: number): Promise<void> {
  const [hostname, port] = address.split(":");
  const storm: Deno.Conn[] = [];
  try {
    for (let i = 0; i < count; i++) storm.push(await Deno.connect({ hostname, port: Number(port) }));
    using client = new KvClient(address, { deadlineMs: 10_000, ownConnection: true });
    await client.set("during", "storm").catch(() => {});
  } finally {
    for (const connection of storm) connection.close();
  }
}
