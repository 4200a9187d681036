// What the sidebar's buttons and the commands do: REST calls, dialogs, panels, notifications.
import { JupyterFrontEnd } from '@jupyterlab/application';
import {
  Dialog,
  MainAreaWidget,
  Notification,
  showDialog,
  WidgetTracker
} from '@jupyterlab/apputils';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

import {
  CanfarAPI,
  IExportProblem,
  ILaunchRequest,
  IRun,
  ISession
} from './api';
import { ILaunchOutcome } from './components/RunForm';
import { IListActions } from './components/RunList';
import { LogTabs, LogTarget } from './logtabs';
import { CanfarModel } from './model';
import { notifyError, RunNotifier } from './notify';
import { ApiError } from './request';
import { isFailure, replicaStatus, runSteps, statusLabel } from './status';
import { needsSave } from './unsaved';
import { createLogWidget, LogPanel, logWidgetId } from './widgets/logpanel';

/** What the form needs beyond the list's actions. */
export interface ISidebarActions {
  launch(
    panel: NotebookPanel,
    request: ILaunchRequest
  ): Promise<ILaunchOutcome>;
  revealCell(panel: NotebookPanel, problem: IExportProblem): void;
}

export interface ICanfarActionsOptions {
  app: JupyterFrontEnd;
  api: CanfarAPI;
  model: CanfarModel;
  trans: TranslationBundle;
  logTracker: WidgetTracker<MainAreaWidget<LogPanel>>;
  fileBrowser: IDefaultFileBrowser | null;
  notebooks?: INotebookTracker | null;
  /** Whether launching opens the run's log panel (a user setting). */
  openLogsOnLaunch?: () => boolean;
  /** Whether log lines show their arrival time (a user setting). */
  logTimestamps?: () => boolean;
}

/** Where a server-side absolute path lies under the Jupyter root, from a run's two folders. */
export function relativeToRoot(run: IRun, path: string): string | null {
  if (!path.startsWith('/')) {
    return path;
  }
  const rel = run.folder_relative;
  if (rel === null || !run.folder.endsWith(rel)) {
    return null;
  }
  const root = run.folder.slice(0, run.folder.length - rel.length);
  return path.startsWith(root)
    ? path.slice(root.length).replace(/^\/+/, '')
    : null;
}

/** The 0-based index in `types` of the 1-based code cell `number`, or -1. */
export function codeCellIndex(types: string[], number: number): number {
  let seen = 0;
  for (let i = 0; i < types.length; i++) {
    if (types[i] === 'code' && ++seen === number) {
      return i;
    }
  }
  return -1;
}

export class CanfarActions implements IListActions, ISidebarActions {
  constructor(private readonly _o: ICanfarActionsOptions) {
    this.notifier = new RunNotifier(
      {
        openLogs: run => this.openRunLogs(run),
        openFolder: run => void this.openFolder(run),
        openExecuted: run => this.openExecuted(run),
        rerunFailed: run => void this.rerunFailed(run),
        rerunMoreMemory: run => void this.rerunMoreMemory(run)
      },
      _o.trans
    );
  }

  /** The one notification per run (launch, then its end). */
  readonly notifier: RunNotifier;

  openRunLogs(run: IRun, replica?: number): void {
    this.openLogs({ run: run.name }, replica);
  }

  openSessionLogs(session: ISession): void {
    this.openLogs({ session: session.id });
  }

  /** Bring the log panel of a run or session forward (one per target), on a replica's tab. */
  openLogs(target: LogTarget, replica?: number): MainAreaWidget<LogPanel> {
    const { app, model, trans, logTracker } = this._o;
    const id = logWidgetId(target);
    let widget = logTracker.find(w => w.id === id);
    if (!widget) {
      const tabs = new LogTabs({
        target,
        model,
        trans,
        loadArchive: path => this._readText(path)
      });
      widget = createLogWidget(tabs, trans, {
        openCell:
          'run' in target
            ? cell => void this.revealRunCell(target.run, cell)
            : undefined,
        timestamps: this._o.logTimestamps?.() ?? false
      });
      void logTracker.add(widget);
      app.shell.add(widget, 'main', { mode: 'split-bottom' });
    }
    if (replica !== undefined) {
      widget.content.tabs.selected = String(replica);
    }
    app.shell.activateById(widget.id);
    return widget;
  }

