import assert from "node:assert/strict";
import { mapInFlight } from "./keys.ts";

Deno.test("mapInFlight keeps at most its bound of calls running and returns results in order", async () => {
  let running = 0;
  let most = 0;
  const results = await mapInFlight(Array.from({ length: 50 }, (_, i) => i), 4, async (i) => {
    running++;
    most = Math.max(most, running);
    await new Promise((resolve) => setTimeout(resolve, i % 3));
    running--;
    return i * 2;
  });
  assert.deepEqual(results, Array.from({ length: 50 }, (_, i) => i * 2));
  assert.equal(most, 4);
  assert.deepEqual(await mapInFlight([], 4, () => Promise.resolve(1)), []);
  await assert.rejects(
    mapInFlight([1, 2, 3], 2, (i) => i === 2 ? Promise.reject(new Error("no")) : Promise.resolve(i)),
    /no/,
  );
});
