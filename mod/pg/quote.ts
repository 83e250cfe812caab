/**
 * Quoting for the few places where SQL text must be built: replication
 * commands, which take no parameters. Everything else uses bind parameters.
 */

/** Quotes an identifier as `quote_ident()` would, always adding double quotes. */
export function quoteIdent(name: string): string {
  if (name.length === 0) throw new RangeError("Cannot quote an empty identifier");
  if (name.includes("\0")) throw new RangeError("Cannot quote an identifier containing a NUL byte");
  return `"${name.replaceAll('"', '""')}"`;
}

/** Quotes a string literal with standard-conforming escapes (`'it''s'`). */
export function quoteLiteral(value: string): string {
  if (value.includes("\0")) throw new RangeError("Cannot quote a literal containing a NUL byte");
  return `'${value.replaceAll("'", "''")}'`;
}
