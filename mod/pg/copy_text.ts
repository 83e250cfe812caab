/**
 * COPY's text format, as `COPY … FROM STDIN` reads it: columns separated by
 * tabs, rows ended by a newline, NULL as `\N`, and backslash, newline,
 * carriage return and tab escaped with a backslash.
 */

const SPECIAL = /[\\\n\r\t]/;
const ESCAPES: Record<string, string> = { "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/** One row of text values (`null` for NULL) in COPY text format, newline included. */
export function copyTextRow(values: readonly (string | null)[]): string {
  let row = "";
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (i > 0) row += "\t";
    if (value === null) row += "\\N";
    else row += SPECIAL.test(value) ? value.replace(/[\\\n\r\t]/g, (c) => ESCAPES[c]) : value;
  }
  return row + "\n";
}
