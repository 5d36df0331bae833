/**
 * The GRUB menu on a mounted ESP follows loader/entries: regenerated only where a menu
 * exists (hybrid disks), from the entries in systemd-boot's order, with loader.conf's timeout,
 * a trial started for a new default and other grubenv variables kept.
 */
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { espInDirectory } from '../../../src/boot/esp.js';
import { loaderConfTimeout, regenerateGrubMenu } from '../../../src/boot/grub-boot.js';
import { parseGrubEnv, renderGrubEnv } from '../../../src/boot/grub-menu.js';
import { testDir } from '../../support/temp-tree.js';

const entryText = (id: string, version: string): string =>
  [`title OS ${id}`, `version ${version}`, 'sort-key bootc', `linux /bootc/${id}/vmlinuz`, `initrd /bootc/${id}/initrd.img`, `options root=UUID=r rw bootc.deploy=default/${id}`, ''].join('\n');

describe('regenerateGrubMenu on a mounted ESP', () => {
  let boot: string;
  beforeEach(() => {
    boot = testDir('grub-boot');
    mkdirSync(join(boot, 'loader/entries'), { recursive: true });
    writeFileSync(join(boot, 'loader/entries/bootc-default-d1.conf'), entryText('d1', '1'));
    writeFileSync(join(boot, 'loader/entries/bootc-default-d2+3.conf'), entryText('d2', '2'));
    writeFileSync(join(boot, 'loader/entries/other.conf'), 'title not ours\n');
    writeFileSync(join(boot, 'loader/loader.conf'), 'default bootc-*\ntimeout 7\neditor no\n');
  });

  it('writes nothing on a disk without a GRUB menu', async () => {
    expect(await regenerateGrubMenu(espInDirectory(boot))).toBe(false);
    expect(readdirSync(boot).sort()).toEqual(['loader']);
  });

  it('rewrites grub.cfg and grubenv from the entries', async () => {
    mkdirSync(join(boot, 'grub'));
    writeFileSync(join(boot, 'grub/grub.cfg'), '# old\n');
    writeFileSync(join(boot, 'grub/grubenv'), renderGrubEnv({ keep: 'me' }));
    expect(await regenerateGrubMenu(espInDirectory(boot))).toBe(true);
    const cfg = readFileSync(join(boot, 'grub/grub.cfg'), 'utf8');
    expect(cfg).toContain('set timeout=7');
    expect(cfg.indexOf('--id bootc-default-d2')).toBeLessThan(cfg.indexOf('--id bootc-default-d1'));
    expect(cfg).not.toContain('not ours');
    expect(parseGrubEnv(readFileSync(join(boot, 'grub/grubenv'), 'utf8'))).toEqual({ keep: 'me', bootc_trial: 'bootc-default-d2', bootc_tries: '3' });
    expect(readdirSync(join(boot, 'grub')).sort()).toEqual(['grub.cfg', 'grubenv']);
  });

  it('leaves out the entries GC is about to remove, while their files are still there', async () => {
    mkdirSync(join(boot, 'grub'));
    writeFileSync(join(boot, 'grub/grub.cfg'), '# old\n');
    expect(await regenerateGrubMenu(espInDirectory(boot), (name) => name.deploymentId === 'd1')).toBe(true);
    const cfg = readFileSync(join(boot, 'grub/grub.cfg'), 'utf8');
    expect(cfg).toContain('--id bootc-default-d2');
    expect(cfg).not.toContain('bootc-default-d1');
  });

  it('replaces a grubenv that is not an environment block', async () => {
    mkdirSync(join(boot, 'grub'));
    writeFileSync(join(boot, 'grub/grub.cfg'), '# old\n');
    writeFileSync(join(boot, 'grub/grubenv'), 'garbage');
    await regenerateGrubMenu(espInDirectory(boot));
    expect(parseGrubEnv(readFileSync(join(boot, 'grub/grubenv'), 'utf8'))).toEqual({ bootc_trial: 'bootc-default-d2', bootc_tries: '3' });
  });

  it('reads the timeout of loader.conf', () => {
    expect(loaderConfTimeout('default bootc-*\ntimeout 0\n')).toBe(0);
    expect(loaderConfTimeout('')).toBe(3);
  });
});
