/**
 * The interactive installer: image -> disk -> options -> plan -> typed confirmation ->
 * progress -> done (reboot) or failure (error, hint, log file). Nothing is written before
 * the confirmation; until then Esc or Ctrl-C quits at once, afterwards they ask first.
 */
import { useEffect, useRef, useState } from 'react';
import { Box } from 'ink';
import { KeyRouterProvider, useKeys, useStateRef } from './keys.js';
import { EXIT, reportError } from '../core/handler.js';
import { UserError } from '../core/errors.js';
import { Progress, type ProgressEvent } from '../core/progress.js';
import { checkHostname, checkPasswordHash, checkUserName, renderAnswers, type AnswerUser } from '../install/answers.js';
import { type DiskCandidate } from '../disk/inventory.js';
import { parseRootSize } from '../install/options.js';
import { answersOf, renderPlan, splitKargs, type InstallChoices } from './choices.js';
import { LogPane } from './log-pane.js';
import { emptyProgress, foldProgress, type ProgressView } from './progress-model.js';
import { BusyScreen } from './screens/busy-screen.js';
import { ConfirmScreen } from './screens/confirm-screen.js';
import { DiskScreen } from './screens/disk-screen.js';
import { ImageScreen } from './screens/image-screen.js';
import { DoneScreen, FailureScreen } from './screens/outcome-screens.js';
import { OptionsScreen, defaultOptions, type OptionsValues } from './screens/options-screen.js';
import { PlanScreen } from './screens/plan-screen.js';
import { ProgressScreen } from './screens/progress-screen.js';
import type { ImageDefaults, ImageSourceChoice, InstallerServices, LogBook } from './services.js';
import { ThemeContext } from './theme.js';

export interface InstallerProps {
  services: InstallerServices;
  log: LogBook;
  plain: boolean;
  /** Called once, when the installer is over; `message` is printed after the screen is gone. */
  onExit: (code: number, message?: string) => void;
  /** A reference to offer first (`bootc install --source-imgref`). */
  defaultSource?: string;
  /** What a system installed from `defaultSource` follows for updates (`--target-imgref`). */
  defaultTarget?: string;
  now?: () => number;
}

type Problem = { message: string; hint?: string };
type Screen =
  | { name: 'image' }
  | { name: 'busy'; doing: string }
  | { name: 'disk' }
  | { name: 'options' }
  | { name: 'plan' }
  | { name: 'confirm' }
  | { name: 'progress' }
  | { name: 'done'; summary: string[] }
  | { name: 'failed'; report: string };

const problemOf = (err: unknown): Problem => {
  if (err instanceof UserError) return { message: err.message, ...(err.hint ? { hint: err.hint } : {}) };
  let text = '';
  reportError(err, { verbose: false, write: (t) => (text += t) });
  const [first = '', ...rest] = text.trimEnd().split('\n');
  const hint = rest.find((l) => l.startsWith('hint: '));
  return { message: first.replace(/^error: /, ''), ...(hint ? { hint: hint.slice('hint: '.length) } : {}) };
};

export function Installer(props: InstallerProps) {
  return (
    <KeyRouterProvider>
      <InstallerScreens {...props} />
    </KeyRouterProvider>
  );
}

