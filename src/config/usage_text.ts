/**
 * Help text laid out for a terminal: paragraphs wrapped at USAGE_WIDTH columns, and the
 * two-column tables of flags and subcommands with their descriptions wrapped under
 * their own column, so `--help` reads on an 80- to 100-column terminal rather than as
 * lines of 150 characters that the terminal breaks mid-word.
 *
 * Pure.
 *
 * @module
 */

/** The width help text is wrapped at, in columns. */
export const USAGE_WIDTH = 100;

/** A description column is never made narrower than this, in columns: with a very long
 * label, the description wraps past USAGE_WIDTH rather than into a sliver. */
const DESCRIPTION_COLUMNS_MIN = 40;

/** `text` wrapped at `width` columns, at spaces; every line starts with `indent`. A word
 * longer than the line is left whole. Line breaks in `text` are kept; a line that starts
 * with a space (an example command) is kept as it is. */
export function wrapText(text: string, width = USAGE_WIDTH, indent = ""): string[] {
  return text.split("\n").flatMap((line) =>
    line.startsWith(" ") || line === "" ? [indent + line] : wrapLine(line, width - indent.length, indent)
  );
}

/** Rows of `label  description`, labels padded to one column after `indent`, each
 * description wrapped at `width` with its continuation lines under its own column. */
export function twoColumns(rows: readonly (readonly [string, string])[], indent = "  ", width = USAGE_WIDTH): string[] {
  const labelWidth = Math.max(0, ...rows.map(([label]) => label.length));
  const column = indent.length + labelWidth + 2;
  const descriptionWidth = Math.max(DESCRIPTION_COLUMNS_MIN, width - column);
  return rows.flatMap(([label, description]) => {
    const [first = "", ...rest] = wrapLine(description, descriptionWidth, "");
    return [
      `${indent}${label.padEnd(labelWidth)}  ${first}`.trimEnd(),
      ...rest.map((line) => " ".repeat(column) + line),
    ];
  });
}

/** One line of text wrapped at `width` columns, each piece prefixed with `indent`. */
function wrapLine(line: string, width: number, indent: string): string[] {
  const lines: string[] = [];
  let current = "";
  for (const word of line.split(" ").filter((word) => word !== "")) {
    if (current !== "" && current.length + 1 + word.length > width) {
      lines.push(indent + current);
      current = word;
    } else {
      current = current === "" ? word : `${current} ${word}`;
    }
  }
  lines.push(indent + current);
  return lines;
}
