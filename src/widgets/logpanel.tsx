// The log tail panel in the main area: tabs per replica plus "All", follow/pause, search,
// download. The lines themselves are drawn by LogView.
import { MainAreaWidget } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import {
  downloadIcon,
  ReactWidget,
  Toolbar,
  ToolbarButton,
  UseSignal
} from '@jupyterlab/ui-components';
import { Signal } from '@lumino/signaling';
import { Message } from '@lumino/messaging';
import { PanelLayout, Widget } from '@lumino/widgets';
import * as React from 'react';

import { StatusBadge } from '../components/StatusBadge';
import { formatCount } from '../format';
import { canfarIcon } from '../icons';
import { LogTabs, LogTarget } from '../logtabs';
import { LogView } from './logview';

/** The tab strip: a WAI-ARIA tablist, arrow keys move between tabs. */
function TabStrip(props: {
  tabs: LogTabs;
  trans: TranslationBundle;
}): JSX.Element {
  const { tabs, trans } = props;
  const list = tabs.tabs;
  const onKey = (event: React.KeyboardEvent, index: number) => {
    const step =
      event.key === 'ArrowRight' ? 1 : event.key === 'ArrowLeft' ? -1 : 0;
    if (step === 0) {
      return;
    }
    event.preventDefault();
    const next = list[(index + step + list.length) % list.length];
    tabs.selected = next.key;
    const strip = (event.currentTarget as HTMLElement).parentElement;
    (
      strip?.querySelector(`[data-tab="${next.key}"]`) as HTMLElement | null
    )?.focus();
  };
  return (
    <div
      className="jp-canfar-logtabs"
      role="tablist"
      aria-label={trans.__('Replicas')}
    >
      {list.map((tab, index) => {
        const selected = tab.key === tabs.selected;
        return (
          <button
            key={tab.key}
            type="button"
            role="tab"
            data-tab={tab.key}
            aria-selected={selected}
            tabIndex={selected ? 0 : -1}
            className="jp-canfar-logtab"
            title={
              tab.replica === 0
                ? trans.__('The reduce step')
                : tab.replica !== null
                  ? trans.__('Replica %1', tab.replica)
                  : tab.key === 'all'
                    ? trans.__('All replicas, merged in arrival order')
                    : tab.label
            }
            onClick={() => (tabs.selected = tab.key)}
            onKeyDown={event => onKey(event, index)}
          >
            {tab.replica ? `#${tab.label}` : tab.label}
            {tab.status && <StatusBadge status={tab.status} trans={trans} />}
          </button>
        );
      })}
    </div>
  );
}

/** Search box for the toolbar: filters the shown lines and marks the matches. */
function SearchBox(props: {
  tabs: LogTabs;
  trans: TranslationBundle;
}): JSX.Element {
  const { tabs, trans } = props;
  const [value, setValue] = React.useState(tabs.query);
  React.useEffect(() => {
    const timer = setTimeout(() => (tabs.query = value), 150);
    return () => clearTimeout(timer);
  }, [value]);
  return (
    <input
      type="search"
      className="jp-mod-styled jp-canfar-logsearch"
      placeholder={trans.__('Filter lines')}
      aria-label={trans.__('Show only lines containing')}
      value={value}
      onChange={e => setValue(e.target.value)}
      onKeyDown={e => {
        if (e.key === 'Escape') {
          setValue('');
        }
      }}
    />
  );
}

/** The body of the panel: tabs on top, lines below. */
export class LogPanel extends Widget {
  constructor(
    readonly tabs: LogTabs,
    trans: TranslationBundle
  ) {
    super();
    this.addClass('jp-canfar-logpanel');
    this._trans = trans;
    this.view = new LogView({ label: trans.__('Log') });
    const strip = ReactWidget.create(
      <UseSignal signal={tabs.changed}>
        {() => <TabStrip tabs={tabs} trans={trans} />}
      </UseSignal>
    );
    strip.addClass('jp-canfar-logtabs-host');
    // Said where the lines would be while a tab has none (a Pending replica: why).
    this._waiting = document.createElement('div');
    this._waiting.className = 'jp-canfar-logwaiting';
    this._waiting.setAttribute('role', 'status');
    // A CSS column (see style/base.css): the strip takes its height, the view the rest.
    const layout = new PanelLayout();
    layout.addWidget(strip);
    layout.addWidget(this.view);
    this.layout = layout;
    this.node.appendChild(this._waiting);
    tabs.changed.connect(this._onTabs, this);
    this.view.rendered.connect(this._showWaiting, this);
    this._onTabs();
  }

  readonly view: LogView;

  /** Save the selected tab as a text file. */
  download(): void {
    const blob = new Blob([this.tabs.text()], {
      type: 'text/plain;charset=utf-8'
    });
    const url = URL.createObjectURL(blob);
    const link = document.createElement('a');
    link.href = url;
    link.download = this.tabs.fileName();
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.tabs.dispose();
    super.dispose();
  }

  protected onAfterShow(msg: Message): void {
    this.tabs.shown = true;
  }

  protected onAfterHide(msg: Message): void {
    this.tabs.shown = false;
  }

  private _showWaiting(): void {
    const tab = this.tabs.selectedTab;
    let text = '';
    if (tab && this.tabs.visible.length === 0) {
      text =
        tab.waiting ??
        (tab.key === 'all'
          ? this.tabs.tabs
              .map(t => t.waiting)
              .filter(Boolean)
              .slice(0, 1)
              .join('')
          : '');
    }
    if (this._waiting.textContent !== text) {
      this._waiting.textContent = text;
    }
    this._waiting.hidden = text === '';
  }

