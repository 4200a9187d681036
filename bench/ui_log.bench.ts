/**
 * The log panel at 100,000 lines: ingest, filter and redraw, against the naive way in the same
 * run (one string array; a <pre> holding every line).
 *
 *     jlpm bench:ui
 *
 * Runs in jsdom through jest (the panel's own code); figures go to stdout. jsdom does no layout,
 * so the naive redraw is far cheaper here than in a browser: its ratio flatters the naive way.
 */
import { MessageLoop } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { FilteredLines, LogBuffer } from '../src/logbuffer';
import { LogView } from '../src/widgets/logview';

const LINES = 100_000;
const DELTAS = 3_000; // the live channel delivers text in chunks

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function time(fn: () => void, rounds = 5): number {
  const took: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const start = performance.now();
    fn();
    took.push(performance.now() - start);
  }
  return median(took);
}

function chunks(): string[] {
  const lines = Array.from(
    { length: LINES },
    (_, i) =>
      `[${(i % 8) + 1}] field-${i}.fits: background ${100 + (i % 7)}.3, peak ${i % 997}`
  );
  const size = Math.ceil(LINES / DELTAS);
  const out: string[] = [];
  for (let i = 0; i < LINES; i += size) {
    out.push(lines.slice(i, i + size).join('\n') + '\n');
  }
  return out;
}

function feed(deltas: string[]): LogBuffer {
  const buffer = new LogBuffer();
  let offset = 0;
  for (const text of deltas) {
    const next = offset + new TextEncoder().encode(text).length;
    buffer.append(offset, next, text);
    offset = next;
  }
  return buffer;
}

function row(what: string, ours: number, naive: number): string {
  const ratio = (ours / naive).toFixed(2);
  return `${what.padEnd(34)} ${ours.toFixed(1).padStart(9)} ms ${naive.toFixed(1).padStart(9)} ms ${ratio.padStart(7)}\n`;
}

it('prints the log panel figures', () => {
  const deltas = chunks();
  let out = `log panel at ${LINES} lines (${DELTAS} deltas), median of 5; jsdom\n`;
  out += `${'step'.padEnd(34)} ${'panel'.padStart(12)} ${'naive'.padStart(12)} ${'ratio'.padStart(7)}\n`;

  const ingest = time(() => feed(deltas));
  const naiveIngest = time(() => {
    const lines: string[] = [];
    for (const text of deltas) {
      for (const line of text.split('\n').slice(0, -1)) {
        lines.push(line);
      }
    }
  });
  out += row('ingest every delta', ingest, naiveIngest);

  const buffer = feed(deltas);
  const all = Array.from({ length: buffer.length }, (_, i) => buffer.line(i));
  const filter = time(() => new FilteredLines(buffer, 'peak 42').dispose());
  const naiveFilter = time(() =>
    all.filter(l => l.toLowerCase().includes('peak 42'))
  );
  out += row('filter all lines', filter, naiveFilter);

  const view = new LogView({ label: 'bench' });
  view.node.style.height = '600px';
  Widget.attach(view, document.body);
  view.source = buffer;
  const redraw = time(() => {
    buffer.append(buffer.nextOffset, buffer.nextOffset + 6, 'more\n');
    MessageLoop.sendMessage(view, Widget.Msg.UpdateRequest);
  });
  const [first, last] = view.renderedRange;
  const pre = document.createElement('pre');
  document.body.append(pre);
  const naiveRedraw = time(() => {
    all.push('more');
    pre.textContent = all.join('\n');
  });
  out += row('redraw after one more line', redraw, naiveRedraw);
  out += `lines in the DOM after a redraw: ${last - first} of ${buffer.length}\n`;
  process.stdout.write(out);
  view.dispose();
  pre.remove();
  expect(buffer.length).toBeGreaterThanOrEqual(LINES);
});
