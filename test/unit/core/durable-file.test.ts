/** core/durable-file.ts on a temp directory: what is written, what is fsynced, what is left. */
import { chmodSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { testDir } from '../../support/temp-tree.js';

/** Paths fsynced, in order (every FileHandle.sync() of the module under test). */
const synced: string[] = [];

vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...real,
    open: async (...args: Parameters<typeof real.open>) => {
      const fh = await real.open(...args);
      const sync = fh.sync.bind(fh);
      fh.sync = async () => {
        synced.push(String(args[0]));
        await sync();
      };
      return fh;
    },
  };
});

const {
  copyFileDurably,
  finalNameOf,
  isTempName,
  removeTempFiles,
  renameDurably,
  replaceFile,
  tempNameFor,
  writeFileAtomic,
} = await import('../../../src/core/durable-file.js');

let dir: string;
beforeEach(() => {
  dir = testDir('durable-file');
  synced.length = 0;
});

describe('temporary names', () => {
  it('one pattern: beside the final name, recognised, mapped back to the final name', () => {
    const tmp = tempNameFor('/boot/EFI/Linux/bootc-default-1.efi');
    expect(dirname(tmp)).toBe('/boot/EFI/Linux');
    expect(basename(tmp)).toMatch(new RegExp(`^bootc-default-1\\.efi\\.tmp-${process.pid}-[0-9a-f]{12}$`));
    expect(isTempName(tmp)).toBe(true);
    expect(finalNameOf(basename(tmp))).toBe('bootc-default-1.efi');
    expect(tempNameFor('/a/b')).not.toBe(tempNameFor('/a/b'));
  });

  it('object temp files (no final name) match; other names do not', () => {
    expect(isTempName('.tmp-123-7')).toBe(true);
    expect(finalNameOf('.tmp-123-7')).toBe('');
    for (const name of ['a.conf', 'a.efi.tmp', 'a.efi.staged', 'a.tmp-x-1', '.tmp-']) expect(isTempName(name), name).toBe(false);
    expect(finalNameOf('a.conf')).toBeNull();
  });
});

describe('writeFileAtomic', () => {
  it('writes with the mode, replaces what was there, leaves no temporary file', async () => {
    const path = join(dir, 'record.json');
    writeFileSync(path, 'old');
    await writeFileAtomic(path, 'new\n', 0o600);
    expect(readFileSync(path, 'utf8')).toBe('new\n');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(['record.json']);
  });

  it('writes data given as chunks one after the other', async () => {
    const path = join(dir, 'tree.index');
    await writeFileAtomic(path, ['a\n', 'b\nc\n', ''], 0o600);
    expect(readFileSync(path, 'utf8')).toBe('a\nb\nc\n');
    expect(readdirSync(dir)).toEqual(['tree.index']);
  });

  it('fsyncs the temporary file, then the renamed file (FAT), then the directory', async () => {
    const path = join(dir, 'entry.conf');
    await writeFileAtomic(path, 'title x\n');
    expect(synced).toHaveLength(3);
    expect(isTempName(synced[0]!)).toBe(true);
    expect(finalNameOf(synced[0]!)).toBe(path);
    expect(synced.slice(1)).toEqual([path, dir]);
  });
});

describe('replaceFile', () => {
  it('a failing write leaves the old file and no temporary file', async () => {
    const path = join(dir, 'uki.efi');
    writeFileSync(path, 'old');
    await expect(
      replaceFile(path, async (tmp) => {
        writeFileSync(tmp, 'half');
        throw new Error('disk full');
      }),
    ).rejects.toThrow('disk full');
    expect(readFileSync(path, 'utf8')).toBe('old');
    expect(readdirSync(dir)).toEqual(['uki.efi']);
  });
});

describe('copyFileDurably', () => {
  it('streams a large file, with its own mode rather than the source mode', async () => {
    const source = join(dir, 'source');
    const content = Buffer.alloc(3 * (1 << 20) + 17, 0x5a);
    writeFileSync(source, content);
    chmodSync(source, 0o755);
    const dest = join(dir, 'copy');
    await copyFileDurably(source, dest);
    expect(readFileSync(dest).equals(content)).toBe(true);
    expect(statSync(dest).mode & 0o111).toBe(0);
    expect(synced.slice(-2)).toEqual([dest, dir]);
    expect(readdirSync(dir).sort()).toEqual(['copy', 'source']);
  });
});

describe('renameDurably', () => {
  it('renames, then fsyncs the renamed file and its directory', async () => {
    writeFileSync(join(dir, 'a.efi.staged'), 'uki');
    await renameDurably(join(dir, 'a.efi.staged'), join(dir, 'a.efi'));
    expect(readFileSync(join(dir, 'a.efi'), 'utf8')).toBe('uki');
    expect(synced).toEqual([join(dir, 'a.efi'), dir]);
  });
});

describe('removeTempFiles', () => {
  it('removes the temporary files of processes that are gone, and nothing else', async () => {
    // A pid above the kernel's maximum (4194304) belongs to no process.
    const gone = join(dir, 'x.conf.tmp-99999999-0123456789ab');
    const mine = tempNameFor(join(dir, 'y.conf'));
    for (const f of [gone, mine, join(dir, 'x.conf'), join(dir, 'z.efi.tmp')]) writeFileSync(f, '');
    expect(await removeTempFiles(dir)).toEqual([basename(gone)]);
    expect(existsSync(gone)).toBe(false);
    expect(readdirSync(dir).sort()).toEqual([basename(mine), 'x.conf', 'z.efi.tmp'].sort());
    expect(await removeTempFiles(join(dir, 'missing'))).toEqual([]);
  });
});
