// Log text as lines, fed by byte-offset deltas: in order, never twice, gaps made visible.
import { ISignal, Signal } from '@lumino/signaling';

/** Lines `from` onwards are new or changed; `reset` means every index may have moved. */
export interface ILogChange {
  from: number;
  reset?: boolean;
}

/** What a log view reads: a list of lines that grows. */
export interface ILogLines {
  readonly length: number;
  line(index: number): string;
  /** When a line arrived (epoch ms), where known. */
  time?(index: number): number | null;
  readonly changed: ISignal<ILogLines, ILogChange>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The text after the first `bytes` bytes of `text` (UTF-8), for overlapping deltas. */
export function dropBytes(text: string, bytes: number): string {
  if (bytes <= 0) {
    return text;
  }
  return decoder.decode(encoder.encode(text).subarray(bytes));
}

/** What a terminal would show for one line: CR overwrites, as progress bars expect. */
function display(raw: string): string {
  const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
  const cr = line.lastIndexOf('\r');
  return cr < 0 ? line : line.slice(cr + 1);
}

/**
 * How the replica runner starts a progress bar's state that replaces the bar's previous line
 * (canfar_jlab/kernel_runner.py PROGRESS_REWRITE: cursor up, erase line, column 0, as a
 * terminal would do). Its trailing CR makes `display` drop it.
 */
export const PROGRESS_REWRITE = '\x1b[1A\x1b[2K\r';
const CURSOR_UP = '\x1b[1A';

export interface ILogBufferOptions {
  /** Oldest lines are dropped beyond this many (10% at a time). */
  maxLines?: number;
  /** The line shown where bytes never arrived. */
  describeGap?: (bytes: number) => string;
}

/**
 * One session's log. `append(offset, nextOffset, text)` takes a delta as the live channel
 * sends it; a delta already seen is ignored and an overlapping one is trimmed, so a
 * resubscription after a reconnect can never show a line twice.
 */
export class LogBuffer implements ILogLines {
  constructor(options: ILogBufferOptions = {}) {
    this._maxLines = options.maxLines ?? 1_000_000;
    this._describeGap =
      options.describeGap ??
      (bytes => `[... ${bytes} bytes of log not received ...]`);
  }

  get changed(): ISignal<this, ILogChange> {
    return this._changed;
  }

  /** The byte offset to ask for next (resubscribe from here after a reconnect). */
  get nextOffset(): number {
    return this._nextOffset;
  }

  /** Lines held, counting an unfinished last line (not one that will replace its previous). */
  get length(): number {
    return this._lines.length + (this._partialShown() ? 1 : 0);
  }

  /** Lines dropped from the front to stay within `maxLines`. */
  get dropped(): number {
    return this._dropped;
  }

  /** The session's final status once the server said its log is complete, else null. */
  get ended(): string | null {
    return this._ended;
  }

  line(index: number): string {
    if (index < this._lines.length) {
      return this._lines[index];
    }
    return index === this._lines.length && this._partialShown()
      ? display(this._partial!)
      : '';
  }

  /** When line `index` arrived (its first bytes), epoch ms. */
  time(index: number): number | null {
    if (index < this._times.length) {
      return this._times[index];
    }
    return index === this._lines.length && this._partialShown()
      ? this._partialTime
      : null;
  }

  /**
   * Add the log text between byte offsets `offset` and `nextOffset`.
   * Returns whether anything new was added.
   */
  append(offset: number, nextOffset: number, text: string): boolean {
    if (nextOffset <= this._nextOffset) {
      return false; // all seen already
    }
    // The unfinished last line (if any) sits at this index and may grow; a progress bar's
    // new state replaces the line before it (`_push` moves `_from` back).
    this._from = this._lines.length;
    if (offset < this._nextOffset) {
      text = dropBytes(text, this._nextOffset - offset);
    } else if (offset > this._nextOffset) {
      this._finishPartial();
      this._lines.push(this._describeGap(offset - this._nextOffset));
      this._times.push(this._now());
      this._lastIsText = false;
    }
    this._nextOffset = nextOffset;
    this._addText(text);
    if (!this._trim()) {
      this._changed.emit({ from: this._from });
    }
    return true;
  }

