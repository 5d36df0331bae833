/**
 * The real machine behind the installer, without writing any disk: images found on media
 * (real OCI layout and archive files), the disk inventory from this machine's lsblk, and
 * `bootc install to-disk --config` failing clearly when the answers select no disk.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { explainSkip, needsCommands, needsRoot } from '../../support/tier.js';
import { readDiskInventory } from '../../../src/disk/inventory.js';
import { findImagesOnMedia } from '../../../src/tui/machine.js';
import { suiteDir, DISK_TMP } from '../../support/temp-tree.js';

const skip = explainSkip('privileged', needsRoot() ?? needsCommands('lsblk'));
const cli = (...args: string[]) => execa('node', ['--import', 'tsx', 'src/cli.ts', ...args], { reject: false });

describe.skipIf(skip)('installer machine and answers replay', () => {
  let tmp = '';
  const scratch = suiteDir('tui-replay', { under: DISK_TMP });
  beforeAll(() => {
    tmp = scratch.path;
  });

  it('finds OCI layouts (one reference per tag) and archives on media', async () => {
    const layout = join(tmp, 'media', 'usb', 'os');
    mkdirSync(layout, { recursive: true });
    writeFileSync(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    writeFileSync(
      join(layout, 'index.json'),
      JSON.stringify({ schemaVersion: 2, manifests: [{ annotations: { 'org.opencontainers.image.ref.name': 'v1' } }, { annotations: { 'org.opencontainers.image.ref.name': 'v2' } }] }),
    );
    writeFileSync(join(tmp, 'media', 'usb', 'os.tar'), '');
    writeFileSync(join(tmp, 'media', 'notes.txt'), '');
    const found = await findImagesOnMedia([join(tmp, 'media'), join(tmp, 'missing')]);
    expect(found.map((f) => f.reference).sort()).toEqual([`oci-archive:${join(tmp, 'media/usb/os.tar')}`, `oci:${layout}:v1`, `oci:${layout}:v2`]);
    expect(found[0]!.origin).toBe(`on ${join(tmp, 'media')}`);
  });

  it("lists this machine's disks and refuses the one holding /", async () => {
    const disks = await readDiskInventory();
    expect(disks.length).toBeGreaterThan(0);
    const running = disks.filter((d) => d.refusal?.includes("running system's root filesystem"));
    // A root on overlay or tmpfs (a container) has no disk to refuse.
    if (running.length === 0) return;
    expect(running).toHaveLength(1);
  });

  it('`install to-disk --config` fails clearly when no disk matches, writing nothing', async () => {
    const answers = join(tmp, 'answers.toml');
    writeFileSync(answers, '[image]\nsource = "oci:/nowhere:v1"\n[disk]\nserial = "NO-SUCH-SERIAL-0000"\nwipe = true\n');
    const r = await cli('install', 'to-disk', '--config', answers);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('no usable disk matches serial "NO-SUCH-SERIAL-0000"');
    expect(r.stderr).toMatch(/hint: usable disks: /);
  });

  it('`install to-disk --config` names a broken answers file and key', async () => {
    const answers = join(tmp, 'broken.toml');
    writeFileSync(answers, '[image]\nsource = "oci:/nowhere:v1"\n[disk]\npath = "/dev/null"\n[options]\ncolour = "red"\n');
    const r = await cli('install', 'to-disk', '--config', answers);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain(`error: ${answers}: unknown key \`options.colour\``);
  });
});
