// A log view that stays fast at any length: only the lines in sight are in the DOM, written
// with textContent (log text is never parsed as HTML).
import { Message } from '@lumino/messaging';
import { ISignal, Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { ILogChange, ILogLines } from '../logbuffer';

/** Lines drawn above and below the visible window, so small scrolls need no redraw. */
const OVERSCAN = 40;
const FALLBACK_LINE_HEIGHT = 17;

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
      lines.push(source.line(i));
    }
    const needle = this._highlight.toLowerCase();
    if (!needle) {
      this._pre.textContent = lines.join('\n');
      return;
    }
    // Marks are built as nodes around text nodes: never HTML from log text.
    const fragment = document.createDocumentFragment();
    lines.forEach((line, index) => {
      if (index > 0) {
        fragment.append('\n');
      }
      const lower = line.toLowerCase();
      let at = 0;
      for (;;) {
        const hit = lower.indexOf(needle, at);
        if (hit < 0) {
          fragment.append(line.slice(at));
          break;
        }
        fragment.append(line.slice(at, hit));
        const mark = document.createElement('mark');
        mark.className = 'jp-canfar-logview-match';
        mark.textContent = line.slice(hit, hit + needle.length);
        fragment.append(mark);
        at = hit + needle.length;
      }
    });
    this._pre.replaceChildren(fragment);
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
  private _followChanged = new Signal<this, boolean>(this);
  private _renderedSignal = new Signal<this, void>(this);
}
