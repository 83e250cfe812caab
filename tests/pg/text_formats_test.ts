/** Unit tests of the text formats rows are sent in: COPY text rows and `text[]` literals. */
import assert from "node:assert/strict";
import { copyTextRow, textArrayLiteral } from "../../mod/pg/mod.ts";

Deno.test("copyTextRow escapes what COPY's text format reads specially", () => {
  assert.equal(copyTextRow(["1", "plain"]), "1\tplain\n");
  assert.equal(copyTextRow(["a\tb", "c\nd", "e\rf", "g\\h"]), "a\\tb\tc\\nd\te\\rf\tg\\\\h\n");
  assert.equal(copyTextRow([null, "", "\\N"]), "\\N\t\t\\\\N\n");
});

Deno.test("textArrayLiteral quotes every element and escapes quotes and backslashes", () => {
  assert.equal(textArrayLiteral([]), "{}");
  assert.equal(textArrayLiteral(["a", null, "NULL", ""]), '{"a",NULL,"NULL",""}');
  assert.equal(textArrayLiteral(['{"x", y}', "back\\slash"]), '{"{\\"x\\", y}","back\\\\slash"}');
});
