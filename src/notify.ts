// JupyterLab notifications for what happens away from the user's eyes.
import { Notification, showErrorMessage } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';

import { IRun } from './api';
import { countStatuses, formatCounts } from './status';

export interface IRunActions {
  openLogs(run: IRun): void;
  /** Null when the run folder is not reachable from the file browser. */
  openFolder: ((run: IRun) => void) | null;
}

/** "Run reduce-fits ended: 2 Completed · 1 Failed", with actions to look closer. */
export function notifyRunEnded(
  run: IRun,
  actions: IRunActions,
  trans: TranslationBundle
): string {
  const counts = formatCounts(
    countStatuses(run.replicas.map(r => r.status)),
    trans
  );
  const failed = run.state === 'failed';
  const message = failed
    ? trans.__('Run %1 failed: %2', run.name, counts)
    : trans.__('Run %1 completed: %2', run.name, counts);
  const buttons: Notification.IAction[] = [
    { label: trans.__('Open logs'), callback: () => actions.openLogs(run) }
  ];
  if (actions.openFolder && run.folder_relative !== null) {
    const open = actions.openFolder;
    buttons.push({
      label: trans.__('Open run folder'),
      callback: () => open(run),
      displayType: 'link'
    });
  }
  return Notification.emit(message, failed ? 'error' : 'success', {
    autoClose: failed ? false : 10000,
    actions: buttons
  });
}

/** A one-line error with a Details action that shows the whole message. */
export function notifyError(
  what: string,
  error: unknown,
  trans: TranslationBundle
): string {
  const detail = error instanceof Error ? error.message : String(error);
  return Notification.error(trans.__('%1: %2', what, detail), {
    autoClose: false,
    actions: [
      {
        label: trans.__('Details'),
        callback: () =>
          void showErrorMessage(what, error instanceof Error ? error : detail)
      }
    ]
  });
}
