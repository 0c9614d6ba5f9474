/**
 * What to tell a client whose write was split across shards and failed on some: each
 * shard applies its part all or nothing, but the write as a whole may then be applied in
 * part. The router (router_core.ts) and the sharded client (client/sharded_client.ts)
 * word it the same way.
 *
 * @module
 */

/** The words to add to a shard's error when other shards took their parts (`sizes[i]`
 * entries went to the shard whose call ended with `outcomes[i]`), or null when none did
 * (the write was then applied nowhere and the shard's error says all). */
export function partialWriteNote(
  sizes: readonly number[],
  outcomes: readonly PromiseSettledResult<unknown>[],
): string | null {
  const written = sizes.filter((_, i) => outcomes[i].status === "fulfilled");
  if (written.length === 0) return null;
  const writtenEntries = written.reduce((sum, size) => sum + size, 0);
  const entries = sizes.reduce((sum, size) => sum + size, 0);
  const others = written.length === 1 ? "shard took its part" : "shards took theirs";
  return `${written.length} other ${others}, ${writtenEntries} of the ${entries} entries ` +
    "(an MSet across shards is not atomic: read them back)";
}
