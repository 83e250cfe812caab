/**
 * Folder-private formatting for error messages: how a protocol byte is shown
 * when it is wrong. Building the messages themselves is left to `errors.ts`.
 */

/** Formats a byte as `"X"` when it is printable ASCII, as `0x1F` otherwise. */
export function formatByte(byte: number): string {
  if (byte >= 0x20 && byte < 0x7f) return JSON.stringify(String.fromCharCode(byte));
  return `0x${byte.toString(16).toUpperCase().padStart(2, "0")}`;
}
