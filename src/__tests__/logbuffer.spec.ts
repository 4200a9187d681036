import {
  dropBytes,
  FilteredLines,
  ILogChange,
  ILogLines,
  LogBuffer,
  MergedLog,
  PROGRESS_REWRITE
} from '../logbuffer';

function lines(source: ILogLines): string[] {
  return Array.from({ length: source.length }, (_, i) => source.line(i));
}

/** Feed `text` as the server would: a delta from the byte offset reached so far. */
function feed(
  buffer: LogBuffer,
  text: string,
  offset = buffer.nextOffset
): void {
  const bytes = new TextEncoder().encode(text).length;
  buffer.append(offset, offset + bytes, text);
}

describe('LogBuffer', () => {
  it('splits deltas into lines, joining a line cut across deltas', () => {
    const log = new LogBuffer();
    feed(log, 'replica 1 of 3\nmeas');
    expect(lines(log)).toEqual(['replica 1 of 3', 'meas']);
    feed(log, 'uring 4 images\n');
    expect(lines(log)).toEqual(['replica 1 of 3', 'measuring 4 images']);
    expect(log.nextOffset).toBe(34);
    expect(log.text()).toBe('replica 1 of 3\nmeasuring 4 images\n');
  });

  it('ignores a delta it has already and trims one that overlaps (in bytes)', () => {
    const log = new LogBuffer();
    feed(log, 'température 12°\n'); // multi-byte characters: offsets are bytes
    const seen = log.nextOffset;
    expect(log.append(0, seen, 'température 12°\n')).toBe(false);
    // A resend from the start that runs past what we have: only the new part is added.
    log.append(0, seen + 5, 'température 12°\nnext\n'.slice(0, 22));
    expect(lines(log)).toEqual(['température 12°', 'next']);
    expect(dropBytes('é1', 2)).toBe('1');
  });

  it('shows a gap where bytes never arrived instead of gluing lines together', () => {
    const log = new LogBuffer({ describeGap: n => `<${n} missing>` });
    feed(log, 'first\npart');
    log.append(20, 25, 'last\n');
    expect(lines(log)).toEqual(['first', 'part', '<10 missing>', 'last']);
  });

  it('shows what a terminal shows for carriage returns (progress bars)', () => {
    const log = new LogBuffer();
    feed(log, ' 10%\r 50%\r');
    expect(lines(log)).toEqual([' 50%']);
    feed(log, '100%\r\ndone\r\n');
    expect(lines(log)).toEqual(['100%', 'done']);
  });

  it("shows a runner's progress bar as one line updated in place", () => {
    const up = PROGRESS_REWRITE;
    const log = new LogBuffer();
    const changes: ILogChange[] = [];
    log.changed.connect((_, change) => changes.push(change));
    feed(log, `reading\n  0%|\n${up} 40%|####\n`);
    expect(lines(log)).toEqual(['reading', ' 40%|####']);
    // The next state split across two deltas: the old state stays until it is whole.
    feed(log, `${up} 7`);
    expect(lines(log)).toEqual(['reading', ' 40%|####']);
    feed(log, `0%|#######\n${up}100%|##########\ndone\n`);
    expect(lines(log)).toEqual(['reading', '100%|##########', 'done']);
    expect(log.length).toBe(3);
    expect(changes.map(c => c.from)).toEqual([0, 2, 1]);
    expect(log.text()).toBe('reading\n100%|##########\ndone\n');
    // Offsets and dedup are unchanged: a resend adds nothing.
    const seen = log.nextOffset;
    expect(log.append(0, seen, 'anything')).toBe(false);
    // Filter: the bar matches with its current state only.
    const filtered = new FilteredLines(log, '100%');
    expect(lines(filtered)).toEqual(['100%|##########']);
  });

  it('never lets a progress state replace a gap line', () => {
    const log = new LogBuffer({ describeGap: n => `<${n} missing>` });
    feed(log, 'a\n');
    log.append(10, 20, `${PROGRESS_REWRITE}50%\n`);
    expect(lines(log)).toEqual(['a', '<8 missing>', '50%']);
  });

  it('updates the merged view in place for a bar', () => {
    const one = new LogBuffer();
    const two = new LogBuffer();
    const merged = new MergedLog();
    merged.setSource('1', '1', one);
    merged.setSource('2', '2', two);
    feed(one, ' 10%\n');
    feed(two, 'hello\n');
    feed(one, `${PROGRESS_REWRITE} 90%\n`);
    expect(lines(merged)).toEqual(['[1]  90%', '[2] hello']);
  });

  it('says from which line things changed, so views redraw only the tail', () => {
    const log = new LogBuffer();
    const changes: ILogChange[] = [];
    log.changed.connect((_, c) => changes.push(c));
    feed(log, 'a\nb');
    feed(log, 'c\nd\n');
    expect(changes).toEqual([{ from: 0 }, { from: 1 }]);
  });

  it('drops the oldest lines beyond its limit', () => {
    const log = new LogBuffer({ maxLines: 10 });
    for (let i = 0; i < 25; i++) {
      feed(log, `line ${i}\n`);
    }
    expect(log.length).toBeLessThanOrEqual(10);
    expect(log.line(log.length - 1)).toBe('line 24');
    expect(log.dropped + log.length).toBe(25);
  });

  it('keeps 100,000 lines in order', () => {
    const log = new LogBuffer();
    for (let chunk = 0; chunk < 1000; chunk++) {
      let text = '';
      for (let i = 0; i < 100; i++) {
        text += `replica 1 line ${chunk * 100 + i}\n`;
      }
      feed(log, text);
    }
    expect(log.length).toBe(100_000);
    expect(log.line(0)).toBe('replica 1 line 0');
    expect(log.line(99_999)).toBe('replica 1 line 99999');
  });
});

