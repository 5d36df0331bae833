/**
 * The file hash both forms share: the sha256 of the content, read across the 1 MiB chunk
 * boundary and for an empty file; a symlink in the file's place is refused, not followed.
 */
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sha256OfFile, sha256OfFileSync } from '../../../src/core/file-hash.js';
import { tempDir } from '../../support/temp-tree.js';

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

describe('sha256 of a file', () => {
  it('is the hash of its content, across chunks and when empty, in both forms', async () => {
    const big = randomBytes((1 << 20) * 2 + 12_345);
    using dir = tempDir('file-hash', { files: { big, empty: '', small: 'hello\n' } });
    for (const [name, content] of [['big', big], ['empty', Buffer.alloc(0)], ['small', Buffer.from('hello\n')]] as const) {
      const path = join(dir.path, name);
      expect(sha256OfFileSync(path)).toBe(sha256(content));
      expect(await sha256OfFile(path)).toBe(sha256(content));
    }
  });

  it('refuses a symlink in the place of the file', async () => {
    using dir = tempDir('file-hash-link', { files: { target: 'secret', link: { symlink: 'target' } } });
    const link = join(dir.path, 'link');
    expect(() => sha256OfFileSync(link)).toThrow(expect.objectContaining({ code: 'ELOOP' }));
    await expect(sha256OfFile(link)).rejects.toMatchObject({ code: 'ELOOP' });
  });
});