  async deleteRun(run: IRun): Promise<void> {
    const { api, model, trans } = this._o;
    const live = run.replicas.filter(r => r.session_id);
    const body = (
      <div className="jp-canfar-dialog">
        <p>
          {trans._n(
            'This deletes the session of its %1 replica:',
            'This deletes the sessions of its %1 replicas:',
            live.length
          )}
        </p>
        <ul className="jp-canfar-dialog-list">
          {live.map(r => (
            <li key={r.index}>
              <code>{r.name}</code> (
              {statusLabel(replicaStatus(r, model.sessionsById), trans)})
            </li>
          ))}
        </ul>
        <p>{trans.__('Its run folder stays: %1', run.folder)}</p>
      </div>
    );
    if (
      !(await this._confirmDelete(trans.__('Delete run %1?', run.name), body))
    ) {
      return;
    }
    try {
      const result = await api.deleteRun(run.name);
      Notification.success(
        trans._n(
          'Run %2: %1 session deleted',
          'Run %2: %1 sessions deleted',
          result.deleted.length,
          run.name
        ),
        { autoClose: 5000 }
      );
    } catch (error) {
      notifyError(trans.__('Cannot delete run %1', run.name), error, trans);
    }
  }

  async deleteSession(session: ISession): Promise<void> {
    const { api, trans } = this._o;
    const name = session.name || session.id;
    const body = trans.__(
      'Session %1 (%2, %3) stops and is deleted, with its log on the session service.',
      name,
      session.id,
      statusLabel(session.status, trans)
    );
    if (
      !(await this._confirmDelete(trans.__('Delete session %1?', name), body))
    ) {
      return;
    }
    try {
      await api.deleteSession(session.id);
    } catch (error) {
      notifyError(trans.__('Cannot delete session %1', name), error, trans);
    }
  }

  /** Ask before deleting; true when the user confirmed. */
  private async _confirmDelete(
    title: string,
    body: string | React.ReactElement
  ): Promise<boolean> {
    const answer = await showDialog({
      title,
      body,
      buttons: [
        Dialog.cancelButton(),
        Dialog.warnButton({ label: this._o.trans.__('Delete') })
      ]
    });
    return answer.button.accept;
  }

  /**
   * Re-run the failed replicas, asking first whether from the notebook as launched (the
   * snapshot) or as it is now (after a fix).
   */
  async rerunFailed(run: IRun): Promise<void> {
    const { api, model, trans } = this._o;
    const failed = runSteps(run).filter(r => isFailure(r.status)).length;
    const current = trans.__('Current notebook');
    const answer = await showDialog({
      title: trans._n(
        'Re-run %1 failed replica of %2?',
        'Re-run %1 failed replicas of %2?',
        failed,
        run.name
      ),
      body: (
        <div className="jp-canfar-dialog">
          <p>
            {trans.__(
              'Run the notebook as it was launched (the snapshot in the run folder), or as it is now, with your fixes: %1',
              run.notebook
            )}
          </p>
        </div>
      ),
      buttons: [
        Dialog.cancelButton(),
        Dialog.okButton({
          label: current,
          caption: trans.__('Export %1 again and run that', run.notebook),
          displayType: 'default'
        }),
        Dialog.okButton({
          label: trans.__('Launch snapshot'),
          caption: trans.__('Run the notebook as it was launched')
        })
      ],
      defaultButton: 2
    });
    if (!answer.button.accept) {
      return;
    }
    const source = answer.button.label === current ? 'notebook' : 'snapshot';
    if (source === 'notebook') {
      await this._saveNotebook(run);
    }
    try {
      const updated = await api.rerunFailed(run.name, source);
      model.updateRun(updated);
      this.notifier.launched(updated);
    } catch (error) {
      notifyError(trans.__('Cannot re-run %1', run.name), error, trans);
    }
  }

  /**
   * Re-run the replicas that ran out of memory, each with twice its peak (rounded up to what
   * the service offers); the server refuses, with the reason, when that is too much.
   */
  async rerunMoreMemory(run: IRun): Promise<void> {
    const { api, model, trans } = this._o;
    try {
      const updated = await api.rerunMoreMemory(run.name);
      model.updateRun(updated);
      this.notifier.launched(updated);
    } catch (error) {
      notifyError(
        trans.__('Cannot re-run %1 with more memory', run.name),
        error,
        trans
      );
    }
  }

