import {
  ILabShell,
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  ICommandPalette,
  MainAreaWidget,
  WidgetTracker
} from '@jupyterlab/apputils';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { INotebookTracker } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';

import { CanfarActions } from './actions';
import { CanfarAPI } from './api';
import { canfarIcon } from './icons';
import { LiveConnection } from './live';
import { CanfarModel } from './model';
import { notifyError } from './notify';
import { readSettings } from './settings';
import { CanfarSidebar } from './sidebar';
import { PlatformStatsModel } from './stats';
import { ICanfarModel } from './tokens';
import { LogPanel } from './widgets/logpanel';

export * from './tokens';

const PLUGIN_ID = 'canfar-jlab:plugin';

namespace CommandIDs {
  export const openSidebar = 'canfar-jlab:open-sidebar';
  export const runAsBatch = 'canfar-jlab:run-as-batch';
  export const openLogs = 'canfar-jlab:open-logs';
}

const plugin: JupyterFrontEndPlugin<ICanfarModel> = {
  id: PLUGIN_ID,
  description:
    'Run the current notebook as N batch replicas on CANFAR or the local engine.',
  autoStart: true,
  // Other extensions get the live model of runs and sessions (src/tokens.ts).
  provides: ICanfarModel,
  requires: [ILabShell],
  optional: [
    ITranslator,
    ICommandPalette,
    INotebookTracker,
    ISettingRegistry,
    ILayoutRestorer,
    IDefaultFileBrowser
  ],
  activate: (
    app: JupyterFrontEnd,
    labShell: ILabShell,
    translator: ITranslator | null,
    palette: ICommandPalette | null,
    notebooks: INotebookTracker | null,
    settingRegistry: ISettingRegistry | null,
    restorer: ILayoutRestorer | null,
    fileBrowser: IDefaultFileBrowser | null
  ): ICanfarModel => {
    const trans = (translator ?? nullTranslator).load('canfar_jlab');
    const api = new CanfarAPI(app.serviceManager.serverSettings);
    // One live connection per browser tab, shared by the sidebar and every log panel.
    const live = new LiveConnection(app.serviceManager.serverSettings);
    const model = new CanfarModel(live, {
      logs: {
        describeGap: bytes =>
          trans.__('[… %1 bytes of log not received …]', bytes)
      }
    });
    const logTracker = new WidgetTracker<MainAreaWidget<LogPanel>>({
      namespace: 'canfar-jlab-logs'
    });
    const actions = new CanfarActions({
      app,
      api,
      model,
      trans,
      logTracker,
      fileBrowser,
      notebooks,
      openLogsOnLaunch: () => sidebar?.settings.openLogsOnLaunch ?? true,
      logTimestamps: () => sidebar?.settings.logTimestamps ?? false
    });
    let sidebar: CanfarSidebar | null = null;
    const stats = new PlatformStatsModel({
      fetch: () => api.stats(),
      hidden: () => !sidebar?.isVisible
    });
    sidebar = new CanfarSidebar({ api, model, stats, actions, trans });
    labShell.add(sidebar, 'left', { rank: 850 });
    restorer?.add(sidebar, sidebar.id);

    void sidebar.refresh().then(result => {
      if (result.kind !== 'missing') {
        live.connect();
        stats.refresh();
      }
    });
    // Platform load is polled only while the panel is in sight; fresh figures on opening it.
    let wasVisible = sidebar.isVisible;
    labShell.layoutModified.connect(() => {
      const visible = sidebar!.isVisible;
      if (visible && !wasVisible && sidebar!.handshake?.kind === 'ok') {
        stats.refresh();
      }
      wasVisible = visible;
    });

    model.runEnded.connect((_, run) => {
      actions.notifier.ended(run);
      stats.refresh(); // allocations changed: no stale figures after a run
    });
    model.statsReceived.connect((_, pushed) => stats.push(pushed));
    // A session that starts or ends changes the platform's allocation: ask again then.
    let running = -1;
    model.changed.connect(() => {
      const now = model.sessions.filter(s => s.status === 'Running').length;
      if (running >= 0 && now !== running && sidebar!.isVisible) {
        stats.refresh();
      }
      running = now;
    });
    model.errorReceived.connect((_, message) =>
      notifyError(trans.__('Live updates'), new Error(message), trans)
    );

    if (settingRegistry) {
      // Not awaited: settings arrive when they arrive, and apply live after that.
      void settingRegistry.load(PLUGIN_ID).then(
        settings => {
          const apply = () => (sidebar!.settings = readSettings(settings));
          apply();
          settings.changed.connect(apply);
        },
        error => console.warn('canfar-jlab: cannot load settings', error)
      );
    }

    app.commands.addCommand(CommandIDs.openSidebar, {
      label: trans.__('Show the CANFAR panel'),
      execute: () => labShell.activateById(sidebar!.id)
    });

    app.commands.addCommand(CommandIDs.runAsBatch, {
      label: trans.__('Run as batch…'),
      caption: trans.__(
        'Run this notebook as N batch replicas on CANFAR or the local engine'
      ),
      icon: canfarIcon,
      isEnabled: () => !!notebooks?.currentWidget,
      execute: () => {
        const panel = notebooks?.currentWidget;
        if (!panel) {
          return;
        }
        sidebar!.form.notebook = panel;
        labShell.activateById(sidebar!.id);
        sidebar!.showForm();
      }
    });

    app.commands.addCommand(CommandIDs.openLogs, {
      label: args =>
        args.run
          ? trans.__('Logs of run %1', String(args.run))
          : trans.__('Logs of a CANFAR session'),
      execute: args => {
        const replica =
          typeof args.replica === 'number' ? args.replica : undefined;
        if (typeof args.run === 'string') {
          return actions.openLogs({ run: args.run }, replica);
        }
        if (typeof args.session === 'string') {
          return actions.openLogs({ session: args.session });
        }
      }
    });

    // After the commands exist: notifyCommandChanged refuses unknown ids.
    if (notebooks) {
      const follow = () => {
        sidebar!.form.notebook = notebooks.currentWidget;
        app.commands.notifyCommandChanged(CommandIDs.runAsBatch);
      };
      notebooks.currentChanged.connect(follow);
      follow();
    }

    if (restorer) {
      void restorer.restore(logTracker, {
        command: CommandIDs.openLogs,
        args: widget => ({ ...widget.content.tabs.target }),
        name: widget => widget.id
      });
    }

    if (palette) {
      palette.addItem({ command: CommandIDs.openSidebar, category: 'CANFAR' });
      palette.addItem({ command: CommandIDs.runAsBatch, category: 'CANFAR' });
    }
    return model;
  }
};

export default plugin;
