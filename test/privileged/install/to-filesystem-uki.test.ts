/**
 * Privileged tier: `install to-filesystem --uki` onto a prepared ext4 root and ESP (loop
 * devices): one UKI in EFI/Linux/ carrying the install's command line (root mount spec
 * included), no Type #1 entry, and the origin records that the deployment boots a UKI.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { espInImage, listBootEntries, listUkis } from '../../../src/boot/esp.js';
import { parseOrigin } from '../../../src/deploy/origin.js';
import { sysrootPaths } from '../../../src/deploy/paths.js';
import { parseReference } from '../../../src/oci/reference.js';
import { installToFilesystem } from '../../../src/install/to-filesystem.js';
import { inspectUki } from '../../../src/uki/uki.js';
import { fixturesHint, fixturesIndexPath, ociLayoutRef } from '../../../fixtures/paths.js';
import { explainSkip, needsCommands, needsFile, needsLoopDevices } from '../../support/tier.js';
import { prepareDisk, type PreparedDisk } from './prepared-disk.js';
import { suiteDir, DISK_TMP } from '../../support/temp-tree.js';

const skip = explainSkip(
  'privileged',
  needsLoopDevices() ??
    needsCommands('sfdisk', 'blkid', 'findmnt', 'mkfs.ext4', 'mkfs.fat', 'mcopy', 'fstrim') ??
    needsFile(fixturesIndexPath, fixturesHint),
);

describe.skipIf(skip)('bootc install to-filesystem --uki', () => {
  let tmp: string;
  let disk: PreparedDisk | undefined;
  const scratch = suiteDir('install-uki', { under: DISK_TMP });
  beforeAll(() => {
    tmp = scratch.path;
  });
  afterAll(() => {
    disk?.release();
  });

  it('writes one UKI with the install\'s command line and no Type #1 entry', async () => {
    disk = await prepareDisk(tmp, 'uki', 'ext4');
    const result = await installToFilesystem({
      rootPath: disk.mountDir,
      image: parseReference(ociLayoutRef('v1')),
      kargs: ['from.cli=1'],
      kargDeletes: [],
      uki: true,
      esp: disk.esp,
      rootMountSpec: 'LABEL=myroot',
      skipFinalize: true,
      storeDir: join(tmp, 'store'),
      installerVersion: 'test',
      hostRoot: join(tmp, 'no-host-config'),
    });
    const { id, stateroot } = result.deployment;
    expect(result.boot.kind).toBe('uki');
    const esp = espInImage({ image: disk.esp, offsetBytes: 0 });
    expect(await listUkis(esp)).toEqual([`bootc-${stateroot}-${id}+3.efi`]);
    expect(await listBootEntries(esp)).toEqual([]);
    const origin = parseOrigin(readFileSync(sysrootPaths(disk.mountDir).origin(stateroot, id), 'utf8'), 'origin');
    expect(origin.bootType).toBe('uki');
    const copy = join(tmp, 'uki.efi');
    const { execFileSync } = await import('node:child_process');
    execFileSync('mcopy', ['-n', '-i', disk.esp, `::/EFI/Linux/bootc-${stateroot}-${id}+3.efi`, copy], { env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } });
    const inspection = await inspectUki(copy);
    expect(inspection.cmdline?.split(' ')).toEqual(['root=LABEL=myroot', 'rw', 'console=ttyS0,115200', 'from.cli=1', `bootc.deploy=${stateroot}/${id}`]);
    expect(inspection.signed).toBe(false);
  }, 300_000);
});