  /** The server sent the last of this log. */
  end(status: string): void {
    this._ended = status;
    this._changed.emit({ from: this.length });
  }

  /** Everything held, as text (what "download" saves). */
  text(): string {
    const body = this._lines.join('\n');
    if (this._partialShown()) {
      return (body ? body + '\n' : '') + display(this._partial!);
    }
    return this._lines.length ? body + '\n' : '';
  }

  private _addText(text: string): void {
    if (text === '') {
      return;
    }
    const now = this._now();
    const pieces = text.split('\n');
    const first = this._partial !== null ? this._partialTime : now;
    pieces[0] = (this._partial ?? '') + pieces[0];
    const tail = pieces.pop()!;
    pieces.forEach((piece, i) => this._push(piece, i === 0 ? first : now));
    if (tail === '') {
      this._partial = null;
    } else {
      this._partialTime = pieces.length === 0 ? first : now;
      this._partial = tail;
    }
  }

  private _finishPartial(): void {
    if (this._partial !== null) {
      this._push(this._partial, this._partialTime);
      this._partial = null;
    }
  }

  /** Add a finished raw line; a progress bar's new state replaces the line before it. */
  private _push(raw: string, time: number): void {
    const last = this._lines.length - 1;
    if (raw.startsWith(CURSOR_UP) && last >= 0 && this._lastIsText) {
      this._lines[last] = display(raw);
      this._times[last] = time;
      this._from = Math.min(this._from, last);
      return;
    }
    this._lines.push(display(raw));
    this._times.push(time);
    this._lastIsText = true;
  }

  /** Whether the unfinished last line shows as a line of its own (a bar's next state waits). */
  private _partialShown(): boolean {
    return (
      this._partial !== null &&
      !(
        this._partial.startsWith(CURSOR_UP.slice(0, this._partial.length)) &&
        this._lines.length > 0 &&
        this._lastIsText
      )
    );
  }

  private _trim(): boolean {
    if (this._lines.length <= this._maxLines) {
      return false;
    }
    const drop = Math.max(
      this._lines.length - this._maxLines,
      Math.ceil(this._maxLines / 10)
    );
    this._lines.splice(0, drop);
    this._times.splice(0, drop);
    this._dropped += drop;
    this._changed.emit({ from: 0, reset: true });
    return true;
  }

  private _now = () => Date.now();
  private _lines: string[] = [];
  private _times: number[] = [];
  private _partial: string | null = null;
  private _partialTime = 0;
  private _from = 0;
  private _lastIsText = false; // the last line came from the log (not a gap): a bar may replace it
  private _nextOffset = 0;
  private _dropped = 0;
  private _ended: string | null = null;
  private _maxLines: number;
  private _describeGap: (bytes: number) => string;
  private _changed = new Signal<this, ILogChange>(this);
}

/**
 * Several logs interleaved in the order their lines arrived, each line prefixed with its
 * source's label ("[3] ..."). A source can be replaced (a re-run replica gets a new session):
 * the old session's lines stay, the new one's follow.
 */
export class MergedLog implements ILogLines {
  get changed(): ISignal<this, ILogChange> {
    return this._changed;
  }

  get length(): number {
    return this._slot.length;
  }

  /** Show `buffer` under `label` (replacing what `key` showed before). */
  setSource(key: string, label: string, buffer: LogBuffer): void {
    const existing = this._slots.findIndex(s => s.buffer === buffer);
    if (existing >= 0) {
      this._byKey.set(key, existing);
      return;
    }
    const slot = this._slots.length;
    this._slots.push({ label, buffer, seen: 0, base: buffer.dropped });
    this._byKey.set(key, slot);
    this._width = Math.max(this._width, label.length);
    buffer.changed.connect(this._onChange, this);
    this._collect(slot);
  }

  line(index: number): string {
    const slot = this._slots[this._slot[index]];
    if (!slot) {
      return '';
    }
    const text = slot.buffer.line(
      this._line[index] - (slot.buffer.dropped - slot.base)
    );
    return `[${slot.label.padStart(this._width)}] ${text}`;
  }

  time(index: number): number | null {
    const slot = this._slots[this._slot[index]];
    return slot
      ? slot.buffer.time(this._line[index] - (slot.buffer.dropped - slot.base))
      : null;
  }

