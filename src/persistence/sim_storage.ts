/**
 * A simulated disk for tests: a {@linkcode Storage} that keeps what was synced apart
 * from what was merely written, and can lose the latter in a power cut at any moment.
 *
 * Model (POSIX's promises, taken at their word):
 *
 * - Each file (inode) has its current bytes and its durable bytes; `sync` makes the
 *   current bytes durable.
 * - The directory maps names to inodes, and so does its durable copy; `syncDir` makes
 *   the current names durable. A file created or renamed but not dir-synced loses its
 *   name in a power cut.
 * - A power cut happens when the operation counter reaches a chosen number: that
 *   operation (an append) may have written any prefix of its bytes, then it and every
 *   later operation throws {@linkcode PowerCut}. {@linkcode SimStorage.afterPowerCut}
 *   then gives the disk a new process sees: durable names, and for each file its
 *   durable bytes, or a longer prefix of what was written (the OS flushed some of it
 *   on its own), sometimes with zeros from where the unsynced part begins, or from a
 *   sector boundary after it, to the end (a file system that extended the file and
 *   lost the data: disks lose whole sectors). A file cut shorter by `truncate` (or emptied by a `create`
 *   open) since its last sync may come back as it was before the cut: the OS wrote its
 *   bytes and size back on its own, and the cut itself never reached the disk.
 * - A capacity makes appends fail part way with "No space left on device", as a full
 *   disk does; `failSyncs` (or `failNextSyncs`, for a count), `failDirSyncs` and
 *   `failTruncates` make a file's fsync, the directory's fsync and truncate fail.
 *
 * Every operation yields a random number of microtasks, so concurrent work (a snapshot
 * next to appends) interleaves differently from seed to seed.
 *
 * @module
 */

import { DISK_SECTOR_BYTES } from "./frame.ts";
import type { FileReader, FileWriter, Storage } from "./storage.ts";

/** Thrown by every operation from the power cut on. */
export class PowerCut extends Error {
  constructor() {
    super("simulated power cut");
    this.name = "PowerCut";
  }
}

/** Thrown by every operation after {@linkcode SimStorage.halt}: the process is gone. */
export class ProcessHalted extends Error {
  constructor() {
    super("simulated process crash");
    this.name = "ProcessHalted";
  }
}

/** A small seeded generator (mulberry32): the same seed gives the same run. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Inode {
  data: Uint8Array;
  durable: Uint8Array;
  /** The bytes before the first cut that made the file shorter since its last sync
   * (null when none): what a power cut may bring back if the OS flushed them. */
  beforeCut: Uint8Array | null;
}

export interface SimStorageOptions {
  readonly random: () => number;
  /** The power fails at this operation (counting every call that changes the disk). */
  readonly powerCutAt?: number;
  /** Total bytes the disk holds; appends beyond it fail part way. */
  readonly capacityBytes?: number;
}

export class SimStorage implements Storage {
  readonly location = "/sim";
  #random: () => number;
  #dir = new Map<string, Inode>();
  #durableDir = new Map<string, Inode>();
  #operations = 0;
  #powerCutAt: number;
  #dead = false;
  #halted = false;
  capacityBytes: number;
  failSyncs = false;
  failDirSyncs = false;
  /** Makes renames fail (a full directory, an I/O error). */
  failRenames = false;
  failTruncates = false;
  /** Makes this many of the next file syncs fail (one bad moment rather than a bad disk). */
  failNextSyncs = 0;
  /** File syncs that succeeded. */
  syncs = 0;

  constructor(options: SimStorageOptions) {
    this.#random = options.random;
    this.#powerCutAt = options.powerCutAt ?? Infinity;
    this.capacityBytes = options.capacityBytes ?? Infinity;
  }

  /** Operations that changed the disk so far. */
  get operations(): number {
    return this.#operations;
  }

  get dead(): boolean {
    return this.#dead;
  }

  /** Whether {@linkcode SimStorage.halt} was called. */
  get halted(): boolean {
    return this.#halted;
  }

