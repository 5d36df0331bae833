/**
 * The image's Secure Boot keys for systemd-boot's enrolment go to loader/keys/ on a real
 * FAT ESP (mtools), with their directory structure; an image without keys adds nothing.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ESP_MIN_BYTES, espInImage, formatEsp, installSecureBootKeys, SECURE_BOOT_KEYS_IN_IMAGE } from '../../../src/boot/esp.js';
import { explainSkip, needsCommands } from '../../support/tier.js';
import { suiteDir } from '../../support/temp-tree.js';

describe.skipIf(explainSkip('privileged', needsCommands('mkfs.fat', 'mcopy', 'mdir')))('loader/keys from the image', () => {
  let tmp: string;
  const scratch = suiteDir('sb-keys');
  beforeAll(() => {
    tmp = scratch.path;
  });

  it('copies <name>/{PK,KEK,db}.auth to loader/keys/<name>/', async () => {
    const deployment = join(tmp, 'deploy');
    const keys = join(deployment, SECURE_BOOT_KEYS_IN_IMAGE, 'mykeys');
    mkdirSync(keys, { recursive: true });
    for (const name of ['PK.auth', 'KEK.auth', 'db.auth']) writeFileSync(join(keys, name), `${name} content`);
    const loc = { image: join(tmp, 'esp.img'), offsetBytes: 0 };
    writeFileSync(loc.image, '');
    const { truncate } = await import('node:fs/promises');
    await truncate(loc.image, ESP_MIN_BYTES);
    await formatEsp(loc, ESP_MIN_BYTES);
    const esp = espInImage(loc);
    expect(await installSecureBootKeys(esp, deployment)).toEqual(['loader/keys/mykeys/KEK.auth', 'loader/keys/mykeys/PK.auth', 'loader/keys/mykeys/db.auth']);
    expect((await esp.list('loader/keys/mykeys')).sort()).toEqual(['KEK.auth', 'PK.auth', 'db.auth']);
    expect(await esp.readText('loader/keys/mykeys/PK.auth')).toBe('PK.auth content');
    expect(await installSecureBootKeys(esp, join(tmp, 'no-keys'))).toEqual([]);
  });
});
