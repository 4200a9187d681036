// What a log panel shows: one tab per replica plus a merged tab, kept in step with the run
// (a re-run replica gets a new session, whose log the tab then follows).
import { TranslationBundle } from '@jupyterlab/translation';
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { IRun, Status } from './api';
import { FilteredLines, ILogLines, LogBuffer, MergedLog } from './logbuffer';
import { CanfarModel } from './model';
import { replicaStatus, runSteps } from './status';

/** A run (all its replicas) or one session outside any run. */
export type LogTarget = { run: string } | { session: string };

export const MERGED = 'all';

export interface ILogTab {
  key: string;
  label: string;
  /**
   * The replica's REPLICA_ID (0: the run's reduce step), or null for the merged tab and a
   * lone session.
   */
  replica: number | null;
  sessionId: string | null;
  status: Status | null;
  lines: ILogLines;
  /** Why the tab has no lines yet (a Pending replica's reason), or null. */
  waiting: string | null;
}

export interface ILogTabsOptions {
  target: LogTarget;
  model: CanfarModel;
  trans: TranslationBundle;
  /** Read an archived log (path relative to the server root), for sessions gone from the service. */
  loadArchive?: (path: string) => Promise<string>;
}

export class LogTabs implements IDisposable {
  constructor(options: ILogTabsOptions) {
    this.target = options.target;
    this._model = options.model;
    this._trans = options.trans;
    this._loadArchive = options.loadArchive;
    this._merged = new MergedLog();
    this._model.changed.connect(this._sync, this);
    this._sync();
    this._selected = this._tabs[0]?.key ?? MERGED;
  }

  readonly target: LogTarget;

  /** Tabs, statuses or lines of a tab changed. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get tabs(): readonly ILogTab[] {
    return this._tabs;
  }

  get selected(): string {
    return this._selected;
  }

  set selected(key: string) {
    if (key !== this._selected && this._tabs.some(t => t.key === key)) {
      this._selected = key;
      this._refilter();
      this._changed.emit();
    }
  }

  get selectedTab(): ILogTab | undefined {
    return this._tabs.find(t => t.key === this._selected);
  }

  /** Show only lines containing this text (case-insensitive); empty shows all. */
  get query(): string {
    return this._query;
  }

  set query(value: string) {
    if (value !== this._query) {
      this._query = value;
      this._refilter();
      this._changed.emit();
    }
  }

  /** The lines the view should show: the selected tab's, filtered by the query. */
  get visible(): ILogLines {
    return this._filtered ?? this.selectedTab?.lines ?? this._merged;
  }

  /** Lines in the selected tab before filtering. */
  get total(): number {
    return this.selectedTab?.lines.length ?? 0;
  }

  /** A file name for downloading the selected tab ("-filtered" when a filter is on). */
  fileName(): string {
    const base = 'run' in this.target ? this.target.run : this.target.session;
    const tab = this.selectedTab;
    const suffix = this._query ? '-filtered' : '';
    if (!tab || tab.key === MERGED) {
      return `${base}-all-replicas${suffix}.log`;
    }
    return tab.replica !== null
      ? `${base}-replica-${tab.replica}${suffix}.log`
      : `${base}${suffix}.log`;
  }

  /**
   * The selected tab's text as shown: merged lines keep their prefixes, and with a filter
   * on, only the lines that pass it.
   */
  text(): string {
    const lines = this._query ? this.visible : this.selectedTab?.lines;
    if (!lines) {
      return '';
    }
    if (lines instanceof LogBuffer) {
      return lines.text();
    }
    const out: string[] = [];
    for (let i = 0; i < lines.length; i++) {
      out.push(lines.line(i));
    }
    return out.length ? out.join('\n') + '\n' : '';
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this._model.changed.disconnect(this._sync, this);
    for (const id of this._open) {
      this._model.closeLog(id, this._shown);
    }
    this._open.clear();
    this._filtered?.dispose();
    this._merged.dispose();
    Signal.clearData(this);
  }

  private _sync(): void {
    if ('session' in this.target) {
      this._syncSession(this.target.session);
    } else {
      const run = this._model.run(this.target.run);
      if (run) {
        this._syncRun(run);
      }
    }
    this._changed.emit();
  }

