/**
 * privileged tier (root: chown): addUsers on a deployment tree, as install and build-disk
 * apply the answers' user and bib's [[customizations.user]] before finalisation.
 */
import { chownSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { addUsers } from '../../../src/deploy/users.js';
import { explainSkip, needsRoot } from '../../support/tier.js';
import { testDir, DISK_TMP } from '../../support/temp-tree.js';

const skip = explainSkip('privileged', needsRoot());

describe.skipIf(skip)('addUsers on a deployment', () => {
  let dir = '';
  let deployment = '';
  let stateVar = '';
  beforeEach(() => {
    dir = testDir('users', { under: DISK_TMP });
    deployment = join(dir, 'deploy');
    stateVar = join(dir, 'var');
    mkdirSync(join(deployment, 'etc'), { recursive: true });
    mkdirSync(stateVar);
    writeFileSync(join(deployment, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/bash\n', { mode: 0o644 });
    writeFileSync(join(deployment, 'etc/group'), 'root:x:0:\nshadow:x:42:\nsudo:x:27:\n', { mode: 0o644 });
    // Debian's shadow: root:shadow 0640.
    writeFileSync(join(deployment, 'etc/shadow'), 'root:*:19000:0:99999:7:::\n', { mode: 0o640 });
    chownSync(join(deployment, 'etc/shadow'), 0, 42);
  });

  it('adds every user to passwd, group and shadow, keeping the owner and mode the image gave the files', async () => {
    await addUsers(deployment, stateVar, [
      { name: 'alice', passwordHash: '$6$salt$hash', groups: ['sudo'], sshKey: 'ssh-ed25519 AAAA alice@example\n' },
      { name: 'bob' },
    ]);
    expect(readFileSync(join(deployment, 'etc/passwd'), 'utf8')).toBe(
      'root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\nbob:x:1001:1001::/home/bob:/bin/bash\n',
    );
    expect(readFileSync(join(deployment, 'etc/group'), 'utf8')).toContain('sudo:x:27:alice\n');
    expect(readFileSync(join(deployment, 'etc/shadow'), 'utf8')).toMatch(/^alice:\$6\$salt\$hash:/m);
    expect(readFileSync(join(deployment, 'etc/shadow'), 'utf8')).toMatch(/^bob:!:/m);
    const shadow = statSync(join(deployment, 'etc/shadow'));
    expect([shadow.mode & 0o7777, shadow.uid, shadow.gid]).toEqual([0o640, 0, 42]);
    expect(statSync(join(deployment, 'etc/passwd')).mode & 0o7777).toBe(0o644);
  });

  it('makes each home under the stateroot\'s /var, owned by the user, with the SSH key', async () => {
    await addUsers(deployment, stateVar, [{ name: 'alice', sshKey: 'ssh-ed25519 AAAA alice@example' }, { name: 'carol', home: '/var/srv/carol' }]);
    const home = statSync(join(stateVar, 'home/alice'));
    expect([home.mode & 0o7777, home.uid, home.gid]).toEqual([0o700, 1000, 1000]);
    const keys = join(stateVar, 'home/alice/.ssh/authorized_keys');
    expect(readFileSync(keys, 'utf8')).toBe('ssh-ed25519 AAAA alice@example\n');
    expect([statSync(keys).mode & 0o7777, statSync(keys).uid]).toEqual([0o600, 1000]);
    expect(statSync(join(stateVar, 'srv/carol')).uid).toBe(1001);
  });

  it('refuses a home outside /home and /var before changing any file', async () => {
    const before = readFileSync(join(deployment, 'etc/passwd'), 'utf8');
    await expect(addUsers(deployment, stateVar, [{ name: 'ok' }, { name: 'dave', home: '/opt/dave' }])).rejects.toThrow(
      /the home directory \/opt\/dave of user "dave" is not under \/home or \/var/,
    );
    expect(readFileSync(join(deployment, 'etc/passwd'), 'utf8')).toBe(before);
  });
});
