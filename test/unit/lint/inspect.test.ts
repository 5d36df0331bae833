import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { inspectContainer, renderContainerInspection } from '../../../src/container/inspect.js';
import { testDir, type Tree } from '../../support/temp-tree.js';

const tree = (files: Tree): string => testDir('inspect', { files });

describe('bootc container inspect', () => {
  it('reports a plain kernel and the kargs.d arguments for this architecture, files by name', async () => {
    const root = tree({
      'usr/lib/modules/6.1.0-1-amd64/vmlinuz': 'k',
      'usr/lib/bootc/kargs.d/20-b.toml': 'kargs = ["quiet"]\n',
      'usr/lib/bootc/kargs.d/10-a.toml': 'kargs = ["console=ttyS0"]\n',
      'usr/lib/bootc/kargs.d/30-arm.toml': 'kargs = ["arm-only"]\nmatch-architectures = ["aarch64"]\n',
    });
    const doc = await inspectContainer(root, 'x86_64');
    expect(doc).toEqual({ kargs: ['console=ttyS0', 'quiet'], kernel: { version: '6.1.0-1-amd64', unified: false } });
    expect(renderContainerInspection(doc, 'humanreadable')).toBe('Kernel: 6.1.0-1-amd64\nKernel arguments: console=ttyS0 quiet\n');
    expect(JSON.parse(renderContainerInspection(doc, 'json'))).toEqual(doc);
    expect(parseYaml(renderContainerInspection(doc, 'yaml'))).toEqual(doc);
  });

  it('reports a UKI the image ships as unified, named after its file', async () => {
    const root = tree({ 'boot/EFI/Linux/myos-6.1.efi': 'uki', 'usr/lib/modules/6.1/vmlinuz': 'k' });
    expect((await inspectContainer(root, 'x86_64')).kernel).toEqual({ version: 'myos-6.1', unified: true });
    const modulesUki = tree({ 'usr/lib/modules/6.2/6.2.efi': 'uki' });
    expect((await inspectContainer(modulesUki, 'x86_64')).kernel).toEqual({ version: '6.2', unified: true });
  });

  it('reports no kernel as null', async () => {
    const doc = await inspectContainer(tree({ 'etc/hostname': '' }), 'x86_64');
    expect(doc).toEqual({ kargs: [], kernel: null });
    expect(renderContainerInspection(doc, 'humanreadable')).toBe('Kernel: (none)\nKernel arguments: (none)\n');
  });

  it('a bad kargs.d file is an error naming it', async () => {
    const root = tree({ 'usr/lib/bootc/kargs.d/10-bad.toml': 'kargs = [1]\n' });
    await expect(inspectContainer(root, 'x86_64')).rejects.toThrow(/10-bad\.toml/);
  });
});
