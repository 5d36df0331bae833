/** The booted deployment from the command line and prepare-root's record; both kinds of staged record. */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readBootedDeployment } from '../../../src/updates/booted.js';
import { parseStagedRecord } from '../../../src/updates/deployments.js';
import { testDir } from '../../support/temp-tree.js';

describe('the booted deployment and the staged record', () => {
  it('takes the booted deployment from prepare-root’s record when the command line names only a selector', async () => {
    const dir = testDir('booted');
    const cmdlinePath = join(dir, 'cmdline');
    const bootedRecordPath = join(dir, 'booted-deployment');
    await writeFile(cmdlinePath, 'root=UUID=x bootc.deploy-selector=' + 'a'.repeat(64) + '\n');
    expect(await readBootedDeployment({ cmdlinePath, bootedRecordPath })).toBeNull();
    await writeFile(bootedRecordPath, 'default/abc.0\n');
    expect(await readBootedDeployment({ cmdlinePath, bootedRecordPath })).toEqual({ stateroot: 'default', id: 'abc.0' });
    // Without a record path only the command line counts; and it wins over the record.
    expect(await readBootedDeployment({ cmdlinePath })).toBeNull();
    await writeFile(cmdlinePath, 'bootc.deploy=other/def.1\n');
    expect(await readBootedDeployment({ cmdlinePath, bootedRecordPath })).toEqual({ stateroot: 'other', id: 'def.1' });
  });

  it('reads both kinds of staged record, the old Type #1 one without a kind', () => {
    const type1 = { stateroot: 'default', id: 'a.0', entryFileName: 'bootc-default-a.0+3.conf', entry: { title: 't', sortKey: 'bootc', linux: '/l', initrd: '/i', options: 'o' } };
    expect(parseStagedRecord(JSON.stringify(type1), 'rec').kind).toBeUndefined();
    const uki = { kind: 'uki', stateroot: 'default', id: 'a.0', ukiFileName: 'bootc-default-a.0+3.efi' };
    expect(parseStagedRecord(JSON.stringify(uki), 'rec')).toEqual(uki);
    expect(() => parseStagedRecord(JSON.stringify({ kind: 'uki', stateroot: 'default', id: 'a.0' }), 'rec')).toThrow(/not a staged update record/);
  });
});
