// The left-sidebar CANFAR panel: server status and platform load on top, then the Run as
// batch form for the current notebook, the runs, and the sessions outside any run.
import { NotebookPanel } from '@jupyterlab/notebook';
import { TranslationBundle } from '@jupyterlab/translation';
import { ReactWidget, SidePanel, UseSignal } from '@jupyterlab/ui-components';
import { ISignal, Signal } from '@lumino/signaling';
import { AccordionPanel } from '@lumino/widgets';
import * as React from 'react';

import { CanfarAPI } from './api';
import { PlatformLoad } from './components/PlatformLoad';
import { ICatalog, INotebookTarget, RunForm } from './components/RunForm';
import { IListActions, RunList, SessionList } from './components/RunList';
import { ServerStatus } from './components/ServerStatus';
import { handshake, HandshakeResult } from './handshake';
import { canfarIcon } from './icons';
import { CanfarModel } from './model';
import { INotebookParameter, parseParametersCell } from './parameters';
import { DEFAULT_SETTINGS, ICanfarSettings } from './settings';
import { PlatformStatsModel } from './stats';
import { trackSaves } from './unsaved';
import { ISidebarActions } from './actions';

/** Server status, live-channel state and platform load. */
class HeaderWidget extends ReactWidget {
  constructor(private readonly _sidebar: CanfarSidebar) {
    super();
    this.addClass('jp-canfar-header');
  }

  render(): JSX.Element {
    const sidebar = this._sidebar;
    const { trans, model, stats } = sidebar;
    return (
      <UseSignal signal={sidebar.stateChanged}>
        {() => (
          <div className="jp-canfar-sidebar-content">
            <h2 className="jp-canfar-title">{trans.__('CANFAR')}</h2>
            <ServerStatus result={sidebar.handshake} trans={trans} />
            <UseSignal signal={model.changed}>
              {() => <LiveState model={model} trans={trans} />}
            </UseSignal>
            <UseSignal signal={stats.changed}>
              {() => (
                <UseSignal signal={model.changed}>
                  {() => (
                    <PlatformLoad
                      stats={stats.stats}
                      error={stats.error}
                      unavailable={stats.unavailable}
                      sessions={model.sessions}
                      trans={trans}
                    />
                  )}
                </UseSignal>
              )}
            </UseSignal>
          </div>
        )}
      </UseSignal>
    );
  }
}

function LiveState(props: {
  model: CanfarModel;
  trans: TranslationBundle;
}): JSX.Element | null {
  const { model, trans } = props;
  if (model.upstreamError) {
    return (
      <div className="jp-canfar-problem" role="status">
        {trans.__(
          'The session service did not answer: %1',
          model.upstreamError
        )}
      </div>
    );
  }
  if (
    model.connection === 'waiting' ||
    (model.connection === 'connecting' && model.live.opens > 0)
  ) {
    return (
      <div className="jp-canfar-live" data-state="reconnecting" role="status">
        {trans.__('Live updates interrupted, reconnecting…')}
      </div>
    );
  }
  return null;
}

/** The assignments of a notebook's cell tagged `parameters` (the first one). */
export function notebookParameters(panel: NotebookPanel): INotebookParameter[] {
  const cells = panel.content.model?.cells;
  if (!cells) {
    return [];
  }
  for (let i = 0; i < cells.length; i++) {
    const cell = cells.get(i);
    const tags = cell.getMetadata('tags');
    if (
      cell.type === 'code' &&
      Array.isArray(tags) &&
      tags.includes('parameters')
    ) {
      return parseParametersCell(cell.sharedModel.getSource());
    }
  }
  return [];
}

/** How many code cells of the notebook are tagged `reduce` (and not `skip-batch`). */
export function notebookReduceCells(panel: NotebookPanel): number {
  const cells = panel.content.model?.cells;
  let count = 0;
  for (let i = 0; cells && i < cells.length; i++) {
    const cell = cells.get(i);
    const tags = cell.getMetadata('tags');
    if (
      cell.type === 'code' &&
      Array.isArray(tags) &&
      tags.includes('reduce') &&
      !tags.includes('skip-batch')
    ) {
      count++;
    }
  }
  return count;
}

/** The image of the session JupyterLab runs in, if the server says (newer servers). */
function serverDefaultImage(sidebar: CanfarSidebar): string | null {
  const result = sidebar.handshake;
  const config = result?.kind === 'ok' ? result.config : null;
  const images = sidebar.catalog.images as { default?: unknown } | null;
  for (const candidate of [
    images?.default,
    config?.default_image,
    config?.backend?.default_image
  ]) {
    if (typeof candidate === 'string' && candidate) {
      return candidate;
    }
  }
  return null;
}