  dispose(): void {
    for (const slot of this._slots) {
      slot.buffer.changed.disconnect(this._onChange, this);
    }
    Signal.clearData(this);
  }

  private _onChange(buffer: LogBuffer, change: ILogChange): void {
    const slot = this._slots.findIndex(s => s.buffer === buffer);
    if (change.reset) {
      this._dropTrimmed(slot);
      return;
    }
    // An unfinished last line may have grown in place: its entry exists already.
    const s = this._slots[slot];
    const grown =
      change.from + (s.buffer.dropped - s.base) < s.seen
        ? this._firstEntryOf(slot, change.from)
        : -1;
    const added = this._collect(slot);
    const first = grown >= 0 ? grown : added;
    if (first >= 0) {
      this._changed.emit({ from: first });
    }
  }

  /** Add entries for the lines of `slot` not yet listed; the first new index, or -1. */
  private _collect(slot: number): number {
    const s = this._slots[slot];
    const total = s.buffer.length + (s.buffer.dropped - s.base);
    const first = total > s.seen ? this._slot.length : -1;
    for (; s.seen < total; s.seen++) {
      this._slot.push(slot);
      this._line.push(s.seen);
    }
    return first;
  }

  private _firstEntryOf(slot: number, from: number): number {
    const s = this._slots[slot];
    const target = from + (s.buffer.dropped - s.base);
    for (let i = this._slot.length - 1; i >= 0; i--) {
      if (this._slot[i] === slot && this._line[i] === target) {
        return i;
      }
    }
    return -1;
  }

  private _dropTrimmed(slot: number): void {
    const s = this._slots[slot];
    const gone = s.buffer.dropped - s.base;
    const keepSlot: number[] = [];
    const keepLine: number[] = [];
    for (let i = 0; i < this._slot.length; i++) {
      if (this._slot[i] !== slot || this._line[i] >= gone) {
        keepSlot.push(this._slot[i]);
        keepLine.push(this._line[i]);
      }
    }
    this._slot = keepSlot;
    this._line = keepLine;
    this._changed.emit({ from: 0, reset: true });
  }

  private _slots: {
    label: string;
    buffer: LogBuffer;
    seen: number;
    base: number;
  }[] = [];
  private _byKey = new Map<string, number>();
  // Entry i is line `_line[i]` (counted from the source's first line ever) of `_slots[_slot[i]]`.
  private _slot: number[] = [];
  private _line: number[] = [];
  private _width = 0;
  private _changed = new Signal<this, ILogChange>(this);
}

/** The lines of `source` that contain `query` (case-insensitive), kept up to date. */
export class FilteredLines implements ILogLines {
  constructor(
    readonly source: ILogLines,
    readonly query: string
  ) {
    this._needle = query.toLowerCase();
    this._scan(0);
    source.changed.connect(this._onChange, this);
  }

  get changed(): ISignal<this, ILogChange> {
    return this._changed;
  }

  get length(): number {
    return this._hits.length;
  }

  line(index: number): string {
    return this.source.line(this._hits[index]);
  }

  time(index: number): number | null {
    return this.source.time?.(this._hits[index]) ?? null;
  }

  /** The source index of a shown line. */
  sourceIndex(index: number): number {
    return this._hits[index];
  }

  dispose(): void {
    this.source.changed.disconnect(this._onChange, this);
    Signal.clearData(this);
  }

  private _onChange(_: ILogLines, change: ILogChange): void {
    const from = change.reset ? 0 : change.from;
    let keep = this._hits.length;
    while (keep > 0 && this._hits[keep - 1] >= from) {
      keep--;
    }
    this._hits.length = keep;
    this._scan(from);
    this._changed.emit(
      change.reset ? { from: 0, reset: true } : { from: keep }
    );
  }

  private _scan(from: number): void {
    const n = this.source.length;
    for (let i = from; i < n; i++) {
      if (this.source.line(i).toLowerCase().includes(this._needle)) {
        this._hits.push(i);
      }
    }
  }

  private _needle: string;
  private _hits: number[] = [];
  private _changed = new Signal<this, ILogChange>(this);
}
