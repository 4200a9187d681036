import {
  ILabShell,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';

import { CanfarSidebar } from './sidebar';

const PLUGIN_ID = 'canfar-jlab:plugin';

namespace CommandIDs {
  export const openSidebar = 'canfar-jlab:open-sidebar';
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description:
    'Run the current notebook as N batch replicas on CANFAR or the local engine.',
  autoStart: true,
  requires: [ILabShell],
  optional: [ITranslator, ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    labShell: ILabShell,
    translator: ITranslator | null,
    palette: ICommandPalette | null
  ) => {
    const trans = (translator ?? nullTranslator).load('canfar_jlab');
    const sidebar = new CanfarSidebar(app.serviceManager.serverSettings, trans);
    labShell.add(sidebar, 'left', { rank: 850 });

    app.commands.addCommand(CommandIDs.openSidebar, {
      label: trans.__('Show the CANFAR panel'),
      execute: () => labShell.activateById(sidebar.id)
    });
    palette?.addItem({ command: CommandIDs.openSidebar, category: 'CANFAR' });
  }
};

export default plugin;