/** The logins a run may use, and the active one (issue 16's `GET config`). */
function serverSites(sidebar: CanfarSidebar): {
  sites: string[];
  site: string | null;
} {
  const result = sidebar.handshake;
  const config = result?.kind === 'ok' ? result.config : null;
  const sites = Array.isArray(config?.sites)
    ? (config!.sites as unknown[]).filter(
        (s): s is string => typeof s === 'string'
      )
    : [];
  const credential = config?.credential as { site?: unknown } | undefined;
  return {
    sites,
    site: typeof credential?.site === 'string' ? credential.site : null
  };
}

/** The Run as batch form for the notebook in focus. */
class FormWidget extends ReactWidget {
  constructor(private readonly _sidebar: CanfarSidebar) {
    super();
    this.addClass('jp-canfar-section');
    this.addClass('jp-canfar-form-section');
    this.title.label = _sidebar.trans.__('Run as batch');
  }

  /** The notebook the form launches. */
  get notebook(): NotebookPanel | null {
    return this._panel;
  }

  set notebook(panel: NotebookPanel | null) {
    if (panel === this._panel) {
      return;
    }
    this._disconnect();
    this._panel = panel;
    if (panel) {
      trackSaves(panel); // a launch then saves only changes a replica would run
      panel.context.model.stateChanged.connect(this._onNotebook, this);
      panel.context.model.contentChanged.connect(this._onNotebook, this);
      panel.context.fileChanged.connect(this._onSaved, this);
      panel.context.pathChanged.connect(this._onNotebook, this);
      panel.disposed.connect(this._onGone, this);
    }
    this.update();
  }

  /** Put the keyboard in the form's first field. */
  focusFirstField(): void {
    requestAnimationFrame(() => {
      (
        this.node.querySelector('#jp-canfar-form-name') as HTMLElement | null
      )?.focus();
    });
  }

  render(): JSX.Element {
    const sidebar = this._sidebar;
    const { trans } = sidebar;
    const panel = this._panel;
    return (
      <UseSignal signal={sidebar.stateChanged}>
        {() => {
          if (!panel) {
            return (
              <p className="jp-canfar-empty">
                {trans.__('Open a notebook to run it as a batch of replicas.')}
              </p>
            );
          }
          if (sidebar.handshake?.kind !== 'ok') {
            return (
              <p className="jp-canfar-empty">
                {trans.__('Available once the server extension answers.')}
              </p>
            );
          }
          const target: INotebookTarget = {
            path: panel.context.path,
            dirty: panel.context.model.dirty,
            revision: this._revision
          };
          return (
            <UseSignal signal={sidebar.model.changed}>
              {() => (
                <RunForm
                  key={target.path}
                  notebook={target}
                  settings={sidebar.settings}
                  catalog={sidebar.catalog}
                  takenNames={sidebar.takenNames()}
                  preview={request => sidebar.api.preview(request)}
                  launch={request => sidebar.actions.launch(panel, request)}
                  revealCell={problem =>
                    sidebar.actions.revealCell(panel, problem)
                  }
                  parameters={notebookParameters(panel)}
                  reduceCells={notebookReduceCells(panel)}
                  defaultImage={serverDefaultImage(sidebar)}
                  sites={serverSites(sidebar).sites}
                  site={serverSites(sidebar).site}
                  trans={trans}
                />
              )}
            </UseSignal>
          );
        }}
      </UseSignal>
    );
  }

  dispose(): void {
    this._disconnect();
    super.dispose();
  }

  private _onNotebook(): void {
    this.update();
  }

  private _onSaved(): void {
    this._revision++;
    this.update();
  }

  private _onGone(): void {
    this.notebook = null;
  }

  private _disconnect(): void {
    const panel = this._panel;
    if (panel && !panel.isDisposed) {
      panel.context.model.stateChanged.disconnect(this._onNotebook, this);
      panel.context.model.contentChanged.disconnect(this._onNotebook, this);
      panel.context.fileChanged.disconnect(this._onSaved, this);
      panel.context.pathChanged.disconnect(this._onNotebook, this);
      panel.disposed.disconnect(this._onGone, this);
    }
  }

  private _panel: NotebookPanel | null = null;
  private _revision = 0;
}

class ListWidget extends ReactWidget {
  constructor(
    private readonly _sidebar: CanfarSidebar,
    private readonly _which: 'runs' | 'sessions',
    label: string
  ) {
    super();
    this.addClass('jp-canfar-section');
    this.addClass(`jp-canfar-${_which}-section`);
    this.title.label = label;
    if (_which === 'sessions') {
      _sidebar.model.changed.connect(this._fitEmpty, this);
    }
  }

