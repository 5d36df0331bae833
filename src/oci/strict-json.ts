/**
 * JSON for trust documents (policy.json, signature payloads), read the strict way
 * containers/image reads them: a key given twice is an error, not "the last one wins".
 * JSON.parse cannot tell, so the text is scanned for it first.
 */

/** The first key that appears twice in one object, with the object's path; null if none. */
export function findDuplicateKey(text: string): string | null {
  // Each open container: the keys of an object (null for an array).
  const stack: Array<Set<string> | null> = [];
  let expectingKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let end = i + 1;
      while (end < text.length && text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      const top = stack[stack.length - 1];
      if (expectingKey && top) {
        let key: string;
        try {
          key = JSON.parse(text.slice(i, end + 1)) as string;
        } catch {
          return null; // malformed: JSON.parse reports it
        }
        if (top.has(key)) return key;
        top.add(key);
        expectingKey = false;
      }
      i = end;
    } else if (c === '{') {
      stack.push(new Set());
      expectingKey = true;
    } else if (c === '[') {
      stack.push(null);
      expectingKey = false;
    } else if (c === '}' || c === ']') {
      stack.pop();
      expectingKey = false;
    } else if (c === ',') {
      expectingKey = stack[stack.length - 1] instanceof Set;
    }
  }
  return null;
}

/** JSON.parse that also refuses duplicate keys; `what` names the document in the error. */
export function parseStrictJson(text: string, what: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`${what} is not valid JSON: ${(err as Error).message}`);
  }
  const duplicate = findDuplicateKey(text);
  if (duplicate !== null) throw new Error(`${what} has the key ${JSON.stringify(duplicate)} twice in one object`);
  return value;
}

/** A JSON object's fields, refusing any key outside `allowed` (and a non-object). */
export function exactFields(value: unknown, allowed: readonly string[], what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${what} must be a JSON object`);
  const unknown = Object.keys(value).filter((k) => !allowed.includes(k));
  if (unknown.length > 0) throw new Error(`${what} has unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k)).join(', ')}`);
  return value as Record<string, unknown>;
}
