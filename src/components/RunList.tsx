import { TranslationBundle } from '@jupyterlab/translation';
import {
  caretDownIcon,
  caretRightIcon,
  deleteIcon,
  folderIcon,
  listIcon,
  refreshIcon
} from '@jupyterlab/ui-components';
import * as React from 'react';

import { IRun, ISession } from '../api';
import { CanfarModel } from '../model';
import {
  countStatuses,
  formatCounts,
  isFailure,
  isTerminal,
  replicaStatus,
  runState,
  runStatuses
} from '../status';
import { IconButton } from './IconButton';
import { StatusBadge } from './StatusBadge';
import { Usage } from './Usage';

/** What the list's buttons do; the sidebar wires these to REST calls and widgets. */
export interface IListActions {
  openRunLogs(run: IRun, replica?: number): void;
  openSessionLogs(session: ISession): void;
  deleteRun(run: IRun): void;
  deleteSession(session: ISession): void;
  rerunFailed(run: IRun): void;
  openFolder(run: IRun): void;
}

interface IRunGroupProps {
  run: IRun;
  model: CanfarModel;
  actions: IListActions;
  trans: TranslationBundle;
}

/** One run: its name, aggregated replica states, actions, and its replicas on demand. */
export function RunGroup(props: IRunGroupProps): JSX.Element {
  const { run, model, actions, trans } = props;
  const [expanded, setExpanded] = React.useState(false);
  const statuses = runStatuses(run, model.sessionsById);
  const state = runState(statuses);
  const counts = formatCounts(countStatuses(statuses), trans);
  const anyFailed = statuses.some(isFailure);
  const listId = `jp-canfar-replicas-${run.name}`;
  let rerunReason: string | undefined;
  if (state === 'active') {
    rerunReason = trans.__(
      'Wait for the run to end to re-run its failed replicas'
    );
  } else if (!anyFailed) {
    rerunReason = trans.__('No replica failed');
  }
  return (
    <li className="jp-canfar-run" data-run={run.name} data-state={state}>
      <div className="jp-canfar-run-header">
        <button
          type="button"
          className="jp-canfar-run-toggle"
          aria-expanded={expanded}
          aria-controls={listId}
          onClick={() => setExpanded(!expanded)}
          title={trans.__('Notebook: %1', run.notebook)}
        >
          {expanded ? (
            <caretDownIcon.react tag="span" className="jp-canfar-caret" />
          ) : (
            <caretRightIcon.react tag="span" className="jp-canfar-caret" />
          )}
          <span className="jp-canfar-run-name">{run.name}</span>
        </button>
        <span className="jp-canfar-actions">
          <IconButton
            icon={listIcon}
            label={trans.__('Open the logs of run %1', run.name)}
            onClick={() => actions.openRunLogs(run)}
          />
          <IconButton
            icon={folderIcon}
            label={trans.__('Open the run folder in the file browser')}
            disabled={run.folder_relative === null}
            disabledReason={trans.__(
              'The run folder %1 is outside the Jupyter root folder',
              run.folder
            )}
            onClick={() => actions.openFolder(run)}
          />
          <IconButton
            icon={refreshIcon}
            label={trans.__('Re-run the failed replicas of %1', run.name)}
            disabled={rerunReason !== undefined}
            disabledReason={rerunReason}
            onClick={() => actions.rerunFailed(run)}
          />
          <IconButton
            icon={deleteIcon}
            label={trans.__('Delete run %1', run.name)}
            onClick={() => actions.deleteRun(run)}
          />
        </span>
      </div>
      <div className="jp-canfar-run-summary" data-state={state}>
        {counts}
      </div>
      {expanded && (
        <ul className="jp-canfar-replicas" id={listId}>
          {run.replicas.map(replica => {
            const status = replicaStatus(replica, model.sessionsById);
            return (
              <li
                key={replica.index}
                className="jp-canfar-replica"
                data-replica={replica.index}
                data-status={status}
              >
                <div className="jp-canfar-replica-row">
                  <span className="jp-canfar-replica-index">
                    #{replica.index}
                  </span>
                  <StatusBadge status={status} trans={trans} />
                  <span
                    className="jp-canfar-replica-note"
                    title={replica.error ?? replica.name}
                  >
                    {replica.error ?? ''}
                  </span>
                  <IconButton
                    icon={listIcon}
                    label={trans.__(
                      'Open the log of replica %1',
                      replica.index
                    )}
                    onClick={() => actions.openRunLogs(run, replica.index)}
                  />
                </div>
                {!isTerminal(status) && (
                  <Usage
                    series={
                      replica.session_id
                        ? model.usage.get(replica.session_id)
                        : undefined
                    }
                    trans={trans}
                  />
                )}
              </li>
            );
          })}
        </ul>
      )}
    </li>
  );
}

