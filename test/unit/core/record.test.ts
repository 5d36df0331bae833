import { describe, expect, it } from 'vitest';
import { UserError } from '../../../src/core/errors.js';
import {
  boolean,
  literal,
  object,
  optional,
  parseRecord,
  parseRecordOrNull,
  positiveInteger,
  recordCheck,
  sha256Digest,
  string,
  stringArray,
  stringOrNull,
} from '../../../src/core/record.js';

const check = recordCheck({
  version: literal(1),
  name: string,
  pid: positiveInteger,
  tags: stringArray,
  digest: sha256Digest,
  note: stringOrNull,
  pinned: optional(boolean),
  image: object({ image: string, origin: object({ transport: literal('registry', 'oci') }) }),
});
const good = {
  version: 1,
  name: 'n',
  pid: 7,
  tags: ['a'],
  digest: `sha256:${'a'.repeat(64)}`,
  note: null,
  image: { image: 'x', origin: { transport: 'oci' } },
  extra: 'ignored',
};

describe('record checks', () => {
  it('accepts a record whose fields follow the rules (other fields ignored)', () => {
    expect(check(good)).toBeNull();
    expect(check({ ...good, pinned: true })).toBeNull();
  });

  it.each([
    [[], 'not a JSON object'],
    [{ ...good, version: 2 }, 'version: expected 1, found 2'],
    [{ ...good, name: 3 }, 'name: expected a string'],
    [{ ...good, pid: 0 }, 'pid: expected a positive integer'],
    [{ ...good, tags: ['a', 1] }, 'tags: expected an array of strings'],
    [{ ...good, digest: 'sha256:abc' }, 'digest: expected a sha256 digest'],
    [{ ...good, note: 1 }, 'note: expected a string or null'],
    [{ ...good, pinned: 'yes' }, 'pinned: expected true or false'],
    [{ ...good, image: 'x' }, 'image: expected an object'],
    [{ ...good, image: { origin: { transport: 'oci' } } }, 'image.image: expected a string'],
    [{ ...good, image: { image: 'x', origin: { transport: 'ftp' } } }, 'image.origin.transport: expected "registry" or "oci", found "ftp"'],
  ])('names the first wrong field: %j', (doc, problem) => {
    expect(check(doc)).toBe(problem);
  });

  it('parseRecord: a UserError naming the file and the problem, with the kind\'s hint', () => {
    const kind = { name: 'test record', damagedHint: 'damaged: redo it', unknownHint: 'unknown: upgrade' };
    expect(parseRecord(JSON.stringify(good), '/r.json', check, kind)).toEqual(good);
    const notJson = (() => {
      try {
        parseRecord('{', '/r.json', check, kind);
      } catch (err) {
        return err;
      }
    })() as UserError;
    expect(notJson).toBeInstanceOf(UserError);
    expect(notJson.message).toMatch(/^\/r\.json is not valid JSON: /);
    expect(notJson.hint).toBe('damaged: redo it');
    expect(() => parseRecord(JSON.stringify({ ...good, pid: -1 }), '/r.json', check, kind)).toThrow(
      '/r.json is not a test record this version understands: pid: expected a positive integer',
    );
  });

  it('parseRecordOrNull: null for damaged or unknown records', () => {
    expect(parseRecordOrNull('{', check)).toBeNull();
    expect(parseRecordOrNull('{"version":1}', check)).toBeNull();
    expect(parseRecordOrNull(JSON.stringify(good), check)).toEqual(good);
  });
});
