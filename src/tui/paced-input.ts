/**
 * Terminal input handed to ink one key at a time, each in its own turn of the event loop.
 * Keys that arrive in one read (a paste, `tmux send-keys Down Down text`, a serial line
 * catching up) would otherwise all be handled before React renders, so a key meant for
 * the next field or screen reaches the previous one. Pure tokenizer, thin stream.
 */
import { EventEmitter } from 'node:events';

const ESC = '\x1b';
/** Time for React to render what one key changed before the next key is handled. */
const KEY_GAP_MS = 5;

/** Splits terminal input into keys: CSI and SS3 sequences whole, everything else per code point. */
export function splitKeys(input: string): string[] {
  const keys: string[] = [];
  let i = 0;
  while (i < input.length) {
    if (input[i] === ESC && input[i + 1] === '[') {
      let j = i + 2;
      while (j < input.length && !/[\x40-\x7e]/.test(input[j]!)) j++;
      // Legacy function keys (ESC [ [ A) carry a second '['.
      if (input[j] === '[' && j === i + 2) j++;
      keys.push(input.slice(i, j + 1));
      i = j + 1;
    } else if (input[i] === ESC && input[i + 1] === 'O' && i + 2 < input.length) {
      keys.push(input.slice(i, i + 3));
      i += 3;
    } else {
      const cp = input.codePointAt(i)!;
      const len = cp > 0xffff ? 2 : 1;
      keys.push(input.slice(i, i + len));
      i += len;
    }
  }
  return keys;
}

/** The parts of a TTY read stream that ink uses. */
export class PacedInput extends EventEmitter {
  readonly isTTY = true;
  private readonly queue: string[] = [];
  private ready: string | null = null;
  private scheduled = false;
  private readonly onData = (chunk: Buffer | string): void => {
    this.queue.push(...splitKeys(typeof chunk === 'string' ? chunk : chunk.toString('utf8')));
    this.pump();
  };

  constructor(private readonly source: NodeJS.ReadStream) {
    super();
    source.on('data', this.onData);
  }

  private pump(): void {
    if (this.scheduled || this.queue.length === 0) return;
    this.scheduled = true;
    // A timer, not setImmediate: React schedules the render a key causes with setImmediate,
    // which runs in the same loop iteration, before the next timer delivers the next key.
    setTimeout(() => {
      this.scheduled = false;
      if (this.ready === null) this.ready = this.queue.shift() ?? null;
      if (this.ready !== null) this.emit('readable');
      this.pump();
    }, KEY_GAP_MS);
  }

  read(): string | null {
    const key = this.ready;
    this.ready = null;
    return key;
  }

  setEncoding(): this {
    return this;
  }

  setRawMode(on: boolean): this {
    this.source.setRawMode(on);
    return this;
  }

  ref(): this {
    this.source.ref();
    return this;
  }

  unref(): this {
    this.source.unref();
    return this;
  }

  /** Stop reading the terminal (the installer is over). */
  close(): void {
    this.source.off('data', this.onData);
    this.source.pause();
  }
}
