/**
 * Reading the fields of a parsed JSON document (manifest, index, config) with the path of
 * the first field that has the wrong shape, e.g. `layers.0.digest: expected a sha256
 * digest`. Written by hand rather than with a schema library because every pull parses
 * these documents and loading zod alone took ~70 ms of a ~0.9 s pull (bench/pull).
 *
 * The readers copy only the fields they are asked for, so what a caller gets back holds
 * nothing the document smuggled in beside them.
 */
import { isSha256Digest } from './digest.js';

export type FieldPath = readonly (string | number)[];

/** A field of the wrong shape; the caller turns it into a UserError naming the image. */
export class FieldError extends Error {
  constructor(
    readonly path: FieldPath,
    readonly problem: string,
  ) {
    super(`${path.length > 0 ? path.join('.') : 'document'}: ${problem}`);
    this.name = 'FieldError';
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : typeof value === 'string' ? 'a string' : typeof value;
}

function wrong(path: FieldPath, expected: string, value: unknown): never {
  throw new FieldError(path, value === undefined ? `missing (expected ${expected})` : `expected ${expected}, got ${describe(value)}`);
}

export function readObject(value: unknown, path: FieldPath): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) wrong(path, 'an object', value);
  return value as Record<string, unknown>;
}

export function readString(value: unknown, path: FieldPath): string {
  if (typeof value !== 'string') wrong(path, 'a string', value);
  return value;
}

export function readNonEmptyString(value: unknown, path: FieldPath): string {
  const text = readString(value, path);
  if (text === '') throw new FieldError(path, 'expected a non-empty string');
  return text;
}

export function readSize(value: unknown, path: FieldPath): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) wrong(path, 'a non-negative integer', value);
  return value;
}

export function readDigest(value: unknown, path: FieldPath): string {
  const text = readString(value, path);
  if (!isSha256Digest(text)) throw new FieldError(path, `expected a sha256 digest (sha256:<64 hex>), got "${text.slice(0, 80)}"`);
  return text;
}

export function readArray<T>(value: unknown, path: FieldPath, item: (value: unknown, path: FieldPath) => T): T[] {
  if (!Array.isArray(value)) wrong(path, 'an array', value);
  return value.map((v, i) => item(v, [...path, i]));
}

/** A string-to-string map such as `annotations` or `Labels`. */
export function readStringMap(value: unknown, path: FieldPath): Record<string, string> {
  const object = readObject(value, path);
  const copy: Record<string, string> = {};
  for (const [key, v] of Object.entries(object)) {
    // JSON.parse makes "__proto__" an own key; plain assignment would set the prototype instead.
    Object.defineProperty(copy, key, { value: readString(v, [...path, key]), enumerable: true, writable: true, configurable: true });
  }
  return copy;
}

/** `read` applied to a field that may be absent (absent, not null: null is a wrong shape). */
export function optional<T>(value: unknown, path: FieldPath, read: (value: unknown, path: FieldPath) => T): T | undefined {
  return value === undefined ? undefined : read(value, path);
}