  private _onTabs(): void {
    this._showWaiting();
    this.view.source = this.tabs.visible;
    this.view.highlight = this.tabs.query;
    this.view.node.setAttribute(
      'aria-label',
      this._trans.__('Log of %1', this.tabs.selectedTab?.label ?? '')
    );
  }

  private _trans: TranslationBundle;
  private _waiting: HTMLDivElement;
}

/**
 * Follow as a toggle (pressed while the view sticks to new lines) and, while paused, a pill
 * counting the lines that came since: clicking either resumes following.
 */
function FollowToggle(props: {
  view: LogView;
  trans: TranslationBundle;
}): JSX.Element {
  const { view, trans } = props;
  const following = view.follow;
  const fresh = view.newLines;
  return (
    <span className="jp-canfar-follow-group">
      <button
        type="button"
        className="jp-canfar-follow jp-canfar-toggle"
        aria-pressed={following}
        data-following={String(following)}
        title={
          following
            ? trans.__('Following new lines: click (or scroll up) to pause')
            : trans.__('Follow: scroll to new lines as they come (End)')
        }
        onClick={() => (view.follow = !view.follow)}
      >
        <span className="jp-canfar-toggle-dot" aria-hidden="true" />
        {trans.__('Follow')}
      </button>
      {!following && fresh > 0 && (
        <button
          type="button"
          className="jp-canfar-newlines"
          onClick={() => (view.follow = true)}
          title={trans.__('Jump to the newest line and follow')}
        >
          {trans._n('%2 new line', '%2 new lines', fresh, formatCount(fresh))}
        </button>
      )}
    </span>
  );
}

export interface ILogWidgetOptions {
  /** A traceback's "Cell In[N]" was clicked (runs only). */
  openCell?: (cell: number) => void;
  /** Start with arrival times shown. */
  timestamps?: boolean;
}

/** A log panel for a run or a session, in a MainAreaWidget with its toolbar. */
export function createLogWidget(
  tabs: LogTabs,
  trans: TranslationBundle,
  options: ILogWidgetOptions = {}
): MainAreaWidget<LogPanel> {
  const content = new LogPanel(tabs, trans);
  const widget = new MainAreaWidget({ content });
  const target: LogTarget = tabs.target;
  const name = 'run' in target ? target.run : target.session;
  widget.id = logWidgetId(target);
  widget.title.label = trans.__('Logs: %1', name);
  widget.title.caption =
    'run' in target
      ? trans.__('Logs of run %1', name)
      : trans.__('Log of session %1', name);
  widget.title.icon = canfarIcon;
  widget.title.closable = true;
  widget.addClass('jp-canfar-logwidget');

  const view = content.view;
  view.timestamps = options.timestamps ?? false;
  if (options.openCell) {
    const open = options.openCell;
    view.cellLinkClicked.connect((_, cell) => open(cell));
  }
  // Redrawn when following changes and after each redraw (new lines while paused).
  const followState = new Signal<LogView, void>(view);
  view.followChanged.connect(() => followState.emit());
  view.rendered.connect(() => followState.emit());
  const follow = ReactWidget.create(
    <UseSignal signal={followState}>
      {() => <FollowToggle view={view} trans={trans} />}
    </UseSignal>
  );
  follow.addClass('jp-canfar-follow-host');

  const search = ReactWidget.create(<SearchBox tabs={tabs} trans={trans} />);
  search.addClass('jp-canfar-logsearch-host');

  const download = new ToolbarButton({
    icon: downloadIcon,
    label: trans.__('Download'),
    tooltip: trans.__(
      'Save the shown tab as a text file (only the matching lines while filtering)'
    ),
    onClick: () => content.download(),
    className: 'jp-canfar-download'
  });

  const times = new ToolbarButton({
    label: trans.__('Times'),
    tooltip: trans.__('Show when each line arrived'),
    pressedTooltip: trans.__('Hide the arrival times'),
    onClick: () => {
      view.timestamps = !view.timestamps;
      times.pressed = view.timestamps;
    },
    className: 'jp-canfar-times'
  });
  times.pressed = view.timestamps;

  const count = ReactWidget.create(
    <UseSignal signal={view.rendered}>
      {() => (
        <span className="jp-canfar-logcount" aria-live="off">
          {tabs.query
            ? trans.__(
                '%1 of %2 lines',
                formatCount(tabs.visible.length),
                formatCount(tabs.total)
              )
            : trans._n(
                '%2 line',
                '%2 lines',
                tabs.total,
                formatCount(tabs.total)
              )}
        </span>
      )}
    </UseSignal>
  );

  widget.toolbar.addItem('follow', follow);
  widget.toolbar.addItem('search', search);
  widget.toolbar.addItem('download', download);
  widget.toolbar.addItem('times', times);
  widget.toolbar.addItem('spacer', Toolbar.createSpacerItem());
  widget.toolbar.addItem('count', count);
  return widget;
}

/** One panel per run or session: opening it again brings the same panel forward. */
export function logWidgetId(target: LogTarget): string {
  return 'run' in target
    ? `canfar-logs-run-${target.run}`
    : `canfar-logs-session-${target.session}`;
}
