import { nullTranslator } from '@jupyterlab/translation';

import {
  checkRunForm,
  durationText,
  IFormLimits,
  IRunFormValues,
  parseDuration,
  runNameFromPath,
  SESSION_NAME,
  uniqueRunName
} from '../form';

const trans = nullTranslator.load('canfar_jlab');

const limits: IFormLimits = {
  cores: [1, 2, 4],
  ram: [1, 2, 4, 8],
  gpus: [],
  takenNames: new Set(['taken'])
};

function values(patch: Partial<IRunFormValues> = {}): IRunFormValues {
  return {
    name: 'reduce-fits',
    image: '',
    cores: '',
    ram: '',
    gpus: '',
    replicas: '3',
    env: [],
    ...patch
  };
}

describe('run names', () => {
  it.each([
    ['reduce_fits.ipynb', 'reduce-fits'],
    ['analysis/Reduce FITS (v2).ipynb', 'reduce-fits-v2'],
    ['Café Données.ipynb', 'cafe-donnees'],
    ['__.ipynb', 'run'],
    ['日本.ipynb', 'run']
  ])('%s gives %s', (path, name) => {
    expect(runNameFromPath(path)).toBe(name);
    expect(SESSION_NAME.test(name)).toBe(true);
  });

  it('leaves room for the replica suffix and never ends with a dash', () => {
    const long = 'a'.repeat(60) + '-b-c.ipynb';
    const name = runNameFromPath(long, 100);
    expect(`${name}-100`.length).toBeLessThanOrEqual(63);
    expect(SESSION_NAME.test(name)).toBe(true);
    expect(SESSION_NAME.test(`${name}-100`)).toBe(true);
  });

  it('adds a run number when the name is taken, never a replica name', () => {
    expect(uniqueRunName('fit', new Set())).toBe('fit');
    expect(uniqueRunName('fit', new Set(['fit', 'fit-r2']))).toBe('fit-r3');
    // Run "fit" is gone but its replicas' sessions fit-1, fit-2 still exist.
    expect(uniqueRunName('fit', new Set(['fit-1', 'fit-2']))).toBe('fit-r2');
    expect(uniqueRunName('fit', new Set(['fitter', 'fit-x']))).toBe('fit');
  });
});

describe('run form validation', () => {
  it('builds the request from a valid form, empty resources staying flexible', () => {
    const check = checkRunForm(
      values({
        env: [
          { key: 'BAND', value: 'r' },
          { key: '', value: '' }
        ]
      }),
      limits,
      trans
    );
    expect(check.errors).toEqual({});
    expect(check.request).toEqual({
      name: 'reduce-fits',
      replicas: 3,
      env: { BAND: 'r' }
    });
  });

  it('passes chosen resources and the image through as numbers', () => {
    const check = checkRunForm(
      values({
        image: 'images.canfar.net/skaha/astroml:latest',
        cores: '2',
        ram: '8'
      }),
      limits,
      trans
    );
    expect(check.request).toEqual({
      name: 'reduce-fits',
      replicas: 3,
      image: 'images.canfar.net/skaha/astroml:latest',
      cores: 2,
      ram: 8
    });
  });

  it.each([
    [{ name: '' }, 'name', 'A run needs a name'],
    [{ name: 'Bad_Name' }, 'name', 'Use a-z'],
    [{ name: '-x' }, 'name', 'Use a-z'],
    [{ name: 'taken' }, 'name', 'in use by a run or a session'],
    [{ name: 'a'.repeat(62), replicas: '10' }, 'name', 'at most 63'],
    [{ replicas: '0' }, 'replicas', 'Between 1 and 256'],
    [{ replicas: '257' }, 'replicas', 'Between 1 and 256'],
    [{ replicas: '2.5' }, 'replicas', 'Between 1 and 256'],
    [{ cores: '3' }, 'cores', 'The service offers 1, 2, 4'],
    [{ cores: '-1' }, 'cores', 'whole number'],
    [{ ram: 'lots' }, 'ram', 'whole number'],
    [{ image: 'two words' }, 'image', 'no spaces']
  ])('%j is refused on %s', (patch, field, message) => {
    const check = checkRunForm(values(patch), limits, trans);
    expect(check.request).toBeNull();
    expect((check.errors as any)[field]).toContain(message);
  });

  it.each([
    ['1X', 'v', 'not a valid variable name'],
    ['REPLICA_ID', '3', 'set by the session service'],
    ['EMPTY', '', 'value'],
    ['MONEY', '$HOME', 'cannot contain'],
    ['PAIR', 'a=b', 'cannot contain']
  ])('env %s=%s is refused', (key, value, message) => {
    const check = checkRunForm(
      values({ env: [{ key, value }] }),
      limits,
      trans
    );
    expect(check.request).toBeNull();
    expect(check.envErrors[0]).toContain(message);
  });

  it('refuses a variable set twice, naming the second row', () => {
    const check = checkRunForm(
      values({
        env: [
          { key: 'A', value: '1' },
          { key: 'A', value: '2' }
        ]
      }),
      limits,
      trans
    );
    expect(check.envErrors).toEqual({ 1: 'A is set twice' });
  });
});

describe('retries, timeout, max running and pilot (issue 17)', () => {
  it('reads a timeout as the CLI does, in seconds', () => {
    expect(parseDuration('2h')).toBe(7200);
    expect(parseDuration('90m')).toBe(5400);
    expect(parseDuration('30s')).toBe(30);
    expect(parseDuration(' 1.5H ')).toBe(5400);
    expect(parseDuration('1d')).toBe(86400);
    expect(parseDuration('45')).toBe(45);
    for (const bad of ['', '2 hours', '-5m', 'h', '0s', '1h30m']) {
      expect(parseDuration(bad)).toBeNull();
    }
    expect(durationText(7200)).toBe('2h');
    expect(durationText(5400)).toBe('90m');
    expect(durationText(61)).toBe('61s');
  });

  it('sends them when given, checked as the server checks them', () => {
    const ok = checkRunForm(
      values({ retries: '2', timeout: '90m', maxRunning: '2', pilot: true }),
      limits,
      trans
    );
    expect(ok.request).toEqual({
      name: 'reduce-fits',
      replicas: 3,
      retries: 2,
      timeout_seconds: 5400,
      max_running: 2,
      pilot: true
    });
    // Empty fields: none of them sent (no retry, no timeout, no cap).
    expect(
      checkRunForm(
        values({ retries: '', timeout: '', maxRunning: '', pilot: false }),
        limits,
        trans
      ).request
    ).toEqual({ name: 'reduce-fits', replicas: 3 });

    const bad = checkRunForm(
      values({ retries: '11', timeout: '2 hours', maxRunning: '0' }),
      limits,
      trans
    );
    expect(bad.request).toBeNull();
    expect(bad.errors.retries).toBe('Between 0 and 10 retries');
    expect(bad.errors.timeout).toBe(
      '"2 hours" is not a duration: 30s, 90m, 2h, 1d or seconds'
    );
    expect(bad.errors.maxRunning).toBe(
      'A whole number from 1, or empty for no cap'
    );
    expect(
      checkRunForm(values({ timeout: '15d' }), limits, trans).errors.timeout
    ).toBe('At most 14 days (Skaha ends sessions then)');
  });
});