  private _syncSession(id: string): void {
    const session = this._model.sessionsById.get(id);
    if (this._tabs.length === 0) {
      this._tabs = [
        {
          key: id,
          label: session?.name || id,
          replica: null,
          sessionId: id,
          status: session?.status ?? null,
          lines: this._follow(id),
          waiting: null
        }
      ];
    } else if (session) {
      this._tabs = [{ ...this._tabs[0], status: session.status }];
    }
  }

  private _syncRun(run: IRun): void {
    const sessions = this._model.sessionsById;
    const previous = new Map(this._tabs.map(t => [t.key, t]));
    const tabs: ILogTab[] = [
      {
        key: MERGED,
        label: this._trans.__('All'),
        replica: null,
        sessionId: null,
        status: null,
        lines: this._merged,
        waiting: null
      }
    ];
    for (const replica of runSteps(run)) {
      const key = String(replica.index);
      const label = replica.index === 0 ? this._trans.__('reduce') : key;
      const before = previous.get(key);
      let lines = before?.lines;
      const id = replica.session_id;
      if (!before || before.sessionId !== id) {
        if (before?.sessionId && this._open.has(before.sessionId)) {
          this._model.closeLog(before.sessionId, this._shown);
          this._open.delete(before.sessionId);
        }
        if (id && sessions.has(id)) {
          lines = this._follow(id);
        } else if (
          replica.log &&
          run.folder_relative !== null &&
          this._loadArchive
        ) {
          lines = this._archived(`${run.folder_relative}/${replica.log}`);
        } else if (id) {
          lines = this._follow(id); // not listed (yet): the server may still have it
        } else if (replica.status === 'Waiting') {
          lines = new LogBuffer(); // nothing yet: the tab says why it waits
        } else {
          lines = this._note(
            replica.error ?? this._trans.__('This replica has no session.')
          );
        }
        this._merged.setSource(key, label, lines as LogBuffer);
      }
      const status = replicaStatus(replica, sessions);
      let waiting: string | null = null;
      if (status === 'Pending') {
        waiting =
          replica.reason ??
          this._trans.__(
            'Replica %1 is Pending: its log starts when the session service runs it.',
            replica.index
          );
      } else if (status === 'Waiting') {
        waiting = this._trans.__(
          'Replica %1 is waiting in the run (%2): its log starts when the run creates it.',
          replica.index,
          replica.reason ?? this._trans.__('waiting in run')
        );
      }
      tabs.push({
        key,
        label,
        replica: replica.index,
        sessionId: id,
        status,
        lines: lines!,
        waiting
      });
    }
    this._tabs = tabs;
    if (!tabs.some(t => t.key === this._selected)) {
      this._selected = MERGED;
      this._refilter();
    }
  }

  private _follow(id: string): LogBuffer {
    this._open.add(id);
    return this._model.openLog(id, this._shown);
  }

  /** Whether the panel showing these tabs is on screen (its logs are read more often). */
  get shown(): boolean {
    return this._shown;
  }

  set shown(value: boolean) {
    if (value === this._shown) {
      return;
    }
    this._shown = value;
    for (const id of this._open) {
      this._model.showLog(id, value);
    }
  }

  private _note(text: string): LogBuffer {
    const buffer = new LogBuffer();
    buffer.append(0, 1, text + '\n');
    return buffer;
  }

  private _archived(path: string): LogBuffer {
    const buffer = new LogBuffer();
    this._loadArchive!(path).then(
      text => buffer.append(0, new TextEncoder().encode(text).length, text),
      error =>
        buffer.append(
          0,
          1,
          this._trans.__(
            'Cannot read the archived log %1: %2',
            path,
            error.message
          ) + '\n'
        )
    );
    return buffer;
  }

  private _refilter(): void {
    this._filtered?.dispose();
    this._filtered = null;
    const tab = this.selectedTab;
    if (this._query && tab) {
      this._filtered = new FilteredLines(tab.lines, this._query);
    }
  }

  private _model: CanfarModel;
  private _trans: TranslationBundle;
  private _loadArchive?: (path: string) => Promise<string>;
  private _merged: MergedLog;
  private _tabs: ILogTab[] = [];
  private _open = new Set<string>();
  private _shown = true;
  private _selected: string;
  private _query = '';
  private _filtered: FilteredLines | null = null;
  private _disposed = false;
  private _changed = new Signal<this, void>(this);
}
