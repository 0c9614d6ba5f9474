/**
 * The README read as data, so tests can hold it to the code: its tables (flags, metrics),
 * its lists (crash points) and its Layout block.
 *
 * @module
 */

const README_URL = new URL("../../README.md", import.meta.url);

/** The README's text. */
export function readReadme(): Promise<string> {
  return Deno.readTextFile(README_URL);
}

/** The path of a file or folder named relative to the repository's root. */
export function repositoryPath(relative: string): string {
  return new URL(`../../${relative}`, import.meta.url).pathname;
}

/**
 * The rows of the first Markdown table whose header row starts with `firstHeader` (as
 * written, `| flag ` for instance), each row its cells, trimmed, `\|` unescaped. Throws
 * when there is no such table, so a renamed header fails the test that reads it.
 */
export function markdownTable(readme: string, firstHeader: string): string[][] {
  const lines = readme.split("\n");
  const start = lines.findIndex((line) => line.startsWith("|") && cells(line)[0] === firstHeader);
  if (start === -1) throw new Error(`README: no table whose first column is headed ${JSON.stringify(firstHeader)}`);
  const rows: string[][] = [];
  // The header, then the separator row, then the body until the first line that is not a row.
  for (let i = start + 2; i < lines.length && lines[i].startsWith("|"); i++) rows.push(cells(lines[i]));
  return rows;
}

function cells(line: string): string[] {
  return line.replace(/^\|/, "").replace(/\|\s*$/, "").split(/(?<!\\)\|/).map((cell) =>
    cell.trim().replaceAll("\\|", "|")
  );
}

/** The text of every `code` span in `cell`, in order. */
export function codeSpans(cell: string): string[] {
  return [...cell.matchAll(/`([^`]+)`/g)].map((match) => match[1]);
}

/** The flag names (without dashes) a flags-table cell names: "`--max-key-bytes`,
 * `--max-value-bytes`" or "`--log-level debug|info`". */
export function flagNames(cell: string): string[] {
  return codeSpans(cell).map((span) => /^--([a-z-]+)/.exec(span)?.[1]).filter((name) => name !== undefined);
}

/** The lines of the fenced block that follows the heading `heading` ("## Layout"). */
export function blockAfterHeading(readme: string, heading: string): string[] {
  const at = readme.indexOf(`\n${heading}\n`);
  if (at === -1) throw new Error(`README: no heading ${JSON.stringify(heading)}`);
  const open = readme.indexOf("```", at);
  const close = readme.indexOf("```", open + 3);
  return readme.slice(readme.indexOf("\n", open) + 1, close).split("\n").filter((line) => line.trim() !== "");
}
