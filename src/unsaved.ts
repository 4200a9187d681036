// Whether a launch must save the notebook first: only when what a replica runs changed since
// the last save. A notebook is "dirty" after its kernel starts (language_info) or a cell ran
// (outputs), which change nothing a replica runs; saving then cost the launch a round trip
// or two before its POST (issue 13: the first log line within 1 s of the click).
import { INotebookModel, NotebookPanel } from '@jupyterlab/notebook';

type NotebookContext = NotebookPanel['context'];

/** What a batch run of the notebook reads: cells (kind, source, tags) and the kernelspec. */
export function runFingerprint(model: INotebookModel): string {
  const cells: unknown[] = [];
  for (let i = 0; i < model.cells.length; i++) {
    const cell = model.cells.get(i);
    cells.push([
      cell.type,
      cell.sharedModel.getSource(),
      cell.getMetadata('tags') ?? null
    ]);
  }
  return JSON.stringify([model.getMetadata('kernelspec') ?? null, cells]);
}

const saved = new WeakMap<NotebookContext, string>();
const followed = new WeakSet<NotebookContext>();

/** Remember what the file on disk holds now (it was just loaded, saved or reverted). */
function remember(context: NotebookContext): void {
  if (!context.isDisposed) {
    saved.set(context, runFingerprint(context.model));
  }
}

/** Follow a notebook's saves, so `needsSave` can tell what changed since. */
export function trackSaves(panel: NotebookPanel): void {
  const context = panel.context;
  if (followed.has(context)) {
    return;
  }
  followed.add(context);
  // Followed late, a notebook edited since it was opened waits for its next save.
  void context.ready.then(() => !context.model.dirty && remember(context));
  context.fileChanged.connect(() => remember(context));
}

/**
 * Whether the notebook has unsaved changes a replica would run; when its saves are not
 * followed, any unsaved change counts.
 */
export function needsSave(panel: NotebookPanel): boolean {
  const context = panel.context;
  if (!context.model.dirty) {
    return false;
  }
  const known = saved.get(context);
  return known === undefined || known !== runFingerprint(context.model);
}
