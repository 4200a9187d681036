// JupyterLab notifications for what happens away from the user's eyes. A run has one
// notification for life: "launched" becomes "completed"/"failed" in place, and a re-run's end
// updates the same one, so copies never stack.
import { Notification, showErrorMessage } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';

import { IRun } from './api';
import { formatDuration, runTiming } from './format';
import { anyOutOfMemory, isFailure, replicaFailure, runSteps } from './status';

export interface IRunActions {
  openLogs(run: IRun): void;
  /** Null when the run folder is not reachable from the file browser. */
  openFolder: ((run: IRun) => void) | null;
  /** Open the first executed notebook (newer servers write one per replica). */
  openExecuted?: (run: IRun) => void;
  rerunFailed?: (run: IRun) => void;
  /** Re-run the replicas that ran out of memory with twice their peak (issue 17). */
  rerunMoreMemory?: (run: IRun) => void;
}

/** "Run reduce-fits completed: 4 replicas in 5 s" or "Run x failed: 1 of 3 replicas failed in 8 s". */
export function runEndMessage(run: IRun, trans: TranslationBundle): string {
  const total = run.replicas.length;
  const failed = run.replicas.filter(r => isFailure(r.status)).length;
  const { seconds } = runTiming(run);
  const took = seconds !== null ? formatDuration(seconds) : null;
  if (run.state === 'stopped') {
    return took
      ? trans.__('Run %1 stopped after %2', run.name, took)
      : trans.__('Run %1 stopped', run.name);
  }
  if (run.state === 'failed' || failed > 0) {
    const text = trans._n(
      '%2 of %1 replica failed',
      '%2 of %1 replicas failed',
      total,
      failed
    );
    const first = runSteps(run).find(r => isFailure(r.status));
    const reason = first ? replicaFailure(first) : null;
    const head =
      failed === 0 && first
        ? took
          ? trans.__(
              'Run %1 failed: its reduce step failed in %2',
              run.name,
              took
            )
          : trans.__('Run %1 failed: its reduce step failed', run.name)
        : took
          ? trans.__('Run %1 failed: %2 in %3', run.name, text, took)
          : trans.__('Run %1 failed: %2', run.name, text);
    if (!reason) {
      return head;
    }
    return first!.index === 0
      ? trans.__('%1. Reduce step: %2', head, reason)
      : trans.__('%1. Replica %2: %3', head, first!.index, reason);
  }
  const replicas = run.reduce
    ? trans._n(
        '%1 replica and the reduce step',
        '%1 replicas and the reduce step',
        total
      )
    : trans._n('%1 replica', '%1 replicas', total);
  return took
    ? trans.__('Run %1 completed: %2 in %3', run.name, replicas, took)
    : trans.__('Run %1 completed: %2', run.name, replicas);
}

/** The buttons a run's notification offers, for what the run has to show. */
function runButtons(
  run: IRun,
  actions: IRunActions,
  trans: TranslationBundle
): Notification.IAction[] {
  const buttons: Notification.IAction[] = [
    { label: trans.__('Open logs'), callback: () => actions.openLogs(run) }
  ];
  if (actions.openFolder && run.folder_relative !== null) {
    const open = actions.openFolder;
    buttons.push({
      label: trans.__('Open outputs'),
      caption: trans.__('Show the run folder in the file browser'),
      callback: () => open(run),
      displayType: 'link'
    });
  }
  if (
    actions.openExecuted &&
    run.folder_relative !== null &&
    run.replicas.some(r => r.executed_notebook)
  ) {
    const open = actions.openExecuted;
    buttons.push({
      label: trans.__('Open executed notebook'),
      callback: () => open(run),
      displayType: 'link'
    });
  }
  if (actions.rerunMoreMemory && anyOutOfMemory(run)) {
    const more = actions.rerunMoreMemory;
    buttons.push({
      label: trans.__('Re-run with more memory'),
      caption: trans.__(
        'Re-run the replicas that ran out of memory with twice their peak'
      ),
      callback: () => more(run),
      displayType: 'accent'
    });
  }
  if (actions.rerunFailed && runSteps(run).some(r => isFailure(r.status))) {
    const rerun = actions.rerunFailed;
    buttons.push({
      label: trans.__('Re-run failed'),
      callback: () => rerun(run),
      displayType: anyOutOfMemory(run) ? 'default' : 'accent'
    });
  }
  return buttons;
}

/** The notification of each run, by run name, updated in place. */
export class RunNotifier {
  constructor(
    private readonly _actions: IRunActions,
    private readonly _trans: TranslationBundle,
    private readonly _notification: Pick<
      typeof Notification,
      'emit' | 'update'
    > = Notification
  ) {}

  /** The id of a run's notification, if it has one. */
  id(run: string): string | undefined {
    return this._ids.get(run);
  }

  /** "Run x launched: 4 replicas" (or the replicas that could not be created). */
  launched(run: IRun): string {
    const trans = this._trans;
    const missing = run.replicas.filter(r => r.status === 'NotCreated');
    const openLogs: Notification.IAction = {
      label: trans.__('Open logs'),
      callback: () => this._actions.openLogs(run)
    };
    if (missing.length > 0) {
      return this._show(
        run.name,
        trans.__(
          'Run %1: %2 of %3 replicas could not be created (%4)',
          run.name,
          missing.length,
          run.replicas.length,
          missing[0].error ?? ''
        ),
        'warning',
        { autoClose: false, actions: [openLogs] }
      );
    }
    const waiting = run.replicas.filter(r => r.status === 'Waiting').length;
    const launched = trans._n(
      'Run %2 launched: %1 replica',
      'Run %2 launched: %1 replicas',
      run.replicas.length,
      run.name
    );
    return this._show(
      run.name,
      waiting > 0
        ? trans.__('%1 (%2 waiting in the run)', launched, waiting)
        : launched,
      'in-progress',
      { autoClose: false, actions: [openLogs] }
    );
  }

  /** The run ended: its notification says how, with what to do next. */
  ended(run: IRun): string {
    const failed =
      run.state === 'failed' || runSteps(run).some(r => isFailure(r.status));
    return this._show(
      run.name,
      runEndMessage(run, this._trans),
      failed ? 'error' : run.state === 'stopped' ? 'info' : 'success',
      {
        autoClose: failed ? false : 10000,
        actions: runButtons(run, this._actions, this._trans)
      }
    );
  }

  private _show(
    run: string,
    message: string,
    type: Notification.TypeOptions,
    options: { autoClose: number | false; actions: Notification.IAction[] }
  ): string {
    const id = this._ids.get(run);
    // update() answers false when the user closed it: then a new one is due.
    if (
      id !== undefined &&
      this._notification.update({ id, message, type, ...options })
    ) {
      return id;
    }
    const fresh = this._notification.emit(message, type, options);
    this._ids.set(run, fresh);
    return fresh;
  }

  private _ids = new Map<string, string>();
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
