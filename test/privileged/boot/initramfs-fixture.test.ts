/** The fixture's own initramfs passes the systemd-initramfs check (privileged tier: it reads the built fixtures). */
import { describe, expect, it } from 'vitest';
import { checkSystemdInitramfs, inspectInitramfs } from '../../../src/boot/initramfs.js';
import { fixturesHint, v1Initramfs } from '../../../fixtures/paths.js';
import { explainSkip, needsFile } from '../../support/tier.js';

describe.skipIf(explainSkip('fixtures', needsFile(v1Initramfs, fixturesHint)))('the fixture v1 initramfs (Debian 12 dracut)', () => {
  it('is systemd-based', async () => {
    expect((await inspectInitramfs(v1Initramfs)).verdict).toEqual({ systemdBased: true });
    await checkSystemdInitramfs(v1Initramfs, { imageName: 'fixture:v1', pathInImage: '/usr/lib/modules/…/initramfs.img' });
  });
});
