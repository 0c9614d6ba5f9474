import assert from "node:assert/strict";
import { crc32c } from "./crc32c.ts";
import {
  DISK_SECTOR_BYTES,
  FRAME_CONTINUES,
  FRAME_HEADER_BYTES,
  FrameEncoder,
  FrameScanner,
  type FrameStep,
} from "./frame.ts";
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

Deno.test("a flipped bit is corruption anywhere, even in the last frame", async () => {
  const { bytes, offsets } = threeFrames();
  // A torn write leaves a short file or zeros; a frame whose bytes are all there but
  // wrong was damaged after it was written, and may hold acknowledged, fsynced writes,
  // so it is never cut off as a torn tail.
  for (let position = offsets[1]; position < bytes.length; position++) {
    const damaged = bytes.slice();
    damaged[position] ^= 0x40;
    const last = (await scanAll(damaged)).at(-1)!;
    const frame = position < offsets[2] ? offsets[1] : offsets[2];
    assert.equal(last.kind, "corrupt", `byte ${position}`);
    assert.equal(last.offset, frame, `byte ${position}`);
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

/** Frames of 200-byte payloads from offset 0 to past `bytes`, as a log's tail after a
 * power cut would hold them; returns the bytes and each frame's offset. */
function framesOver(bytes: number): { bytes: Uint8Array; offsets: number[] } {
  const encoder = new FrameEncoder(8);
  const offsets: number[] = [];
  for (let i = 0; encoder.length < bytes; i++) {
    offsets.push(encoder.length);
    encoder.begin();
    encoder.body.bytes(new TextEncoder().encode(`frame ${i} `.padEnd(200, "x")));
    encoder.end();
  }
  return { bytes: encoder.bytes().slice(), offsets };
}

/** `bytes` with every byte from `from` on set to zero, and `extra` zeros after. */
function zeroedFrom(bytes: Uint8Array, from: number, extra = 0): Uint8Array {
  const zeroed = new Uint8Array(bytes.length + extra);
  zeroed.set(bytes.subarray(0, from));
  return zeroed;
}

Deno.test("a tail lost to zeros from a frame's start or a sector boundary is a torn tail at that frame", async () => {
  const { bytes, offsets } = framesOver(4 * DISK_SECTOR_BYTES);
  const starts = [...offsets.slice(1), DISK_SECTOR_BYTES, 2 * DISK_SECTOR_BYTES, 3 * DISK_SECTOR_BYTES];
  for (const from of starts) {
    for (const extra of [0, 7, 3000]) {
      const steps = await scanAll(zeroedFrom(bytes, from, extra));
      const last = steps.at(-1)!;
      const frame = offsets.findLast((offset) => offset <= from)!;
      assert.equal(last.kind, "torn", `zeros from ${from}, ${extra} more`);
      assert.equal(last.offset, frame, `zeros from ${from}, ${extra} more`);
      assert.equal(steps.length, offsets.indexOf(frame) + 1, "every frame before it is read");
    }
  }
});

Deno.test("zeros that begin inside a frame but not at a sector boundary, or data after zeros, are corruption", async () => {
  const { bytes, offsets } = framesOver(4 * DISK_SECTOR_BYTES);
  // A disk loses whole sectors, so zeros from the middle of one, with no sector boundary
  // after it in the frame, are not a lost write: they are damage (or the frame's own zero
  // bytes after a flipped bit).
  for (const from of [offsets[1] + 5, offsets[3] + 50, DISK_SECTOR_BYTES + 1, 3 * DISK_SECTOR_BYTES + 60]) {
    const frame = offsets.findLast((offset) => offset <= from)!;
    const frameEnd = offsets[offsets.indexOf(frame) + 1];
    assert.equal(Math.floor(from / DISK_SECTOR_BYTES), Math.floor((frameEnd - 1) / DISK_SECTOR_BYTES));
    const zeroed = zeroedFrom(bytes, from, 100);
    const last = (await scanAll(zeroed)).at(-1)!;
    assert.equal(last.kind, "corrupt", `zeros from ${from}`);
    assert.equal(last.offset, frame, `zeros from ${from}`);
  }
  // A zeroed sector with data after it: damage, not a tail that never reached the disk.
  const holed = bytes.slice();
  holed.fill(0, DISK_SECTOR_BYTES, 2 * DISK_SECTOR_BYTES);
  const last = (await scanAll(holed)).at(-1)!;
  assert.equal(last.kind, "corrupt");
  assert.equal(last.offset, offsets.findLast((offset) => offset <= DISK_SECTOR_BYTES));
  // A flipped bit in the last frame, followed by zeros from the next frame on.
  const flipped = zeroedFrom(bytes, offsets.at(-1)!, 600);
  flipped[offsets.at(-2)! + 40] ^= 1;
  assert.equal((await scanAll(flipped)).at(-1)?.kind, "corrupt");
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
