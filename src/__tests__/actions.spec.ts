import { codeCellIndex, relativeToRoot } from '../actions';
import { makeRun, replica } from './support';

describe('action helpers', () => {
  it("finds a run's notebook under the Jupyter root from its two folder paths", () => {
    const run = makeRun('fit', [replica(1, 'Failed')], {
      notebook: '/home/me/work/fit.ipynb',
      folder: '/home/me/canfar-runs/fit',
      folder_relative: 'canfar-runs/fit'
    });
    expect(relativeToRoot(run, run.notebook)).toBe('work/fit.ipynb');
    expect(relativeToRoot(run, 'already/relative.ipynb')).toBe(
      'already/relative.ipynb'
    );
    expect(
      relativeToRoot({ ...run, folder_relative: null }, run.notebook)
    ).toBeNull();
    expect(relativeToRoot(run, '/elsewhere/fit.ipynb')).toBeNull();
  });

  it('maps "Cell In[N]" (the N-th code cell) to the cell index, markdown skipped', () => {
    const types = ['markdown', 'code', 'raw', 'code', 'code'];
    expect(codeCellIndex(types, 1)).toBe(1);
    expect(codeCellIndex(types, 2)).toBe(3);
    expect(codeCellIndex(types, 3)).toBe(4);
    expect(codeCellIndex(types, 4)).toBe(-1);
  });
});