  /** The process dies here: no later call of it reaches the disk (its cleanup code
   * included). {@linkcode SimStorage.afterProcessCrash} gives what the next one sees. */
  halt(): void {
    this.#halted = true;
  }

  /** Schedules the power cut `count` operations from now. */
  cutPowerIn(count: number): void {
    this.#powerCutAt = this.#operations + count;
  }

  /** The disk a new process sees after the power cut (see the module doc). */
  afterPowerCut(random: () => number): SimStorage {
    const next = new SimStorage({ random });
    const survivors = new Map<Inode, Inode>();
    for (const [name, inode] of this.#durableDir) {
      let survivor = survivors.get(inode);
      if (survivor === undefined) {
        const data = survivingBytes(inode, random);
        survivor = { data, durable: data, beforeCut: null };
        survivors.set(inode, survivor);
      }
      next.#dir.set(name, survivor);
      next.#durableDir.set(name, survivor);
    }
    return next;
  }

  /** The disk a new process sees after this one crashed (the OS keeps everything). */
  afterProcessCrash(random: () => number): SimStorage {
    const next = new SimStorage({ random });
    for (const [name, inode] of this.#dir) {
      const copy = { data: inode.data.slice(), durable: inode.durable.slice(), beforeCut: null };
      next.#dir.set(name, copy);
      next.#durableDir.set(name, copy);
    }
    return next;
  }

  /** The current bytes of `name` (for tests that inspect or damage files). */
  bytes(name: string): Uint8Array | undefined {
    return this.#dir.get(name)?.data;
  }

  /** Replaces the bytes of `name`, durably (a test damaging a file). */
  setBytes(name: string, bytes: Uint8Array): void {
    const inode = { data: bytes.slice(), durable: bytes.slice(), beforeCut: null };
    this.#dir.set(name, inode);
    this.#durableDir.set(name, inode);
  }

