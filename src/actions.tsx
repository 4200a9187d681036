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
import { NotebookPanel } from '@jupyterlab/notebook';
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
import { notifyError } from './notify';
import { ApiError } from './request';
import { replicaStatus, statusLabel } from './status';
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
}

export class CanfarActions implements IListActions, ISidebarActions {
  constructor(private readonly _o: ICanfarActionsOptions) {}

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
      widget = createLogWidget(tabs, trans);
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

  async rerunFailed(run: IRun): Promise<void> {
    const { api, model, trans } = this._o;
    try {
      const updated = await api.rerunFailed(run.name);
      model.updateRun(updated);
      Notification.info(
        trans.__('Re-running the failed replicas of %1', run.name),
        {
          autoClose: 5000
        }
      );
    } catch (error) {
      notifyError(trans.__('Cannot re-run %1', run.name), error, trans);
    }
  }

  /** Show the run folder in the file browser. */
  async openFolder(run: IRun): Promise<void> {
    const { app, fileBrowser, trans } = this._o;
    if (run.folder_relative === null) {
      return;
    }
    try {
      if (fileBrowser) {
        await fileBrowser.model.cd('/' + run.folder_relative);
        app.shell.activateById(fileBrowser.id);
      } else {
        await app.commands.execute('filebrowser:go-to-path', {
          path: run.folder_relative
        });
      }
    } catch (error) {
      notifyError(
        trans.__('Cannot open %1', run.folder_relative),
        error,
        trans
      );
    }
  }

  /**
   * Save the notebook, check it again, and launch. Problems stop the launch; bad input
   * (400, 409) is for the form to show, anything else is also notified.
   */
  async launch(
    panel: NotebookPanel,
    request: ILaunchRequest
  ): Promise<ILaunchOutcome> {
    const { api, model, trans } = this._o;
    await panel.context.save();
    const preview = await api.preview(request);
    if (preview.problems.length > 0) {
      return { problems: preview.problems };
    }
    let run: IRun;
    try {
      run = await api.launch(request);
    } catch (error) {
      if (!(
        error instanceof ApiError &&
        (error.status === 400 || error.status === 409)
      )) {
        notifyError(
          trans.__('Cannot launch %1', request.name ?? request.notebook),
          error,
          trans
        );
      }
      throw error;
    }
    model.updateRun(run);
    const missing = run.replicas.filter(r => r.status === 'NotCreated');
    const openLogs = {
      label: trans.__('Open logs'),
      callback: () => this.openRunLogs(run)
    };
    if (missing.length > 0) {
      Notification.warning(
        trans.__(
          'Run %1: %2 of %3 replicas could not be created (%4)',
          run.name,
          missing.length,
          run.replicas.length,
          missing[0].error ?? ''
        ),
        { autoClose: false, actions: [openLogs] }
      );
    } else {
      Notification.info(
        trans._n(
          'Run %2 launched: %1 replica',
          'Run %2 launched: %1 replicas',
          run.replicas.length,
          run.name
        ),
        { autoClose: 5000, actions: [openLogs] }
      );
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