  /** Push back the deadline of a run's live replicas, and say what came of it. */
  async renewRun(run: IRun): Promise<void> {
    const { api, trans } = this._o;
    try {
      const answer = await api.renewRun(run.name);
      const renewed = answer.replicas.filter(r => r.outcome === 'renewed');
      const until = (list: typeof answer.replicas) =>
        list
          .map(r => r.expiry)
          .filter((e): e is string => !!e)
          .sort()[0];
      if (renewed.length === 0) {
        // Nothing moved: say why (Skaha extends a session only near its deadline).
        const note = answer.replicas.find(r => r.note)?.note;
        const expiry = until(answer.replicas);
        Notification.info(
          trans.__(
            'Run %1: no deadline moved%2%3',
            run.name,
            note ? ` (${note})` : '',
            expiry
              ? trans.__(
                  '; it runs until %1',
                  new Date(expiry).toLocaleString()
                )
              : ''
          ),
          { autoClose: 8000 }
        );
        return;
      }
      const expiry = until(renewed);
      Notification.success(
        expiry
          ? trans._n(
              'Run %2: %1 replica renewed, until %3',
              'Run %2: %1 replicas renewed, until %3',
              renewed.length,
              run.name,
              new Date(expiry).toLocaleString()
            )
          : trans._n(
              'Run %2: %1 replica renewed',
              'Run %2: %1 replicas renewed',
              renewed.length,
              run.name
            ),
        { autoClose: 5000 }
      );
    } catch (error) {
      notifyError(trans.__('Cannot renew run %1', run.name), error, trans);
    }
  }

  /** End a run's replicas; its record, logs and folder stay. */
  async stopRun(run: IRun): Promise<void> {
    const { api, model, trans } = this._o;
    const answer = await showDialog({
      title: trans.__('Stop run %1?', run.name),
      body: trans.__(
        'Its replicas that still run or wait are ended, their logs archived first. The run stays listed with its logs and outputs; Delete removes it.'
      ),
      buttons: [
        Dialog.cancelButton(),
        Dialog.warnButton({ label: trans.__('Stop') })
      ]
    });
    if (!answer.button.accept) {
      return;
    }
    try {
      model.updateRun(await api.stopRun(run.name));
    } catch (error) {
      const old =
        error instanceof ApiError &&
        (error.status === 404 || error.status === 405);
      notifyError(
        trans.__('Cannot stop run %1', run.name),
        old
          ? new Error(
              trans.__(
                'this server cannot stop runs (update canfar-jlab); Delete ends the replicas'
              )
            )
          : error,
        trans
      );
    }
  }

  /** Open a replica's executed notebook (the first replica that has one by default). */
  openExecuted(run: IRun, replica?: number): void {
    const chosen =
      replica !== undefined
        ? runSteps(run).find(r => r.index === replica)
        : run.replicas.find(r => r.executed_notebook);
    if (!chosen?.executed_notebook || run.folder_relative === null) {
      return;
    }
    void this._o.app.commands.execute('docmanager:open', {
      path: `${run.folder_relative}/${chosen.executed_notebook}`
    });
  }

  /** Show the folder holding a replica's new files in the file browser. */
  openReplicaFiles(run: IRun, replica: number): void {
    const files = runSteps(run).find(r => r.index === replica)?.files ?? [];
    const first = files[0] ?? '';
    // The reduce step (index 0) works in reduce/, replica i in replicas/<i>/.
    const own = replica === 0 ? 'reduce' : `replicas/${replica}`;
    const folder = first.startsWith(`${own}/`)
      ? own
      : first.includes('/')
        ? first.slice(0, first.lastIndexOf('/'))
        : own;
    void this._cd(run, folder);
  }

  /**
   * Select code cell `number` (1-based, as the runner's "Cell In[N]") of the run's notebook,
   * opening it if needed; the launch snapshot when the notebook is not under the root.
   */
  async revealRunCell(runName: string, number: number): Promise<void> {
    const { app, model, notebooks, trans } = this._o;
    const run = model.run(runName);
    if (!run) {
      return;
    }
    const path =
      relativeToRoot(run, run.notebook) ??
      (run.folder_relative !== null
        ? `${run.folder_relative}/notebook.ipynb`
        : null);
    if (!path) {
      return;
    }
    try {
      let panel = notebooks?.find(p => p.context.path === path) ?? null;
      if (!panel) {
        const opened = await app.commands.execute('docmanager:open', { path });
        panel = opened instanceof NotebookPanel ? opened : null;
      }
      if (!panel) {
        return;
      }
      await panel.context.ready;
      await panel.revealed;
      const types = panel.content.widgets.map(c => c.model.type as string);
      const index = codeCellIndex(types, number);
      if (index >= 0) {
        panel.content.activeCellIndex = index;
        panel.content.deselectAll();
        void panel.content.scrollToItem(index);
      }
      app.shell.activateById(panel.id);
    } catch (error) {
      notifyError(trans.__('Cannot open %1', path), error, trans);
    }
  }

