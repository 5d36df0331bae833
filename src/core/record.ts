/**
 * Records this tool persists as JSON (deployment origins, the staged update, the cached
 * update, retained images, the update lock's holder) are read back one way: parse, then
 * one check that names the first field that is wrong. A record that must be there fails
 * with a UserError naming the file, the field and what to do; one whose loss is harmless
 * (a cache, a lock holder's description) reads as absent.
 *
 * A check is a list of field rules over a JSON object:
 *
 *   const check = recordCheck({ pid: positiveInteger, command: optional(string) });
 *   check(doc)   // null, or "pid: expected a positive integer"
 */
import { UserError } from './errors.js';

/** The first thing wrong with `value`: "expected …", or ".field: expected …" inside an object; null when none. */
export type FieldRule = (value: unknown) => string | null;
/** The first thing wrong with a whole record ("pid: expected …"), or null. */
export type RecordCheck = (doc: unknown) => string | null;

export const string: FieldRule = (v) => (typeof v === 'string' ? null : 'expected a string');
export const boolean: FieldRule = (v) => (typeof v === 'boolean' ? null : 'expected true or false');
export const positiveInteger: FieldRule = (v) => (typeof v === 'number' && Number.isInteger(v) && v > 0 ? null : 'expected a positive integer');
export const stringArray: FieldRule = (v) => (Array.isArray(v) && v.every((x) => typeof x === 'string') ? null : 'expected an array of strings');
export const sha256Digest: FieldRule = (v) => (typeof v === 'string' && /^sha256:[0-9a-f]{64}$/.test(v) ? null : 'expected a sha256 digest');
export const stringOrNull: FieldRule = (v) => (v === null || typeof v === 'string' ? null : 'expected a string or null');

/** Exactly `expected` (a version number, a constant). */
export const literal =
  (...expected: readonly unknown[]): FieldRule =>
  (v) =>
    expected.includes(v) ? null : `expected ${expected.map((e) => JSON.stringify(e)).join(' or ')}, found ${JSON.stringify(v)}`;

/** Absent, or as `rule` says. */
export const optional =
  (rule: FieldRule): FieldRule =>
  (v) =>
    v === undefined ? null : rule(v);

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A nested object whose fields follow `rules` (its problems are named `outer.inner`). */
export function object(rules: Readonly<Record<string, FieldRule>>): FieldRule {
  return (v) => {
    if (!isObject(v)) return 'expected an object';
    for (const [key, rule] of Object.entries(rules)) {
      const problem = rule(v[key]);
      if (problem !== null) return problem.startsWith('.') ? `.${key}${problem}` : `.${key}: ${problem}`;
    }
    return null;
  };
}

/** The check of a record: a JSON object whose fields follow `rules`; other fields are ignored. */
export function recordCheck(rules: Readonly<Record<string, FieldRule>>): RecordCheck {
  const fields = object(rules);
  // object() names a field ".key: …"; at the top level it is "key: …".
  return (doc) => (isObject(doc) ? (fields(doc)?.slice(1) ?? null) : 'not a JSON object');
}

export interface RecordKind {
  /** "deployment record", "staged update record". */
  name: string;
  /** What to do when the file is not JSON at all. */
  damagedHint: string;
  /** What to do when it is JSON but not a record this version reads. */
  unknownHint: string;
}

/** `text` (read from `source`) as a record of `kind`; a UserError naming the problem otherwise. */
export function parseRecord<T>(text: string, source: string, check: RecordCheck, kind: RecordKind): T {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new UserError(`${source} is not valid JSON: ${(err as Error).message}`, { hint: kind.damagedHint });
  }
  const problem = check(doc);
  if (problem !== null) throw new UserError(`${source} is not a ${kind.name} this version understands: ${problem}`, { hint: kind.unknownHint });
  return doc as T;
}

/** `text` as a record when it is one, else null: for records whose loss only costs a cache. */
export function parseRecordOrNull<T>(text: string, check: RecordCheck): T | null {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return null;
  }
  return check(doc) === null ? (doc as T) : null;
}
