import { nullTranslator } from '@jupyterlab/translation';

import {
  checkRunForm,
  IFormLimits,
  IRunFormValues,
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
