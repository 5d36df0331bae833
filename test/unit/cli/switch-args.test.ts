import { describe, expect, it } from 'vitest';
import { runSwitch, runUpgrade } from '../../../src/cli/upgrade.js';

// Each of these is refused before anything is read, locked or fetched.
describe('bootc switch / upgrade flags', () => {
  const base = { apply: false, quiet: true };
  it('refuses an unknown transport with the list of known ones', async () => {
    await expect(runSwitch({ ...base, target: 'quay.io/x/y', transport: 'ftp' })).rejects.toThrow(/unknown transport "ftp"/);
  });
  it('refuses a malformed reference before any network', async () => {
    await expect(runSwitch({ ...base, target: 'UPPER/Case:tag', transport: 'registry' })).rejects.toThrow(/UPPER\/Case:tag/);
    await expect(runSwitch({ ...base, target: 'oci:/x:v1', transport: 'registry' })).rejects.toThrow(/names transport "oci"/);
  });
  it('refuses flags that contradict each other', async () => {
    await expect(runUpgrade({ ...base, check: true, downloadOnly: true })).rejects.toThrow(/--check and --download-only cannot be used together/);
    await expect(runUpgrade({ ...base, check: false, downloadOnly: true, apply: true })).rejects.toThrow(/--download-only and --apply/);
    await expect(runUpgrade({ ...base, check: false, progressFd: 1 })).rejects.toThrow(/--progress-fd 1/);
  });
});