describe('MergedLog', () => {
  it('interleaves replicas in arrival order with aligned prefixes', () => {
    const one = new LogBuffer();
    const two = new LogBuffer();
    const merged = new MergedLog();
    merged.setSource('1', '1', one);
    merged.setSource('10', '10', two);
    feed(one, 'a1\n');
    feed(two, 'b1\nb2');
    feed(one, 'a2\n');
    feed(two, 'x\n'); // finishes "b2" in place: no new entry for it
    expect(lines(merged)).toEqual([
      '[ 1] a1',
      '[10] b1',
      '[10] b2x',
      '[ 1] a2'
    ]);
  });

  it('keeps the lines of a replaced source and follows the new one', () => {
    const first = new LogBuffer();
    const rerun = new LogBuffer();
    const merged = new MergedLog();
    merged.setSource('2', '2', first);
    feed(first, 'failed\n');
    merged.setSource('2', '2', rerun);
    feed(rerun, 'ok\n');
    feed(first, 'late\n');
    expect(lines(merged)).toEqual(['[2] failed', '[2] ok', '[2] late']);
  });

  it('lists lines already in a buffer when it is added', () => {
    const one = new LogBuffer();
    feed(one, 'early\n');
    const merged = new MergedLog();
    merged.setSource('1', '1', one);
    expect(lines(merged)).toEqual(['[1] early']);
  });
});

describe('FilteredLines', () => {
  it('keeps the matching lines, case-insensitively, as the log grows', () => {
    const log = new LogBuffer();
    feed(log, 'INFO start\nERROR disk\ninfo more\n');
    const filtered = new FilteredLines(log, 'error');
    expect(lines(filtered)).toEqual(['ERROR disk']);
    feed(log, 'an error');
    expect(lines(filtered)).toEqual(['ERROR disk', 'an error']);
    expect(filtered.sourceIndex(1)).toBe(3);
    feed(log, ' again\nfine\n');
    expect(lines(filtered)).toEqual(['ERROR disk', 'an error again']);
  });
});