  names(): string[] {
    return [...this.#dir.keys()].sort();
  }

  pathOf(name: string): string {
    return `${this.location}/${name}`;
  }

  async size(name: string): Promise<number | null> {
    await this.#step(false);
    return this.#dir.get(name)?.data.length ?? null;
  }

  async openReader(name: string): Promise<FileReader> {
    await this.#step(false);
    const inode = this.#dir.get(name);
    if (inode === undefined) throw new Error(`No such file: ${name}`);
    const size = inode.data.length;
    return {
      size,
      readAt: async (position, length) => {
        await this.#step(false);
        return inode.data.slice(position, Math.min(position + length, size, inode.data.length));
      },
      close: () => Promise.resolve(),
    };
  }

  async openWriter(name: string, mode: "create" | "existing"): Promise<FileWriter> {
    await this.#step(mode === "create");
    let inode = this.#dir.get(name);
    if (mode === "create") {
      // Truncating an existing file empties that inode (durably only once synced); a new
      // name gets a new inode.
      if (inode !== undefined) {
        cutTo(inode, 0);
      } else {
        inode = { data: new Uint8Array(0), durable: new Uint8Array(0), beforeCut: null };
        this.#dir.set(name, inode);
      }
    } else if (inode === undefined) {
      throw new Error(`No such file: ${name}`);
    }
    return new SimWriter(this, inode);
  }

  async rename(from: string, to: string): Promise<void> {
    await this.#step(true);
    if (this.failRenames) throw new Error("Input/output error (os error 5)");
    const inode = this.#dir.get(from);
    if (inode === undefined) throw new Error(`No such file: ${from}`);
    this.#dir.delete(from);
    this.#dir.set(to, inode);
  }

  async remove(name: string): Promise<void> {
    await this.#step(true);
    this.#dir.delete(name);
  }

  async syncDir(): Promise<void> {
    await this.#step(true);
    if (this.failDirSyncs) throw new Error("Input/output error (os error 5)");
    this.#durableDir = new Map(this.#dir);
  }

  /** @internal Used by writers: counts the operation, yields, and cuts the power when due.
   * Returns true when this very operation is the one the power fails in. */
  async step(changes: boolean): Promise<boolean> {
    return await this.#step(changes);
  }

  /** @internal Bytes used on the disk. */
  usedBytes(): number {
    let used = 0;
    for (const inode of new Set(this.#dir.values())) used += inode.data.length;
    return used;
  }

  /** @internal */
  random(): number {
    return this.#random();
  }

  async #step(changes: boolean): Promise<boolean> {
    const yields = Math.floor(this.#random() * 3);
    for (let i = 0; i < yields; i++) await Promise.resolve();
    if (this.#halted) throw new ProcessHalted();
    if (this.#dead) throw new PowerCut();
    if (!changes) return false;
    this.#operations++;
    if (this.#operations >= this.#powerCutAt) {
      this.#dead = true;
      return true;
    }
    return false;
  }
}

class SimWriter implements FileWriter {
  #disk: SimStorage;
  #inode: Inode;
  #size: number;

  constructor(disk: SimStorage, inode: Inode) {
    this.#disk = disk;
    this.#inode = inode;
    this.#size = inode.data.length;
  }

  get size(): number {
    return this.#size;
  }

  async append(bytes: Uint8Array): Promise<void> {
    const powerFails = await this.#disk.step(true);
    const room = this.#disk.capacityBytes - this.#disk.usedBytes();
    const full = room < bytes.length;
    let count = bytes.length;
    if (powerFails) count = Math.floor(this.#disk.random() * (bytes.length + 1));
    if (full) count = Math.min(count, Math.max(0, room));
    const data = new Uint8Array(this.#inode.data.length + count);
    data.set(this.#inode.data);
    data.set(bytes.subarray(0, count), this.#inode.data.length);
    this.#inode.data = data;
    if (powerFails) throw new PowerCut();
    if (full) throw new Error("No space left on device (os error 28)");
    this.#size += bytes.length;
  }

  async truncate(size: number): Promise<void> {
    if (await this.#disk.step(true)) throw new PowerCut();
    if (this.#disk.failTruncates) throw new Error("Input/output error (os error 5)");
    cutTo(this.#inode, size);
    this.#size = size;
  }

  async sync(): Promise<void> {
    if (await this.#disk.step(true)) throw new PowerCut();
    if (this.#disk.failSyncs) throw new Error("Input/output error (os error 5)");
    if (this.#disk.failNextSyncs > 0) {
      this.#disk.failNextSyncs--;
      throw new Error("Input/output error (os error 5)");
    }
    this.#inode.durable = this.#inode.data.slice();
    this.#inode.beforeCut = null;
    this.#disk.syncs++;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Like ftruncate: a shorter size cuts, a longer one extends with zeros. A cut is
 * remembered until the next sync (see Inode.beforeCut). */
function cutTo(inode: Inode, size: number): void {
  if (size < inode.data.length && inode.beforeCut === null) inode.beforeCut = inode.data;
  const data = new Uint8Array(size);
  data.set(inode.data.subarray(0, size));
  inode.data = data;
}

/** What survives of one file in a power cut: its durable bytes, or a prefix of its
 * current bytes at least as long as what the two share, sometimes ending in zeros; or,
 * when it was cut shorter since its last sync, sometimes its bytes before the cut. */
function survivingBytes(inode: Inode, random: () => number): Uint8Array {
  const { data, durable, beforeCut } = inode;
  if (beforeCut !== null && random() < 0.5) return beforeCut.slice();
  let shared = 0;
  while (shared < data.length && shared < durable.length && data[shared] === durable[shared]) shared++;
  const roll = random();
  if (roll < 0.4 || data.length === shared) return durable.slice();
  const length = shared + Math.floor(random() * (data.length - shared + 1));
  const kept = data.slice(0, length);
  if (roll < 0.9) return kept;
  // The file system kept the size but lost data: whole sectors, from where the unsynced
  // part begins or from a sector boundary after it, read as zeros to the end.
  const boundaries = [shared];
  for (
    let at = (Math.floor(shared / DISK_SECTOR_BYTES) + 1) * DISK_SECTOR_BYTES;
    at < length;
    at += DISK_SECTOR_BYTES
  ) {
    boundaries.push(at);
  }
  kept.fill(0, boundaries[Math.floor(random() * boundaries.length)]);
  return kept;
}
