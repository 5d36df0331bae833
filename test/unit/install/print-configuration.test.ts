/** `bootc install print-configuration --source-imgref`: an image's install config merged with the host's. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { buildLayout } from '../../privileged/oci/layout-builder.js';
import { runPrintConfiguration } from '../../../src/cli/install.js';
import { suiteDir } from '../../support/temp-tree.js';

describe('print-configuration', () => {
  const tmp = suiteDir('print-configuration');

  const print = async (all: boolean): Promise<string> => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (c: Buffer) => (text += c.toString()));
    await runPrintConfiguration({ all, sourceImgref: `oci:${join(tmp.path, 'layout')}:latest`, store: join(tmp.path, 'store'), hostRoot: join(tmp.path, 'host') }, out);
    return text;
  };

  it('merges the image\'s files with the host\'s /etc, kargs only with --all', async () => {
    await buildLayout(join(tmp.path, 'layout'), {
      layers: [{ files: { 'usr/lib/bootc/install/00-os.toml': '[install]\nroot-fs-type = "xfs"\nkargs = ["from-image"]\n' }, compression: 'gzip' }],
    });
    mkdirSync(join(tmp.path, 'host/etc/bootc/install'), { recursive: true });
    writeFileSync(join(tmp.path, 'host/etc/bootc/install/10-host.toml'), '[install]\nstateroot = "host"\nkargs = ["from-host"]\n');
    expect(await print(false)).toBe('{"filesystem":{"root":{"type":"xfs"}},"root-fs-type":"xfs","stateroot":"host"}\n');
    expect(JSON.parse(await print(true))).toMatchObject({ kargs: ['from-image', 'from-host'] });
  });
});
