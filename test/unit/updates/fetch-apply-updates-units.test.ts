/**
 * systemd/bootc-fetch-apply-updates.{service,timer}: upstream's schedule, no reboot unless a
 * drop-in asks for it, enabled through the wants link the fixture images copy verbatim; and
 * `systemd-analyze verify` accepts them against a root holding the host's units and a
 * /usr/bin/bootc, as an image built from this repo has.
 */
import { cpSync, existsSync, mkdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { run } from '../../../src/core/exec.js';
import { explainSkip, needsCommands } from '../../support/tier.js';
import { testDir } from '../../support/temp-tree.js';

const systemdDir = fileURLToPath(new URL('../../../systemd/', import.meta.url));
const SERVICE = 'bootc-fetch-apply-updates.service';
const TIMER = 'bootc-fetch-apply-updates.timer';

/** `Section.Key` -> every value, in order (a unit may repeat a key). */
function readUnit(name: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let section = '';
  for (const raw of readFileSync(join(systemdDir, name), 'utf8').split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1]!;
      continue;
    }
    const eq = line.indexOf('=');
    expect(eq, `${name}: "${line}" is not key=value`).toBeGreaterThan(0);
    const key = `${section}.${line.slice(0, eq).trim()}`;
    out.set(key, [...(out.get(key) ?? []), line.slice(eq + 1).trim()]);
  }
  return out;
}

describe('bootc-fetch-apply-updates units', () => {
  it('the service stages an update and never reboots by itself', () => {
    const unit = readUnit(SERVICE);
    expect(unit.get('Service.Type')).toEqual(['oneshot']);
    expect(unit.get('Service.ExecStart')).toEqual(['/usr/bin/bootc upgrade --quiet']);
    expect(unit.get('Unit.ConditionKernelCommandLine')).toEqual(['bootc.deploy']);
    // Started by the timer only.
    expect([...unit.keys()].filter((k) => k.startsWith('Install.'))).toEqual([]);
    // The way to opt into upstream's reboot is written down where an admin looks.
    const text = readFileSync(join(systemdDir, SERVICE), 'utf8');
    expect(text).toContain('bootc-fetch-apply-updates.service.d/');
    expect(text).toMatch(/^#\s+ExecStart=\/usr\/bin\/bootc upgrade --apply --quiet$/m);
  });

  it("the timer keeps upstream's schedule and is enabled through timers.target.wants", () => {
    const unit = readUnit(TIMER);
    expect(unit.get('Timer.OnBootSec')).toEqual(['1h']);
    expect(unit.get('Timer.OnUnitInactiveSec')).toEqual(['8h']);
    expect(unit.get('Timer.RandomizedDelaySec')).toEqual(['2h']);
    expect(unit.get('Timer.Unit')).toBeUndefined(); // the service of the same name
    expect(unit.get('Install.WantedBy')).toEqual(['timers.target']);
    expect(readlinkSync(join(systemdDir, 'timers.target.wants', TIMER))).toBe(`../${TIMER}`);
    expect(existsSync(join(systemdDir, 'multi-user.target.wants', SERVICE))).toBe(false);
  });

  describe.skipIf(explainSkip('unit', needsCommands('systemd-analyze')))('systemd-analyze verify', () => {
    it('accepts both units with no warning', async () => {
      const root = testDir('units-verify');
      const unitDir = join(root, 'usr/lib/systemd/system');
      mkdirSync(unitDir, { recursive: true });
      // The targets and services the units are ordered against come from the host.
      if (existsSync('/usr/lib/systemd/system')) cpSync('/usr/lib/systemd/system', unitDir, { recursive: true, verbatimSymlinks: true });
      cpSync(systemdDir, unitDir, { recursive: true, verbatimSymlinks: true });
      mkdirSync(join(root, 'usr/bin'), { recursive: true });
      writeFileSync(join(root, 'usr/bin/bootc'), '#!/bin/sh\n', { mode: 0o755 });
      const result = await run({
        description: 'Verifying the auto-update units',
        argv: ['systemd-analyze', 'verify', `--root=${root}`, `/usr/lib/systemd/system/${SERVICE}`, `/usr/lib/systemd/system/${TIMER}`],
        okExitCodes: [0, 1],
      });
      expect(result.stderr).toBe('');
      expect(result.exitCode).toBe(0);
    });
  });
});
