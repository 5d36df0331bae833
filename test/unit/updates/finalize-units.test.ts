/**
 * The shutdown finalisation runs only when something is staged: the units as shipped
 * (systemd/ is copied into the image's /usr/lib/systemd/system as it is).
 */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sysrootPaths } from '../../../src/deploy/paths.js';
import { HOST_LOCATIONS } from '../../../src/updates/deployments.js';

const UNITS = 'systemd';

/** `[Section]` → key → values, as systemd reads a unit file (repeated keys kept in order). */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      current = new Map();
      sections.set(header[1]!, current);
      continue;
    }
    const eq = line.indexOf('=');
    if (!current || eq < 0) throw new Error(`not a unit file line: ${line}`);
    const key = line.slice(0, eq).trim();
    current.set(key, [...(current.get(key) ?? []), line.slice(eq + 1).trim()]);
  }
  return sections;
}

const unit = (name: string) => parseUnit(readFileSync(join(UNITS, name), 'utf8'));

describe('bootc-finalize-staged units', () => {
  it('a path unit watches the staged record and starts the service', () => {
    const path = unit('bootc-finalize-staged.path');
    expect(path.get('Path')?.get('PathExists')).toEqual([sysrootPaths(HOST_LOCATIONS.sysroot).staged]);
    expect(path.get('Path')?.get('Unit')).toEqual(['bootc-finalize-staged.service']);
    expect(path.get('Install')?.get('WantedBy')).toEqual(['multi-user.target']);
  });

  it('the service is not started at boot, and not at all without a staged record', () => {
    const service = unit('bootc-finalize-staged.service');
    expect(service.has('Install')).toBe(false);
    expect(service.get('Unit')?.get('ConditionPathExists')).toEqual([sysrootPaths(HOST_LOCATIONS.sysroot).staged]);
    expect(service.get('Service')?.get('ExecStop')).toEqual(['/usr/bin/bootc internals finalize-staged']);
  });

  it('multi-user.target wants the path unit, not the service', () => {
    const wants = join(UNITS, 'multi-user.target.wants');
    const links = readdirSync(wants);
    expect(links).toContain('bootc-finalize-staged.path');
    expect(links).not.toContain('bootc-finalize-staged.service');
    expect(readlinkSync(join(wants, 'bootc-finalize-staged.path'))).toBe('../bootc-finalize-staged.path');
  });
});
