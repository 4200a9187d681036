import { NotebookModel } from '@jupyterlab/notebook';

import { runFingerprint } from '../unsaved';

function notebook(): NotebookModel {
  const model = new NotebookModel();
  model.sharedModel.insertCells(0, [
    { cell_type: 'code', source: 'x = 1', metadata: { tags: ['parameters'] } },
    { cell_type: 'code', source: 'print(x)', metadata: {} },
    { cell_type: 'markdown', source: '# Notes', metadata: {} }
  ]);
  model.setMetadata('kernelspec', {
    name: 'python3',
    display_name: 'Python 3'
  });
  return model;
}

describe('a launch saves only what a replica would run (issue 13)', () => {
  it('ignores outputs, execution counts and the kernel language_info', () => {
    const model = notebook();
    const before = runFingerprint(model);
    model.setMetadata('language_info', { name: 'python', version: '3.11.2' });
    const cell = model.sharedModel.cells[1];
    cell.setMetadata('collapsed', false);
    (cell as any).execution_count = 3;
    (cell as any).setOutputs?.([
      { output_type: 'stream', name: 'stdout', text: '1\n' }
    ]);
    expect(runFingerprint(model)).toBe(before);
  });

  it('sees a changed source, tag, cell or kernel', () => {
    const model = notebook();
    const before = runFingerprint(model);
    model.sharedModel.cells[1].setSource('print(x + 1)');
    const edited = runFingerprint(model);
    expect(edited).not.toBe(before);
    model.sharedModel.cells[1].setMetadata('tags', ['skip-batch']);
    expect(runFingerprint(model)).not.toBe(edited);
    const tagged = runFingerprint(model);
    model.sharedModel.cells[2].setSource('# Notes, fixed');
    expect(runFingerprint(model)).not.toBe(tagged);
    const noted = runFingerprint(model);
    model.setMetadata('kernelspec', { name: 'bash', display_name: 'Bash' });
    expect(runFingerprint(model)).not.toBe(noted);
  });
});
