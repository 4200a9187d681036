// A log view that stays fast at any length: only the lines in sight are in the DOM, written
// with textContent (log text is never parsed as HTML).
import { Message } from '@lumino/messaging';
import { ISignal, Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { ILogChange, ILogLines } from '../logbuffer';

/** Lines drawn above and below the visible window, so small scrolls need no redraw. */
const OVERSCAN = 40;
const FALLBACK_LINE_HEIGHT = 17;
/** IPython's traceback names a cell by its number: the runner sets it to the code cell's. */
const CELL_REF = /Cell In\[(\d+)\]/g;

/** A line's arrival time as "14:03:07". */
export function formatLineTime(ms: number): string {
  return new Date(ms).toLocaleTimeString(undefined, { hour12: false });
}

export class LogView extends Widget {
  constructor(options: { label: string }) {
    super();
    this.addClass('jp-canfar-logview');
    this.node.tabIndex = 0;
    this.node.setAttribute('role', 'log');
    this.node.setAttribute('aria-label', options.label);
    this._spacer = document.createElement('div');
    this._spacer.className = 'jp-canfar-logview-spacer';
    this._pre = document.createElement('pre');
    this._pre.className = 'jp-canfar-logview-lines';
    this.node.append(this._spacer, this._pre);
    this.node.addEventListener('scroll', this, { passive: true });
    this.node.addEventListener('keydown', this);
    this.node.addEventListener('click', this);
    this.node.addEventListener('mousemove', this);
  }

  /** Lines that arrived since following was paused (0 while following). */
  get newLines(): number {
    if (this._follow || !this._source) {
      return 0;
    }
    return Math.max(0, this._source.length - this._pausedAt);
  }

  /** Prefix each line with its arrival time. */
  get timestamps(): boolean {
    return this._timestamps;
  }

  set timestamps(value: boolean) {
    if (value !== this._timestamps) {
      this._timestamps = value;
      this._rendered = null;
      this.update();
    }
  }

  /** A traceback's "Cell In[N]" was clicked: N is the 1-based code cell. */
  get cellLinkClicked(): ISignal<this, number> {
    return this._cellLinkClicked;
  }

  /** Whether the view sticks to the last line as lines arrive. */
  get follow(): boolean {
    return this._follow;
  }

  set follow(value: boolean) {
    if (value === this._follow) {
      return;
    }
    this._follow = value;
    if (!value) {
      this._pausedAt = this._source?.length ?? 0;
    }
    this._followChanged.emit(value);
    if (value) {
      this.update();
    }
  }

  get followChanged(): ISignal<this, boolean> {
    return this._followChanged;
  }

  /** Emitted after each redraw (at most once per animation frame). */
  get rendered(): ISignal<this, void> {
    return this._renderedSignal;
  }

  get source(): ILogLines | null {
    return this._source;
  }

  set source(source: ILogLines | null) {
    if (source === this._source) {
      return;
    }
    this._source?.changed.disconnect(this._onChange, this);
    this._source = source;
    source?.changed.connect(this._onChange, this);
    this._pausedAt = source?.length ?? 0;
    this._rendered = null;
    this.update();
  }

  /** Text to mark in the shown lines (case-insensitive); empty for none. */
  get highlight(): string {
    return this._highlight;
  }

  set highlight(value: string) {
    this._highlight = value;
    this._rendered = null;
    this.update();
  }

  /** The range of line indices in the DOM now (for tests and the status line). */
  get renderedRange(): [number, number] {
    return this._rendered
      ? [this._rendered.first, this._rendered.last]
      : [0, 0];
  }

  handleEvent(event: Event): void {
    if (event.type === 'scroll') {
      this._onScroll();
    } else if (event.type === 'click') {
      const link = (event.target as HTMLElement).closest?.('[data-cell]');
      if (link) {
        event.preventDefault();
        this._cellLinkClicked.emit(Number(link.getAttribute('data-cell')));
      }
    } else if (event.type === 'mousemove') {
      this._onHover(event as MouseEvent);
    } else if (event.type === 'keydown') {
      const key = (event as KeyboardEvent).key;
      if (key === 'End') {
        this.follow = true;
      } else if (key === 'Home') {
        this.follow = false;
        this.node.scrollTop = 0;
      }
    }
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.source = null;
    this.node.removeEventListener('scroll', this);
    this.node.removeEventListener('keydown', this);
    this.node.removeEventListener('click', this);
    this.node.removeEventListener('mousemove', this);
    Signal.clearData(this);
    super.dispose();
  }

  protected onAfterShow(msg: Message): void {
    this._rendered = null;
    this.update();
  }

  protected onResize(msg: Widget.ResizeMessage): void {
    this._rendered = null;
    this.update();
  }

  protected onUpdateRequest(msg: Message): void {
    const source = this._source;
    const lineHeight = this._measureLineHeight();
    const total = source ? source.length : 0;
    this._spacer.style.height = `${total * lineHeight}px`;
    if (this._follow) {
      const bottom = this.node.scrollHeight - this.node.clientHeight;
      if (Math.abs(this.node.scrollTop - bottom) > 1) {
        this._programmatic = true; // our own scroll must not pause following
        this.node.scrollTop = bottom;
      }
    }
    const top = this.node.scrollTop;
    const height = this.node.clientHeight;
    const first = Math.max(0, Math.floor(top / lineHeight) - OVERSCAN);
    const last = Math.min(
      total,
      Math.ceil((top + height) / lineHeight) + OVERSCAN
    );
    const previous = this._rendered;
    if (
      previous &&
      previous.first === first &&
      previous.last === last &&
      previous.dirtyFrom >= last
    ) {
      this._renderedSignal.emit(); // nothing in sight changed, but the count may have
      return;
    }
    this._rendered = { first, last, dirtyFrom: Infinity };
    this._pre.style.transform = `translateY(${first * lineHeight}px)`;
    this._draw(first, last);
    this._renderedSignal.emit();
  }

  private _draw(first: number, last: number): void {
    const source = this._source;
    if (!source || last <= first) {
      this._pre.textContent = '';
      return;
    }
    const lines: string[] = [];
    for (let i = first; i < last; i++) {
      const line = source.line(i);
      if (this._timestamps) {
        const t = source.time?.(i);
        lines.push(`${t ? formatLineTime(t) : '        '}  ${line}`);
      } else {
        lines.push(line);
      }
    }
    const needle = this._highlight.toLowerCase();
    if (!needle && !lines.some(line => line.includes('Cell In['))) {
      this._pre.textContent = lines.join('\n');
      return;
    }
    // Marks and links are built as nodes around text nodes: never HTML from log text.
    const fragment = document.createDocumentFragment();
    lines.forEach((line, index) => {
      if (index > 0) {
        fragment.append('\n');
      }
      let at = 0;
      CELL_REF.lastIndex = 0;
      for (let match; (match = CELL_REF.exec(line)) !== null;) {
        this._marked(fragment, line.slice(at, match.index), needle);
        const link = document.createElement('a');
        link.className = 'jp-canfar-celllink';
        link.href = '#';
        link.dataset.cell = match[1];
        link.title = `Show code cell ${match[1]} of the notebook`;
        link.textContent = match[0];
        fragment.append(link);
        at = match.index! + match[0].length;
      }
      this._marked(fragment, line.slice(at), needle);
    });
    this._pre.replaceChildren(fragment);
  }

  /** Append `text`, with `needle` (lower case; empty for none) marked where it occurs. */
  private _marked(
    parent: DocumentFragment,
    text: string,
    needle: string
  ): void {
    if (!needle) {
      parent.append(text);
      return;
    }
    const lower = text.toLowerCase();
    let at = 0;
    for (;;) {
      const hit = lower.indexOf(needle, at);
      if (hit < 0) {
        parent.append(text.slice(at));
        return;
      }
      parent.append(text.slice(at, hit));
      const mark = document.createElement('mark');
      mark.className = 'jp-canfar-logview-match';
      mark.textContent = text.slice(hit, hit + needle.length);
      parent.append(mark);
      at = hit + needle.length;
    }
  }

  /** The arrival time of the line under the pointer, as the tooltip. */
  private _onHover(event: MouseEvent): void {
    const source = this._source;
    if (!source?.time || !this._rendered) {
      return;
    }
    const top = this._pre.getBoundingClientRect().top;
    const index =
      this._rendered.first +
      Math.floor((event.clientY - top) / this._measureLineHeight());
    const t = index >= 0 && index < source.length ? source.time(index) : null;
    const title = t ? `Arrived at ${formatLineTime(t)}` : '';
    if (this._pre.title !== title) {
      this._pre.title = title;
    }
  }

  private _onChange(_: ILogLines, change: ILogChange): void {
    if (this._rendered) {
      this._rendered.dirtyFrom = change.reset
        ? 0
        : Math.min(this._rendered.dirtyFrom, change.from);
    }
    this.update();
  }

  private _onScroll(): void {
    if (this._programmatic) {
      this._programmatic = false;
    } else {
      // Scrolling up pauses following; reaching the bottom again resumes it.
      const atBottom =
        this.node.scrollTop + this.node.clientHeight >=
        this.node.scrollHeight - 2;
      this.follow = atBottom;
    }
    this.update();
  }

  private _measureLineHeight(): number {
    if (this._lineHeight === 0) {
      const probe = document.createElement('pre');
      probe.className = 'jp-canfar-logview-lines jp-canfar-logview-probe';
      probe.textContent = 'X\nX';
      this.node.appendChild(probe);
      const height = probe.getBoundingClientRect().height / 2;
      probe.remove();
      if (height > 0) {
        this._lineHeight = height;
      }
    }
    return this._lineHeight || FALLBACK_LINE_HEIGHT;
  }

  private _source: ILogLines | null = null;
  private _spacer: HTMLDivElement;
  private _pre: HTMLPreElement;
  private _follow = true;
  private _programmatic = false;
  private _highlight = '';
  private _lineHeight = 0;
  private _rendered: { first: number; last: number; dirtyFrom: number } | null =
    null;
  private _timestamps = false;
  private _pausedAt = 0;
  private _followChanged = new Signal<this, boolean>(this);
  private _cellLinkClicked = new Signal<this, number>(this);
  private _renderedSignal = new Signal<this, void>(this);
}
