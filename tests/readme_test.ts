/**
 * The README is the user's manual: these tests hold its tables and lists to the code, so
 * that a flag, a default, a subcommand, a crash point or a file added, renamed or removed
 * on one side fails here until the other follows. (Its metrics table is checked against a
 * real scrape in metrics_test.ts.)
 */

import assert from "node:assert/strict";
import { CLIENT_COMMANDS, EXIT_ERROR, EXIT_NOT_FOUND, EXIT_OK, EXIT_OUTPUT, EXIT_USAGE } from "../src/client/cli.ts";
import { ROUTER_FLAGS } from "../src/cluster/router_flags.ts";
import { type FlagSpec, SERVER_FLAGS } from "../src/config/server_flags.ts";
import { CRASH_POINTS } from "../src/persistence/crashpoints.ts";
import {
  blockAfterHeading,
  codeSpans,
  flagNames,
  markdownTable,
  readReadme,
  repositoryPath,
} from "./helpers/readme.ts";

const readme = await readReadme();

/** The README's section that starts at `heading`, up to the next heading of its level or
 * higher (a `#` line inside a fenced block, such as `kvstore info`'s "# Server", is text). */
function section(heading: string): string {
  const lines = readme.split("\n");
  const start = lines.indexOf(heading);
  assert.ok(start !== -1, `README has no heading ${heading}`);
  const level = heading.indexOf(" ");
  let fenced = false;
  let end = start + 1;
  for (; end < lines.length; end++) {
    if (lines[end].startsWith("```")) fenced = !fenced;
    const hashes = /^(#+) /.exec(lines[end])?.[1].length;
    if (!fenced && hashes !== undefined && hashes <= level) break;
  }
  return lines.slice(start, end).join("\n");
}

/** Checks a README flags table against the flags a process accepts: every row names real
 * flags, every flag has a row, and a default the README states is the one --help states. */
function checkFlagsTable(table: string[][], flags: readonly FlagSpec[], what: string): void {
  const byName = new Map(flags.map((flag) => [flag.name, flag]));
  const documented = new Set<string>();
  for (const [flagCell, , defaultCell] of table) {
    const names = flagNames(flagCell);
    assert.ok(names.length > 0, `${what}: a row names no flag: ${flagCell}`);
    for (const name of names) {
      const flag = byName.get(name);
      assert.ok(flag !== undefined, `${what}: the README documents --${name}, which is not a flag`);
      documented.add(name);
      // "as for a node" and blank cells defer to another table; the rest must say what --help says.
      if (flag.defaultText === undefined || defaultCell === "" || defaultCell === "as for a node") continue;
      assert.equal(defaultCell.replaceAll("`", ""), flag.defaultText, `${what}: the default of --${name}`);
    }
  }
  const missing = flags.map((flag) => flag.name).filter((name) => !documented.has(name));
  assert.deepEqual(missing, [], `${what}: flags the README's table leaves out`);
}

Deno.test("the README's node flags table lists every flag of kvstore --help, with its default", () => {
  checkFlagsTable(markdownTable(section("## Command line"), "flag"), SERVER_FLAGS, "kvstore");
});

Deno.test("the README's router flags table lists every flag of kvstore router --help, with its default", () => {
  checkFlagsTable(markdownTable(section("### Router flags"), "flag"), ROUTER_FLAGS, "kvstore router");
});

Deno.test("the README names every client subcommand", () => {
  const missing = [...CLIENT_COMMANDS.keys()].filter((name) => !readme.includes(`kvstore ${name}`));
  assert.deepEqual(missing, []);
});

Deno.test("the README's exit statuses are the ones the client commands return", () => {
  const statuses = markdownTable(section("### A quick tour"), "status").map((row) => Number(row[0]));
  assert.deepEqual(statuses, [EXIT_OK, EXIT_NOT_FOUND, EXIT_USAGE, EXIT_ERROR, EXIT_OUTPUT]);
});

Deno.test("the README lists exactly the crash points the node knows", () => {
  const names = codeSpans(section("### Crash points")).filter((span) => /^[a-z]+(-[a-z]+)+$/.test(span));
  assert.deepEqual([...names].sort(), [...CRASH_POINTS].sort());
});

Deno.test("every path in the README's Layout exists, and every top-level entry is in it", async () => {
  const layout = blockAfterHeading(readme, "## Layout");
  const paths = layout.flatMap((line) => {
    // "main.ts   the command line ..." or "Makefile, deno.json   the make targets ...".
    const [names] = line.split(/\s{2,}/);
    return names.split(", ").map((name) => name.trim());
  });
  for (const path of paths) {
    const stat = await Deno.stat(repositoryPath(path)).catch(() => null);
    assert.ok(stat !== null, `the Layout names ${path}, which does not exist`);
    assert.equal(stat.isDirectory, path.endsWith("/"), `${path}: a folder is written with a trailing slash`);
  }
  const named = new Set(paths.map((path) => path.split("/")[0] + (path.includes("/") ? "/" : "")));
  // What a checkout holds at its top level beside the Layout's own: the manual, the lock,
  // git's files and what builds or test runs leave behind (ignored by git).
  const besides = new Set(["README.md", "deno.lock", ".git", ".gitignore", "dist", "kvstore", "node_modules"]);
  for await (const entry of Deno.readDir(repositoryPath(""))) {
    if (besides.has(entry.name) || entry.name.startsWith("kvstore.")) continue;
    const name = entry.isDirectory ? `${entry.name}/` : entry.name;
    assert.ok(named.has(name), `the Layout leaves out ${name}`);
  }
});
