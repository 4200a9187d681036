import { Widget } from '@lumino/widgets';

import { FilteredLines, LogBuffer } from '../logbuffer';
import { formatLineTime, LogView } from '../widgets/logview';

function feed(buffer: LogBuffer, text: string): void {
  const bytes = new TextEncoder().encode(text).length;
  buffer.append(buffer.nextOffset, buffer.nextOffset + bytes, text);
}

/** Lumino updates are asynchronous (one per animation frame): wait for one. */
function flush(): Promise<void> {
  return new Promise(resolve => requestAnimationFrame(() => resolve()));
}

describe('LogView', () => {
  let view: LogView;

  beforeEach(() => {
    view = new LogView({ label: 'Log' });
    Widget.attach(view, document.body);
  });

  afterEach(() => view.dispose());

  it('keeps the DOM bounded with 100,000 lines', async () => {
    // jsdom has no layout: give the view a height and a scroll position that behave.
    let top = 0;
    const spacer = view.node.querySelector(
      '.jp-canfar-logview-spacer'
    ) as HTMLElement;
    Object.defineProperty(view.node, 'clientHeight', { get: () => 340 });
    Object.defineProperty(view.node, 'scrollHeight', {
      get: () => parseFloat(spacer.style.height || '0')
    });
    Object.defineProperty(view.node, 'scrollTop', {
      get: () => top,
      set: (value: number) =>
        (top = Math.max(0, Math.min(value, view.node.scrollHeight - 340)))
    });
    const buffer = new LogBuffer();
    let text = '';
    for (let i = 0; i < 100_000; i++) {
      text += `line ${i}\n`;
    }
    feed(buffer, text);
    view.source = buffer;
    await flush();
    const pre = view.node.querySelector('pre')!;
    const shown = pre.textContent!.split('\n');
    // Following: the last lines are in view, and only a window of lines is in the DOM.
    expect(shown[shown.length - 1]).toBe('line 99999');
    expect(shown.length).toBeLessThan(200);
    const [first, last] = view.renderedRange;
    expect(last).toBe(100_000);
    expect(last - first).toBeLessThan(200);
    // The scrollable height stands for every line.
    expect(parseFloat(spacer.style.height)).toBeGreaterThan(100_000);
    // Scrolled to the middle, the middle is drawn.
    view.follow = false;
    top = 50_000 * 17;
    view.node.dispatchEvent(new Event('scroll'));
    await flush();
    expect(pre.textContent).toContain('line 50010\n');
    expect(pre.textContent!.split('\n').length).toBeLessThan(200);
  });

  it('writes log text as text: markup in a log stays inert', async () => {
    const buffer = new LogBuffer();
    feed(buffer, '<img src=x onerror="window.hacked=1"><b>bold</b>\n');
    view.source = buffer;
    await flush();
    const pre = view.node.querySelector('pre')!;
    expect(pre.querySelector('img')).toBeNull();
    expect(pre.querySelector('b')).toBeNull();
    expect(pre.textContent).toContain('<img src=x');
    expect((window as any).hacked).toBeUndefined();
  });

  it('marks search matches with elements built around text, not HTML', async () => {
    const buffer = new LogBuffer();
    feed(buffer, 'an <error> here\nall fine\nERROR again\n');
    view.source = new FilteredLines(buffer, 'error');
    view.highlight = 'error';
    await flush();
    const pre = view.node.querySelector('pre')!;
    const marks = Array.from(pre.querySelectorAll('mark')).map(
      m => m.textContent
    );
    expect(marks).toEqual(['error', 'ERROR']);
    expect(pre.textContent).toBe('an <error> here\nERROR again');
  });

  it('redraws as lines arrive, and End resumes following after a pause', async () => {
    const buffer = new LogBuffer();
    view.source = buffer;
    feed(buffer, 'one\n');
    await flush();
    feed(buffer, 'two\n');
    await flush();
    expect(view.node.querySelector('pre')!.textContent).toBe('one\ntwo');
    const seen: boolean[] = [];
    view.followChanged.connect((_, following) => seen.push(following));
    view.follow = false;
    view.node.dispatchEvent(new KeyboardEvent('keydown', { key: 'End' }));
    expect(view.follow).toBe(true);
    expect(seen).toEqual([false, true]);
  });

  it('counts the lines that came while paused, and forgets them on resuming', async () => {
    const buffer = new LogBuffer();
    view.source = buffer;
    feed(buffer, 'one\n');
    view.follow = false;
    expect(view.newLines).toBe(0);
    feed(buffer, 'two\nthree\n');
    expect(view.newLines).toBe(2);
    view.follow = true;
    expect(view.newLines).toBe(0);
  });

  it("links a traceback's Cell In[N] to code cell N, as an element around text", async () => {
    const buffer = new LogBuffer();
    view.source = buffer;
    feed(buffer, 'Traceback\nCell In[2], line 3\n<b>x</b>\n');
    await flush();
    const link = view.node.querySelector('a.jp-canfar-celllink') as HTMLElement;
    expect(link.textContent).toBe('Cell In[2]');
    expect(view.node.querySelector('b')).toBeNull();
    const clicked: number[] = [];
    view.cellLinkClicked.connect((_, cell) => clicked.push(cell));
    link.click();
    expect(clicked).toEqual([2]);
  });

  it('prefixes lines with their arrival time when asked', async () => {
    const buffer = new LogBuffer();
    view.source = buffer;
    feed(buffer, 'hello\n');
    const t = buffer.time(0)!;
    expect(Math.abs(Date.now() - t)).toBeLessThan(5000);
    view.timestamps = true;
    await flush();
    expect(view.node.querySelector('pre')!.textContent).toBe(
      `${formatLineTime(t)}  hello`
    );
  });
});
