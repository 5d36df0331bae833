/**
 * systemd/bootc-boot-complete.sh against a fake /proc/cmdline and fake ESP mount points:
 * it drops the boot counter of the booted deployment's entry, and only that one.
 */
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { run } from '../../../src/core/exec.js';
import { renderGrubEnv } from '../../../src/boot/grub-menu.js';
import { testDir } from '../../support/temp-tree.js';

const scriptPath = new URL('../../../systemd/bootc-boot-complete.sh', import.meta.url);

describe('bootc-boot-complete.sh', () => {
  let dir: string;
  beforeEach(() => {
    dir = testDir('boot-complete');
  });

  async function bless(cmdline: string) {
    writeFileSync(join(dir, 'cmdline'), cmdline + '\n');
    const script = readFileSync(scriptPath, 'utf8')
      .replaceAll('/proc/cmdline', join(dir, 'cmdline'))
      .replaceAll('/run/bootc', join(dir, 'run'))
      .replace("esps='/efi /boot /boot/efi'", `esps='${dir}/efi ${dir}/boot ${dir}/boot/efi'`);
    writeFileSync(join(dir, 's.sh'), script);
    return run({ description: 'Marking the boot good', argv: ['sh', join(dir, 's.sh')], okExitCodes: [1] });
  }

  function esp(files: string[]): string {
    const entries = join(dir, 'boot/loader/entries');
    mkdirSync(entries, { recursive: true });
    for (const f of files) writeFileSync(join(entries, f), `title ${f}\n`);
    return entries;
  }

  it('renames +N-M to the plain name, leaving other entries alone', async () => {
    const entries = esp(['bootc-default-d1+2-1.conf', 'bootc-default-d10+3.conf', 'bootc-default-d0.conf']);
    const r = await bless('root=UUID=x rw bootc.deploy=default/d1 quiet');
    expect(r.exitCode).toBe(0);
    expect(readdirSync(entries).sort()).toEqual(['bootc-default-d0.conf', 'bootc-default-d1.conf', 'bootc-default-d10+3.conf']);
    expect(readFileSync(join(entries, 'bootc-default-d1.conf'), 'utf8')).toBe('title bootc-default-d1+2-1.conf\n');
  });

  it("ends GRUB's trial of the booted deployment in grubenv, keeping other variables", async () => {
    const entries = esp(['bootc-default-d1+3.conf']);
    mkdirSync(join(dir, 'boot/grub'));
    const grubenv = join(dir, 'boot/grub/grubenv');
    writeFileSync(grubenv, renderGrubEnv({ other: 'x', bootc_trial: 'bootc-default-d1', bootc_tries: '1' }));
    const r = await bless('bootc.deploy=default/d1');
    expect(r.exitCode).toBe(0);
    expect(readFileSync(grubenv, 'utf8')).toBe(renderGrubEnv({ other: 'x' }));
    expect(readdirSync(join(dir, 'boot/grub'))).toEqual(['grubenv']);
    expect(readdirSync(entries)).toEqual(['bootc-default-d1.conf']);
  });

  it("leaves GRUB's trial of another deployment alone", async () => {
    esp(['bootc-default-d1.conf']);
    mkdirSync(join(dir, 'boot/grub'));
    const grubenv = join(dir, 'boot/grub/grubenv');
    const before = renderGrubEnv({ bootc_trial: 'bootc-default-d2', bootc_tries: '0' });
    writeFileSync(grubenv, before);
    expect((await bless('bootc.deploy=default/d1')).exitCode).toBe(0);
    expect(readFileSync(grubenv, 'utf8')).toBe(before);
  });

  it('is content when the entry was already marked good', async () => {
    esp(['bootc-default-d1.conf']);
    const r = await bless('bootc.deploy=default/d1');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('already marked good');
  });

  it('fails when the booted entry is nowhere to be found', async () => {
    esp(['bootc-default-d2+3.conf']);
    const r = await bless('bootc.deploy=default/d1');
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('no boot entry bootc-default-d1[+N].conf or UKI bootc-default-d1[+N].efi');
  });

  it('renames the booted UKI in EFI/Linux/', async () => {
    esp([]);
    const linux = join(dir, 'boot/EFI/Linux');
    mkdirSync(linux, { recursive: true });
    for (const f of ['bootc-default-d1+2-1.efi', 'bootc-default-d0.efi', 'other.efi']) writeFileSync(join(linux, f), f);
    const r = await bless('root=UUID=x rw bootc.deploy=default/d1');
    expect(r.exitCode).toBe(0);
    expect(readdirSync(linux).sort()).toEqual(['bootc-default-d0.efi', 'bootc-default-d1.efi', 'other.efi']);
  });

  it('finds the deployment of a sealed UKI from what prepare-root recorded in /run', async () => {
    esp([]);
    const linux = join(dir, 'boot/EFI/Linux');
    mkdirSync(linux, { recursive: true });
    writeFileSync(join(linux, 'bootc-default-d1+2-1.efi'), 'x');
    mkdirSync(join(dir, 'run'));
    writeFileSync(join(dir, 'run', 'booted-deployment'), 'default/d1\n');
    const r = await bless(`rw bootc.deploy-selector=${'ab'.repeat(32)}`);
    expect(r.exitCode).toBe(0);
    expect(readdirSync(linux)).toEqual(['bootc-default-d1.efi']);
  });

  it('does nothing on a system not booted by bootc', async () => {
    expect((await bless('root=/dev/vda1')).exitCode).toBe(0);
  });
});
