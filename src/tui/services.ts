/**
 * What the installer screens need from the machine, as one interface: the real
 * implementation (machine.ts) lists disks, reads the image and installs; component tests
 * give their own. Keeps the screens free of I/O.
 */
import type { Progress } from '../core/progress.js';
import type { DiskCandidate } from '../disk/inventory.js';
import type { InstallFsType } from '../install/config.js';
import type { InstallChoices } from './choices.js';

export interface ImageSourceChoice {
  /** An image reference, e.g. oci-archive:/run/media/os.tar. */
  reference: string;
  /** Where it was found: "default", "on /run/media/usb". */
  origin: string;
}

/** From the image's install configuration (and the host's): the options screen's defaults. */
export interface ImageDefaults {
  filesystem: InstallFsType;
  /** Shown, not edited: the install config's kargs come first on the command line anyway. */
  configKargs: string[];
  stateroot?: string;
  /** The image's manifest digest, shown on the plan screen. */
  digest: string;
}

export interface InstallOutcome {
  /** Lines for the final screen (digest, deployment, root filesystem). */
  summary: string[];
}

export interface InstallerServices {
  imageSources(): Promise<ImageSourceChoice[]>;
  readImage(source: string): Promise<ImageDefaults>;
  listDisks(source: string): Promise<DiskCandidate[]>;
  /** Null when `path` is a readable file, else why not. */
  checkReadable(path: string): Promise<string | null>;
  saveAnswers(path: string, text: string): Promise<void>;
  install(choices: InstallChoices, progress: Progress): Promise<InstallOutcome>;
  /** Ask the running install to stop (it unwinds through its cleanup and rejects). */
  stopInstall(): void;
  reboot(): Promise<void>;
  /** Where the full log is written. */
  logPath: string;
}

/** The installer's log: every line goes to the log file; the log pane shows the last ones. */
export class LogBook {
  private readonly lines: string[] = [];
  private readonly listeners = new Set<() => void>();
  private partial = '';
  constructor(
    private readonly keep: number = 200,
    private readonly persist: (text: string) => void = () => undefined,
  ) {}

  write(text: string): void {
    this.persist(text);
    const parts = (this.partial + text).split('\n');
    this.partial = parts.pop() ?? '';
    if (parts.length === 0) return;
    // Listr-style redraws and carriage returns make no sense in a pane: keep the last state of a line.
    for (const p of parts) this.lines.push(p.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '').split('\r').at(-1) ?? '');
    if (this.lines.length > this.keep) this.lines.splice(0, this.lines.length - this.keep);
    for (const l of this.listeners) l();
  }

  tail(n: number): string[] {
    return this.lines.slice(-n);
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
