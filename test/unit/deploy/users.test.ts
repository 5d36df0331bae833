import { describe, expect, it } from 'vitest';
import { addUser, isPasswordHash } from '../../../src/deploy/users.js';
import { UserError } from '../../../src/core/errors.js';

const base = {
  passwd: 'root:x:0:0:root:/root:/bin/bash\nsystemd-network:x:998:998::/:/usr/sbin/nologin\n',
  shadow: 'root:*:19000:0:99999:7:::\n',
  group: 'root:x:0:\nsudo:x:27:\nusers:x:100:\n',
};
const now = new Date('2026-01-02T00:00:00Z');

describe('adding users to a deployment /etc', () => {
  it('allocates uid/gid 1000, a primary group, home and a locked password by default', () => {
    const r = addUser(base, { name: 'alice' }, now);
    expect(r.uid).toBe(1000);
    expect(r.gid).toBe(1000);
    expect(r.home).toBe('/home/alice');
    expect(r.files.passwd).toContain('alice:x:1000:1000::/home/alice:/bin/bash\n');
    expect(r.files.group).toContain('alice:x:1000:\n');
    expect(r.files.shadow).toContain(`alice:!:${Math.floor(now.getTime() / 86400000)}:0:99999:7:::\n`);
  });

  it('stores the given hash and adds supplementary groups', () => {
    const r = addUser(base, { name: 'bob', passwordHash: '$6$salt$hash', groups: ['sudo', 'users'] }, now);
    expect(r.files.shadow).toMatch(/^bob:\$6\$salt\$hash:/m);
    expect(r.files.group).toContain('sudo:x:27:bob\n');
    expect(r.files.group).toContain('users:x:100:bob\n');
  });

  it('skips taken ids', () => {
    const r = addUser({ ...base, passwd: base.passwd + 'x:x:1000:1000::/:/bin/sh\n', group: base.group + 'x:x:1000:\n' }, { name: 'carol' }, now);
    expect(r.uid).toBe(1001);
    expect(r.gid).toBe(1001);
  });

  it('refuses an unknown group, naming it', () => {
    expect(() => addUser(base, { name: 'dave', groups: ['wheel'] }, now)).toThrow(
      /group "wheel" for user "dave" does not exist/,
    );
  });

  it('refuses an existing user', () => {
    expect(() => addUser(base, { name: 'root' }, now)).toThrow(UserError);
  });

  it('recognises crypt hashes', () => {
    expect(isPasswordHash('$6$abc$def')).toBe(true);
    expect(isPasswordHash('$y$j9T$abc')).toBe(true);
    expect(isPasswordHash('hunter2')).toBe(false);
  });
});
