/**
 * The installer draws on a terminal even when the environment says CI: ink alone would write
 * only its last frame then, leaving a blank screen that waits for keys. Run in a private
 * tmux server with CI=true and CONTINUOUS_INTEGRATION=true; Esc on the first screen quits.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explainSkip, needsCommands, needsRoot } from '../../support/tier.js';
import { suiteDir, DISK_TMP } from '../../support/temp-tree.js';

const skip = explainSkip('privileged', needsRoot() ?? needsCommands('tmux'));
const SOCKET = `bootc-tui-ci-${process.pid}`;
const tmux = (...args: string[]): string => execFileSync('tmux', ['-L', SOCKET, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

async function waitForScreen(text: string, timeoutMs = 60_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const screen = tmux('capture-pane', '-p', '-t', 'ci');
    if (screen.includes(text)) return screen;
    if (Date.now() > deadline) throw new Error(`the screen never showed ${text}:\n${screen}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe.skipIf(skip)('the interactive installer under CI=true', () => {
  let tmp = '';
  const scratch = suiteDir('tui-ci', { under: DISK_TMP });
  beforeAll(() => {
    tmp = scratch.path;
  });
  afterAll(() => {
    try {
      tmux('kill-server');
    } catch {
      // already gone
    }
    rmSync(join(process.env['TMUX_TMPDIR'] ?? '/tmp', `tmux-${process.getuid?.() ?? 0}`, SOCKET), { force: true });
  });

  it('draws its first screen and quits on Esc with nothing written', async () => {
    const log = join(tmp, 'install.log');
    const command = `node --import tsx src/cli.ts install --source-imgref oci:${tmp}/no-such-layout --store ${tmp}/store --log-file ${log}; echo BOOTC-EXIT=$?; sleep 600`;
    tmux('new-session', '-d', '-x', '80', '-y', '25', '-s', 'ci', '-c', process.cwd(), '-e', 'CI=true', '-e', 'CONTINUOUS_INTEGRATION=true', command);
    // The variables reached the program: the shell in the pane sees them.
    expect(tmux('show-environment', '-t', 'ci', 'CI')).toBe('CI=true\n');
    const first = await waitForScreen('1/5 Image');
    expect(first).toContain(`oci:${tmp}/no-such-layout`);
    tmux('send-keys', '-t', 'ci', 'Escape');
    expect(await waitForScreen('BOOTC-EXIT=', 30_000)).toContain('BOOTC-EXIT=130');
    expect(readFileSync(log, 'utf8')).toContain('bootc install (interactive) started');
  }, 120_000);
});