  /**
   * An empty list of other sessions takes one line (CSS max-height on jp-mod-empty): the
   * accordion gives a folded section's room to the last open one, which left "No other
   * sessions." filling half the panel while the runs above were cut off.
   */
  private _fitEmpty(): void {
    const empty = this._sidebar.model.standaloneSessions().length === 0;
    if (empty !== this.hasClass('jp-mod-empty')) {
      this.toggleClass('jp-mod-empty', empty);
      this.parent?.fit(); // the accordion reads the new size limits
    }
  }

  render(): JSX.Element {
    const { model, actions, trans } = this._sidebar;
    const List = this._which === 'runs' ? RunList : SessionList;
    return (
      <UseSignal signal={model.changed}>
        {() => <List model={model} actions={actions} trans={trans} />}
      </UseSignal>
    );
  }
}

export interface ISidebarOptions {
  api: CanfarAPI;
  model: CanfarModel;
  stats: PlatformStatsModel;
  actions: IListActions & ISidebarActions;
  trans: TranslationBundle;
}

/** The left-sidebar panel titled "CANFAR". */
export class CanfarSidebar extends SidePanel {
  constructor(options: ISidebarOptions) {
    super({ translator: undefined });
    this.api = options.api;
    this.model = options.model;
    this.stats = options.stats;
    this.actions = options.actions;
    this.trans = options.trans;
    this.id = 'canfar-jlab-sidebar';
    this.addClass('jp-canfar-sidebar');
    this.title.icon = canfarIcon;
    this.title.caption = this.trans.__('CANFAR batch runs');

    this.header.addWidget(new HeaderWidget(this));
    this.form = new FormWidget(this);
    this.addWidget(this.form);
    this.addWidget(new ListWidget(this, 'runs', this.trans.__('Runs')));
    this.addWidget(
      new ListWidget(this, 'sessions', this.trans.__('Other sessions'))
    );
    // The form needs the most room, the sessions outside runs the least (often none: at
    // 1440x900 a fifth of the height for them left a run's replicas cut off below).
    (this.content as AccordionPanel).setRelativeSizes([5, 4, 1]);
  }

  readonly api: CanfarAPI;
  readonly model: CanfarModel;
  readonly stats: PlatformStatsModel;
  readonly actions: IListActions & ISidebarActions;
  readonly trans: TranslationBundle;
  readonly form: FormWidget;

  /**
   * Bring the form into view: its section expanded and scrolled to the top (the launch
   * button is pinned to the bottom of the section), the keyboard in its first field.
   */
  showForm(): void {
    const accordion = this.content as AccordionPanel;
    const index = accordion.widgets.indexOf(this.form);
    const title = accordion.titles[index];
    if (title && title.getAttribute('aria-expanded') !== 'true') {
      accordion.expand(index);
    }
    this.form.node.scrollTo?.(0, 0);
    this.form.focusFirstField();
  }

  /** Handshake, settings or catalog changed. */
  get stateChanged(): ISignal<this, void> {
    return this._stateChanged;
  }

  /** The latest handshake answer, or null while it is pending. */
  get handshake(): HandshakeResult | null {
    return this._handshake;
  }

  get settings(): ICanfarSettings {
    return this._settings;
  }

  set settings(value: ICanfarSettings) {
    this._settings = value;
    this._stateChanged.emit();
  }

  get catalog(): ICatalog {
    return this._catalog;
  }

  /** Names a new run cannot take: runs, and sessions (replica names included). */
  takenNames(): Set<string> {
    const names = new Set(this.model.runs.map(r => r.name));
    for (const session of this.model.sessions) {
      if (session.name) {
        names.add(session.name);
      }
    }
    return names;
  }

  /** Ask the server again (after an upgrade or a restart); returns the answer. */
  async refresh(): Promise<HandshakeResult> {
    this._handshake = await handshake(this.api.serverSettings);
    this._stateChanged.emit();
    if (this._handshake.kind === 'ok') {
      void this._loadCatalog();
    }
    return this._handshake;
  }

  private async _loadCatalog(): Promise<void> {
    try {
      const [images, context] = await Promise.all([
        this.api.images(),
        this.api.context()
      ]);
      this._catalog = { images, context, error: null };
    } catch (error) {
      this._catalog = { ...this._catalog, error: (error as Error).message };
    }
    this._stateChanged.emit();
  }

  private _handshake: HandshakeResult | null = null;
  private _settings: ICanfarSettings = DEFAULT_SETTINGS;
  private _catalog: ICatalog = { images: null, context: null, error: null };
  private _stateChanged = new Signal<this, void>(this);
}
