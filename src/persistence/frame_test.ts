import assert from "node:assert/strict";
import { crc32c } from "./crc32c.ts";
import { FRAME_CONTINUES, FRAME_HEADER_BYTES, FrameEncoder, FrameScanner, type FrameStep } from "./frame.ts";
import type { FileReader } from "./storage.ts";

const OPTIONS = { readChunkBytes: 7, payloadBytesMax: 1024 };

function memoryReader(bytes: Uint8Array): FileReader {
  return {
    size: bytes.length,
    readAt: (position, length) => Promise.resolve(bytes.slice(position, position + length)),
    close: () => Promise.resolve(),
  };
}

/** Three frames with payloads "one", "two two", "three three three". */
function threeFrames(): { bytes: Uint8Array; offsets: number[] } {
  const encoder = new FrameEncoder(8);
  const offsets: number[] = [];
  for (const text of ["one", "two two", "three three three"]) {
    offsets.push(encoder.length);
    encoder.begin();
    encoder.body.bytes(new TextEncoder().encode(text));
    encoder.end(text === "one" ? FRAME_CONTINUES : 0);
  }
  return { bytes: encoder.bytes().slice(), offsets };
}

async function scanAll(bytes: Uint8Array): Promise<FrameStep[]> {
  const scanner = new FrameScanner(memoryReader(bytes), 0, OPTIONS);
  const steps: FrameStep[] = [];
  while (true) {
    const step = await scanner.next();
    steps.push(step.kind === "frame" ? { ...step, payload: step.payload.slice() } : step);
    if (step.kind !== "frame") return steps;
  }
}

Deno.test("a frame header holds the length, the flags and both checksums", () => {
  const encoder = new FrameEncoder(8);
  encoder.begin();
  encoder.body.bytes(Uint8Array.of(1, 2, 3));
  encoder.end(FRAME_CONTINUES);
  const bytes = encoder.bytes();
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  assert.equal(bytes.length, FRAME_HEADER_BYTES + 3);
  assert.equal(view.getUint32(0, true), 3);
  assert.deepEqual([...bytes.subarray(4, 8)], [1, 0, 0, 0]);
  assert.equal(view.getUint32(8, true), crc32c(bytes.subarray(0, 8)));
  assert.equal(view.getUint32(12, true), crc32c(Uint8Array.of(1, 2, 3)));
});

Deno.test("frames read back in order with their flags, then the end", async () => {
  const { bytes, offsets } = threeFrames();
  const steps = await scanAll(bytes);
  assert.deepEqual(steps.map((step) => step.kind), ["frame", "frame", "frame", "end"]);
  const frames = steps.filter((step) => step.kind === "frame");
  assert.deepEqual(frames.map((frame) => new TextDecoder().decode(frame.payload)), [
    "one",
    "two two",
    "three three three",
  ]);
  assert.deepEqual(frames.map((frame) => frame.offset), offsets);
  assert.deepEqual(frames.map((frame) => frame.flags), [FRAME_CONTINUES, 0, 0]);
});

Deno.test("a file cut at any byte of its last frame reads as the frames before and a torn tail there", async () => {
  const { bytes, offsets } = threeFrames();
  const last = offsets[2];
  for (let length = last + 1; length < bytes.length; length++) {
    const steps = await scanAll(bytes.subarray(0, length));
    assert.equal(steps.length, 3, `cut at ${length}`);
    assert.deepEqual(steps.at(-1)?.kind, "torn", `cut at ${length}`);
    assert.equal(steps.at(-1)?.offset, last, `cut at ${length}`);
  }
});

Deno.test("a damaged payload in the last frame is a torn tail; before an intact frame it is corruption", async () => {
  const { bytes, offsets } = threeFrames();
  // A torn write leaves a short file, never a damaged header, so a header that fails its
  // check is corruption even at the end; a last payload that fails is a torn tail (the
  // file system kept the length but not all the data).
  for (let position = offsets[2]; position < bytes.length; position++) {
    const damaged = bytes.slice();
    damaged[position] ^= 0x40;
    const last = (await scanAll(damaged)).at(-1)!;
    const inHeaderCheck = position < offsets[2] + 12;
    assert.equal(last.kind, inHeaderCheck ? "corrupt" : "torn", `byte ${position}`);
    assert.equal(last.offset, offsets[2], `byte ${position}`);
  }
  for (let position = offsets[1]; position < offsets[2]; position++) {
    const damaged = bytes.slice();
    damaged[position] ^= 0x01;
    const last = (await scanAll(damaged)).at(-1)!;
    assert.equal(last.kind, "corrupt", `byte ${position}`);
    assert.equal(last.offset, offsets[1], `byte ${position}`);
  }
});

Deno.test("zeros after the last frame are a torn tail, not corruption", async () => {
  const { bytes, offsets } = threeFrames();
  const padded = new Uint8Array(bytes.length + 40);
  padded.set(bytes);
  const steps = await scanAll(padded);
  assert.equal(steps.at(-1)?.kind, "torn");
  assert.equal(steps.at(-1)?.offset, bytes.length);
  const zeroedLast = bytes.slice();
  zeroedLast.fill(0, offsets[2]);
  assert.equal((await scanAll(zeroedLast)).at(-1)?.kind, "torn");
});

Deno.test("a header that passes its check but declares an impossible length is corruption", async () => {
  const encoder = new FrameEncoder(8);
  encoder.begin();
  encoder.body.bytes(new Uint8Array(2000));
  encoder.end();
  const steps = await scanAll(encoder.bytes().slice());
  assert.deepEqual(steps.map((step) => step.kind), ["corrupt"]);
  assert.match((steps[0] as { detail: string }).detail, /length 2000/);
});

Deno.test("a frame header cut short by zeros to the end of the file is a torn tail", async () => {
  const { bytes, offsets } = threeFrames();
  for (let kept = 1; kept < FRAME_HEADER_BYTES; kept++) {
    const padded = new Uint8Array(offsets[2] + kept + 30);
    padded.set(bytes.subarray(0, offsets[2] + kept));
    const last = (await scanAll(padded)).at(-1)!;
    assert.equal(last.kind, "torn", `${kept} header bytes kept`);
    assert.equal(last.offset, offsets[2]);
  }
});

Deno.test("a read that fails names the file and the offset, and keeps the OS's error code", async () => {
  const { bytes, offsets } = threeFrames();
  const reader: FileReader = {
    size: bytes.length,
    readAt: (position, length) => {
      if (position < offsets[1]) return Promise.resolve(bytes.slice(position, position + length));
      return Promise.reject(Object.assign(new Error("Input/output error (os error 5)"), { code: "EIO" }));
    },
    close: () => Promise.resolve(),
  };
  const scanner = new FrameScanner(
    reader,
    0,
    { readChunkBytes: offsets[1], payloadBytesMax: 1024 },
    "/data/kvstore.aof",
  );
  assert.equal((await scanner.next()).kind, "frame");
  await assert.rejects(scanner.next(), (error: Error & { code?: string }) => {
    assert.equal(
      error.message,
      `Cannot read /data/kvstore.aof at offset ${offsets[1]}: Input/output error (os error 5)`,
    );
    assert.equal(error.code, "EIO");
    return true;
  });
});