const PAGE = 200;

/** All runs, newest first. */
export function RunList(props: {
  model: CanfarModel;
  actions: IListActions;
  trans: TranslationBundle;
}): JSX.Element {
  const { model, actions, trans } = props;
  if (!model.loaded) {
    return (
      <p className="jp-canfar-empty">
        {trans.__('Waiting for the session service…')}
      </p>
    );
  }
  if (model.runs.length === 0) {
    return (
      <p className="jp-canfar-empty">
        {trans.__('No runs yet. Open a notebook and press Run as batch.')}
      </p>
    );
  }
  return (
    <ul className="jp-canfar-runs" aria-label={trans.__('Runs')}>
      {model.runs.map(run => (
        <RunGroup
          key={run.name}
          run={run}
          model={model}
          actions={actions}
          trans={trans}
        />
      ))}
    </ul>
  );
}

/** Sessions that belong to no run (started from the magic, the CLI or elsewhere). */
export function SessionList(props: {
  model: CanfarModel;
  actions: IListActions;
  trans: TranslationBundle;
}): JSX.Element {
  const { model, actions, trans } = props;
  const [shown, setShown] = React.useState(PAGE);
  const sessions = model.standaloneSessions();
  if (!model.loaded) {
    return (
      <p className="jp-canfar-empty">
        {trans.__('Waiting for the session service…')}
      </p>
    );
  }
  if (sessions.length === 0) {
    return <p className="jp-canfar-empty">{trans.__('No other sessions.')}</p>;
  }
  return (
    <>
      <ul
        className="jp-canfar-sessions"
        aria-label={trans.__('Other sessions')}
      >
        {sessions.slice(0, shown).map(session => (
          <li
            key={session.id}
            className="jp-canfar-session"
            data-session={session.id}
            data-status={session.status}
          >
            <div className="jp-canfar-session-header">
              <span className="jp-canfar-session-name" title={session.id}>
                {session.name || session.id}
              </span>
              <span className="jp-canfar-actions">
                <IconButton
                  icon={listIcon}
                  label={trans.__(
                    'Open the log of session %1',
                    session.name || session.id
                  )}
                  onClick={() => actions.openSessionLogs(session)}
                />
                <IconButton
                  icon={deleteIcon}
                  label={trans.__(
                    'Delete session %1',
                    session.name || session.id
                  )}
                  onClick={() => actions.deleteSession(session)}
                />
              </span>
            </div>
            <div className="jp-canfar-session-detail">
              <StatusBadge status={session.status} trans={trans} />
              {session.type && (
                <span className="jp-canfar-muted">{session.type}</span>
              )}
              {!isTerminal(session.status) && (
                <Usage series={model.usage.get(session.id)} trans={trans} />
              )}
            </div>
          </li>
        ))}
      </ul>
      {sessions.length > shown && (
        <button
          type="button"
          className="jp-Button jp-mod-minimal jp-canfar-more"
          onClick={() => setShown(shown + PAGE)}
        >
          {trans.__(
            'Show %1 more of %2',
            Math.min(PAGE, sessions.length - shown),
            sessions.length - shown
          )}
        </button>
      )}
    </>
  );
}
