/**
 * Result values of a wire session in the JavaScript shapes postgres.js
 * gives them, read from text by type OID: booleans, numbers, int8 and
 * numeric as strings, JSON parsed, one-dimensional arrays of those.
 */

const BOOL = 16;
const NUMBERS = new Set([21, 23, 26, 700, 701]);
const JSON_TYPES = new Set([114, 3802]);
/** Array type OID → element type OID, for the arrays results use. */
const ARRAY_ELEMENTS = new Map<number, number>([
  [1000, BOOL],
  [1005, 21],
  [1007, 23],
  [1028, 26],
  [1016, 20],
  [1009, 25],
  [1003, 19],
  [1015, 1043],
]);

/** One text value of type `typeOid` as postgres.js would give it. */
export function parseTextValue(text: string | null, typeOid: number): unknown {
  if (text === null) return null;
  if (typeOid === BOOL) return text === "t";
  if (NUMBERS.has(typeOid)) return Number(text);
  if (JSON_TYPES.has(typeOid)) return JSON.parse(text);
  const element = ARRAY_ELEMENTS.get(typeOid);
  if (element !== undefined) {
    return parseArray(text).map((item) => parseTextValue(item, element));
  }
  return text;
}

/** A one-dimensional array literal (`{a,"b c",NULL}`) as its element texts. */
function parseArray(text: string): (string | null)[] {
  const items: (string | null)[] = [];
  if (text.length < 2 || text === "{}") return items;
  let i = 1;
  while (i < text.length - 1) {
    if (text[i] === '"') {
      let value = "";
      i++;
      while (text[i] !== '"') {
        if (text[i] === "\\") i++;
        value += text[i++];
      }
      items.push(value);
      i += 2;
    } else {
      let end = text.indexOf(",", i);
      if (end === -1) end = text.length - 1;
      const value = text.slice(i, end);
      items.push(value === "NULL" ? null : value);
      i = end + 1;
    }
  }
  return items;
}