function InstallerScreens({ services, log, plain, onExit, defaultSource, defaultTarget, now = Date.now }: InstallerProps) {
  const [screen, setScreen, screenRef] = useStateRef<Screen>({ name: 'image' });
  const [showLog, setShowLog] = useState(false);
  /** Images found on media; null while still looking. */
  const [found, setFound] = useState<ImageSourceChoice[] | null>(null);
  const [imageError, setImageError] = useState<Problem | null>(null);
  const [source, setSource] = useState<string>('');
  const [defaults, setDefaults] = useState<ImageDefaults | null>(null);
  const [disks, setDisks] = useState<DiskCandidate[]>([]);
  const [disk, setDisk] = useState<DiskCandidate | null>(null);
  const [options, setOptions] = useState<OptionsValues | null>(null);
  const [optionsError, setOptionsError] = useState<Problem | null>(null);
  const [choices, setChoices] = useState<InstallChoices | null>(null);
  const [planLines, setPlanLines] = useState<string[]>([]);
  const [progress, setProgress] = useState<ProgressView>(emptyProgress);
  const [askingStop, setAskingStop, askingStopRef] = useStateRef(false);
  const exited = useRef(false);

  const exit = (code: number, message?: string): void => {
    if (exited.current) return;
    exited.current = true;
    onExit(code, message);
  };

  useEffect(() => {
    let live = true;
    services
      .imageSources()
      .then((images) => live && setFound(images.filter((f) => f.reference !== defaultSource)))
      .catch((err: unknown) => live && (setFound([]), setImageError(problemOf(err))));
    return () => {
      live = false;
    };
  }, [services, defaultSource]);

  useKeys((input, key) => {
    const current = screenRef.current.name;
    const askingStop = askingStopRef.current;
    if (key.tab) {
      setShowLog((s) => !s);
      return;
    }
    const cancel = key.escape || (key.ctrl && input === 'c');
    if (current === 'progress') {
      if (askingStop && input === 'y') {
        setAskingStop(false);
        log.write('Stop requested: the install is unwinding\n');
        services.stopInstall();
      } else if (askingStop && input === 'n') setAskingStop(false);
      else if (cancel) setAskingStop(true);
      return;
    }
    if (cancel && current !== 'done' && current !== 'failed') exit(EXIT.interrupted, 'Cancelled: nothing was written to any disk.');
  });

  const loadDisks = async (ref: string): Promise<void> => {
    setScreen({ name: 'busy', doing: 'Listing disks (lsblk)...' });
    try {
      setDisks(await services.listDisks(ref));
      setScreen({ name: 'disk' });
    } catch (err) {
      setImageError(problemOf(err));
      setScreen({ name: 'image' });
    }
  };

  const chooseImage = async (ref: string): Promise<void> => {
    setScreen({ name: 'busy', doing: `Reading ${ref} (pulling it into the store)...` });
    try {
      const d = await services.readImage(ref);
      setSource(ref);
      setDefaults(d);
      if (ref !== source || options === null) setOptions(defaultOptions(d));
      setImageError(null);
      await loadDisks(ref);
    } catch (err) {
      setImageError(problemOf(err));
      setScreen({ name: 'image' });
    }
  };

  const submitOptions = async (options: OptionsValues): Promise<void> => {
    setOptions(options);
    if (!disk || !defaults) return;
    try {
      const rootSize = options.rootSize.trim();
      if (rootSize !== '') parseRootSize(rootSize);
      const hostname = options.hostname.trim();
      if (hostname !== '') {
        const bad = checkHostname(hostname);
        if (bad) throw new UserError(bad, { hint: 'leave it empty to keep the image\'s host name' });
      }
      const keyFile = options.sshKeyFile.trim();
      if (keyFile !== '') {
        const unreadable = await services.checkReadable(keyFile);
        if (unreadable) throw new UserError(`root SSH keys file ${keyFile}: ${unreadable}`, { hint: 'give a file in authorized_keys format, or leave it empty' });
      }
      const userName = options.userName.trim();
      const hash = options.userPasswordHash.trim();
      let user: AnswerUser | undefined;
      if (userName !== '' || hash !== '') {
        const bad = userName === '' ? 'a password hash without a user name' : checkUserName(userName) ?? checkPasswordHash(hash);
        if (bad) throw new UserError(bad, { hint: 'leave both user fields empty to add no user; make a hash with `openssl passwd -6`' });
        user = { name: userName, passwordHash: hash, groups: [] };
      }
      const c: InstallChoices = {
        source,
        // The default image's target; another image chosen follows itself.
        ...(defaultTarget !== undefined && source === defaultSource ? { target: defaultTarget } : {}),
        disk,
        filesystem: options.filesystem,
        ...(rootSize !== '' ? { rootSize } : {}),
        kargs: splitKargs(options.kargs),
        ...(keyFile !== '' ? { rootSshAuthorizedKeys: keyFile } : {}),
        ...(hostname !== '' ? { hostname } : {}),
        ...(defaults.stateroot !== undefined ? { stateroot: defaults.stateroot } : {}),
        ...(user !== undefined ? { user } : {}),
      };
      setPlanLines(renderPlan(c));
      setChoices(c);
      setOptionsError(null);
      setScreen({ name: 'plan' });
    } catch (err) {
      setOptionsError(problemOf(err));
    }
  };

  const startInstall = async (): Promise<void> => {
    if (!choices || !options) return;
    const answersFile = options.answersFile.trim();
    setProgress(emptyProgress);
    setScreen({ name: 'progress' });
    const sink = {
      handle: (event: ProgressEvent) => {
        const at = now();
        setProgress((v) => foldProgress(v, event, at));
      },
      close: async () => undefined,
    };
    try {
      if (answersFile !== '') {
        await services.saveAnswers(answersFile, renderAnswers(answersOf(choices)));
        log.write(`Answers saved to ${answersFile}\n`);
      }
      const outcome = await services.install(choices, new Progress([sink]));
      for (const l of outcome.summary) log.write(l + '\n');
      setScreen({ name: 'done', summary: outcome.summary });
    } catch (err) {
      let report = '';
      reportError(err, { verbose: false, write: (t) => (report += t) });
      log.write(report);
      setScreen({ name: 'failed', report });
    } finally {
      setAskingStop(false);
    }
  };

  const body = (() => {
    switch (screen.name) {
      case 'image':
        return <ImageScreen sources={[...(defaultSource !== undefined ? [{ reference: defaultSource, origin: 'default' }] : []), ...(found ?? [])]} searching={found === null} error={imageError} {...(source ? { initial: source } : {})} onChoose={(ref) => void chooseImage(ref)} />;
      case 'busy':
        return <BusyScreen title="Install a bootable container image" doing={screen.doing} />;
      case 'disk':
        return (
          <DiskScreen
            disks={disks}
            onChoose={(d) => {
              setDisk(d);
              setScreen({ name: 'options' });
            }}
            onBack={() => setScreen({ name: 'image' })}
            onRescan={() => void loadDisks(source)}
          />
        );
      case 'options':
        return options && defaults ? (
          <OptionsScreen values={options} defaults={defaults} error={optionsError} onChange={setOptions} onSubmit={(values) => void submitOptions(values)} onBack={() => setScreen({ name: 'disk' })} />
        ) : null;
      case 'plan':
        return <PlanScreen lines={planLines} onAccept={() => setScreen({ name: 'confirm' })} onBack={() => setScreen({ name: 'options' })} />;
      case 'confirm':
        return disk ? <ConfirmScreen disk={disk} onConfirm={() => void startInstall()} onBack={() => setScreen({ name: 'plan' })} /> : null;
      case 'progress':
        return <ProgressScreen device={disk?.path ?? ''} view={progress} askingStop={askingStop} />;
      case 'done':
        return (
          <DoneScreen
            device={disk?.path ?? ''}
            summary={screen.summary}
            answersFile={options && options.answersFile.trim() !== '' ? options.answersFile.trim() : null}
            onReboot={() => {
              services.reboot().then(
                () => exit(EXIT.ok, 'Rebooting.'),
                (err: unknown) => exit(EXIT.failure, `Reboot failed: ${problemOf(err).message}`),
              );
            }}
            onQuit={() => exit(EXIT.ok, `Installed to ${disk?.path}. Reboot to start the new system.`)}
          />
        );
      case 'failed':
        return <FailureScreen report={screen.report} logPath={services.logPath} onQuit={() => exit(EXIT.failure, `The install failed; the full log is in ${services.logPath}`)} />;
    }
  })();

  return (
    <ThemeContext.Provider value={{ plain }}>
      <Box flexDirection="column">
        {body}
        {showLog ? <LogPane log={log} logPath={services.logPath} /> : null}
      </Box>
    </ThemeContext.Provider>
  );
}