  /** Save the run's notebook if it is open with unsaved changes (re-run from it). */
  private async _saveNotebook(run: IRun): Promise<void> {
    const path = relativeToRoot(run, run.notebook);
    const panel = path
      ? this._o.notebooks?.find(p => p.context.path === path)
      : undefined;
    if (panel?.context.model.dirty) {
      await panel.context.save();
    }
  }

  /** Show the run folder in the file browser. */
  async openFolder(run: IRun): Promise<void> {
    await this._cd(run, '');
  }

  private async _cd(run: IRun, sub: string): Promise<void> {
    const { app, fileBrowser, trans } = this._o;
    if (run.folder_relative === null) {
      return;
    }
    const path = sub ? `${run.folder_relative}/${sub}` : run.folder_relative;
    try {
      if (fileBrowser) {
        await fileBrowser.model.cd('/' + path);
        app.shell.activateById(fileBrowser.id);
      } else {
        await app.commands.execute('filebrowser:go-to-path', { path });
      }
    } catch (error) {
      notifyError(trans.__('Cannot open %1', path), error, trans);
    }
  }

  /**
   * Save the notebook if it has unsaved changes, and launch. The notebook is not checked
   * again here: the form launches only on a preview without problems, and the server checks
   * the saved file again and refuses a bad one (400), whose problems are then fetched for
   * the form to list. Bad input (400, 409) is for the form to show; anything else is also
   * notified. The log panel opens at once and streams as soon as the run is known.
   */
  async launch(
    panel: NotebookPanel,
    request: ILaunchRequest
  ): Promise<ILaunchOutcome> {
    const { api, model, trans, logTracker } = this._o;
    // The save (only of changes a replica would run: not outputs or the kernel's
    // language_info) or else the launch itself goes out first; the log panel is laid out
    // while the server works.
    const posting = needsSave(panel)
      ? panel.context.save().then(() => api.launch(request))
      : api.launch(request);
    const openLogs = this._o.openLogsOnLaunch?.() ?? true;
    const early =
      openLogs && request.name
        ? logTracker.find(w => w.id === logWidgetId({ run: request.name! }))
          ? null
          : this.openLogs({ run: request.name })
        : null;
    const abandon = () => early?.dispose();
    let run: IRun;
    try {
      run = await posting;
    } catch (error) {
      abandon();
      const badInput =
        error instanceof ApiError &&
        (error.status === 400 || error.status === 409);
      if (badInput && error.status === 400) {
        // Refused: if the saved notebook has problems, list them with their cells.
        const problems = await api.preview(request).then(
          preview => preview.problems,
          () => []
        );
        if (problems.length > 0) {
          return { problems };
        }
      }
      if (!badInput) {
        notifyError(
          trans.__('Cannot launch %1', request.name ?? request.notebook),
          error,
          trans
        );
      }
      throw error;
    }
    model.updateRun(run);
    this.notifier.launched(run);
    if (!early && openLogs) {
      this.openRunLogs(run);
    }
    return { run };
  }

  /** Select the cell an export problem points at. */
  revealCell(panel: NotebookPanel, problem: IExportProblem): void {
    const notebook = panel.content;
    const cells = notebook.widgets;
    let index = problem.cell_id
      ? cells.findIndex(c => c.model.id === problem.cell_id)
      : -1;
    if (index < 0) {
      // Code cells are counted from 1, markdown and raw cells left out.
      const code = cells
        .map((cell, i) => [cell, i] as const)
        .filter(([cell]) => cell.model.type === 'code');
      index = code[problem.cell - 1]?.[1] ?? -1;
    }
    if (index >= 0) {
      notebook.activeCellIndex = index;
      void notebook.scrollToItem(index);
      this._o.app.shell.activateById(panel.id);
    }
  }

  private async _readText(path: string): Promise<string> {
    const model = await this._o.app.serviceManager.contents.get(path, {
      content: true,
      format: 'text',
      type: 'file'
    });
    return String(model.content ?? '');
  }
}
