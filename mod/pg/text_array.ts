/**
 * `text[]` literals for bind parameters: a run of rows goes to the server as
 * one array per column, read back with `unnest()`.
 */

/** The array literal of `values` (`null` for NULL): every element quoted, `"` and `\` escaped. */
export function textArrayLiteral(values: readonly (string | null)[]): string {
  let literal = "{";
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (i > 0) literal += ",";
    literal += value === null ? "NULL" : `"${value.replace(/[\\"]/g, "\\$&")}"`;
  }
  return literal + "}";
}
