import { TranslationBundle } from '@jupyterlab/translation';
import {
  caretDownIcon,
  caretRightIcon,
  deleteIcon,
  folderIcon,
  historyIcon,
  listIcon,
  notebookIcon,
  refreshIcon,
  runIcon,
  stopIcon
} from '@jupyterlab/ui-components';
import * as React from 'react';

import { IReplica, IRun, ISession, Status } from '../api';
import {
  formatDuration,
  formatStart,
  replicaSeconds,
  runTiming
} from '../format';
import { CanfarModel } from '../model';
import { runPeaks, sizeHint } from '../sizing';
import {
  anyOutOfMemory,
  countStatuses,
  effectiveRunState,
  formatCounts,
  isFailure,
  isTerminal,
  replicaFailure,
  replicaStatus,
  runStatuses,
  statusLabel
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
  /** End the run's replicas, keeping its record and logs. */
  stopRun?(run: IRun): void;
  /** Push back the deadline of the run's live replicas (Skaha ends them after 14 days). */
  renewRun?(run: IRun): void;
  /** Open a replica's executed notebook (the first one when `replica` is not given). */
  openExecuted?(run: IRun, replica?: number): void;
  /** Show a replica's folder (its new files) in the file browser. */
  openReplicaFiles?(run: IRun, replica: number): void;
  /** Re-run the replicas that ran out of memory with twice their peak (issue 17). */
  rerunMoreMemory?(run: IRun): void;
}

/** "attempt 3" with what the earlier ones came to, or null for a first attempt. */
function attemptsText(
  replica: IReplica,
  trans: TranslationBundle
): { text: string; title: string } | null {
  const earlier = replica.attempts ?? [];
  const count = replica.attempt_count ?? earlier.length + 1;
  if (count <= 1) {
    return null;
  }
  const why = (reason?: string | null) =>
    reason === 'retry'
      ? trans.__('retried')
      : reason === 'more-memory'
        ? trans.__('re-run with more memory')
        : trans.__('re-run');
  const lines = earlier.map((a, i) =>
    trans.__(
      'Attempt %1: %2%3, then %4',
      i + 1,
      statusLabel(a.status, trans),
      a.oom ? trans.__(' (out of memory)') : '',
      why(a.why)
    )
  );
  return {
    text: trans._n('%1 attempt', '%1 attempts', count),
    title: lines.join('\n')
  };
}

/** Seconds since epoch, ticking once a second while `live`. */
function useNow(live: boolean): number {
  const [now, setNow] = React.useState(() => Date.now());
  React.useEffect(() => {
    if (!live) {
      return;
    }
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, [live]);
  return live ? now : Date.now();
}

interface IRunGroupProps {
  run: IRun;
  model: CanfarModel;
  actions: IListActions;
  trans: TranslationBundle;
}

/** One replica's line: status, progress or reason, duration, failure, files, usage. */
function ReplicaRow(props: {
  run: IRun;
  replica: IReplica;
  status: Status;
  now: number;
  model: CanfarModel;
  actions: IListActions;
  trans: TranslationBundle;
}): JSX.Element {
  const { run, replica, status, now, model, actions, trans } = props;
  const seconds = replicaSeconds(replica, now);
  const failure = isFailure(status) ? replicaFailure(replica) : null;
  const cell = replica.cell;
  const running = status === 'Running';
  const files = replica.files ?? [];
  const attempts = attemptsText(replica, trans);
  const reduce = replica.index === 0;
  const label = reduce
    ? trans.__('the reduce step')
    : trans.__('replica %1', replica.index);
  return (
    <li
      className={
        reduce ? 'jp-canfar-replica jp-canfar-reduce' : 'jp-canfar-replica'
      }
      data-replica={replica.index}
      data-status={status}
      data-oom={replica.oom ? 'true' : undefined}
    >
      <div className="jp-canfar-replica-row">
        <span className="jp-canfar-replica-index">
          {reduce ? trans.__('reduce') : `#${replica.index}`}
        </span>
        <StatusBadge status={status} trans={trans} />
        {running && cell && (
          <span
            className="jp-canfar-progress"
            title={cell.first_line ?? undefined}
          >
            {trans.__('cell %1 of %2', cell.index, cell.total)}
            <progress
              className="jp-canfar-progress-bar"
              max={cell.total}
              value={cell.index}
            />
          </span>
        )}
        {seconds !== null && (
          <span
            className="jp-canfar-duration"
            title={
              replica.started
                ? trans.__('Started %1', formatStart(replica.started))
                : undefined
            }
          >
            {formatDuration(seconds)}
          </span>
        )}
        {replica.oom && isFailure(status) && (
          <span className="jp-canfar-oom">{trans.__('out of memory')}</span>
        )}
        {attempts && (
          <span
            className="jp-canfar-attempts jp-canfar-muted"
            title={attempts.title}
          >
            {attempts.text}
          </span>
        )}
        <span className="jp-canfar-actions">
          {replica.executed_notebook &&
            actions.openExecuted &&
            run.folder_relative !== null && (
              <IconButton
                icon={notebookIcon}
                label={trans.__('Open the executed notebook of %1', label)}
                onClick={() => actions.openExecuted!(run, replica.index)}
              />
            )}
          {files.length > 0 &&
            actions.openReplicaFiles &&
            run.folder_relative !== null && (
              <IconButton
                icon={folderIcon}
                label={trans._n(
                  'Open the %1 new file of %2',
                  'Open the %1 new files of %2',
                  files.length,
                  label
                )}
                onClick={() => actions.openReplicaFiles!(run, replica.index)}
              />
            )}
          <IconButton
            icon={listIcon}
            label={trans.__('Open the log of %1', label)}
            onClick={() => actions.openRunLogs(run, replica.index)}
          />
        </span>
      </div>
      {status === 'Pending' && (
        <div className="jp-canfar-replica-reason">
          {replica.reason ??
            trans.__('Waiting for the session service to start it')}
        </div>
      )}
      {status === 'Waiting' && (
        <div className="jp-canfar-replica-reason">
          {replica.reason ?? trans.__('waiting in run')}
        </div>
      )}
      {failure && <div className="jp-canfar-replica-error">{failure}</div>}
      <Usage
        series={
          replica.session_id ? model.usage.get(replica.session_id) : undefined
        }
        peakRssBytes={replica.peak_rss_bytes}
        trans={trans}
      />
    </li>
  );
}

/** One run: name, state, duration, actions, the first failure, and its replicas on demand. */
export function RunGroup(props: IRunGroupProps): JSX.Element {
  const { run, model, actions, trans } = props;
  const [expanded, setExpanded] = React.useState(false);
  const statuses = runStatuses(run, model.sessionsById);
  const state = effectiveRunState(run, model.sessionsById);
  const active = state === 'active';
  const now = useNow(active);
  const reduceStatus = run.reduce
    ? replicaStatus(run.reduce, model.sessionsById)
    : null;
  const counts = [
    formatCounts(countStatuses(statuses), trans),
    ...(reduceStatus
      ? [trans.__('reduce %1', statusLabel(reduceStatus, trans))]
      : [])
  ].join(' · ');
  const outOfMemory = anyOutOfMemory(run);
  const anyFailed = statuses.some(isFailure);
  const listId = `jp-canfar-replicas-${run.name}`;
  const timing = runTiming(run, now);
  let rerunReason: string | undefined;
  if (active) {
    rerunReason = trans.__(
      'Wait for the run to end to re-run its failed replicas'
    );
  } else if (!anyFailed && !(reduceStatus && isFailure(reduceStatus))) {
    rerunReason = trans.__('No replica failed');
  }
  const failedIndex = statuses.findIndex(isFailure);
  const failedStep =
    failedIndex >= 0
      ? run.replicas[failedIndex]
      : reduceStatus && isFailure(reduceStatus)
        ? run.reduce!
        : null;
  const failure = failedStep ? replicaFailure(failedStep) : null;
  const hint = sizeHint(run, runPeaks(run, model.usage), trans);
  const executed = run.replicas.some(r => r.executed_notebook);
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
          {executed && actions.openExecuted && (
            <IconButton
              icon={notebookIcon}
              label={trans.__('Open the executed notebook of run %1', run.name)}
              disabled={run.folder_relative === null}
              onClick={() => actions.openExecuted!(run)}
            />
          )}
          <IconButton
            icon={refreshIcon}
            label={trans.__('Re-run the failed replicas of %1', run.name)}
            disabled={rerunReason !== undefined}
            disabledReason={rerunReason}
            onClick={() => actions.rerunFailed(run)}
          />
          {actions.rerunMoreMemory && outOfMemory && (
            <IconButton
              icon={runIcon}
              label={trans.__('Re-run with more memory')}
              disabled={active}
              disabledReason={trans.__(
                'Wait for the run to end to re-run its replicas that ran out of memory'
              )}
              onClick={() => actions.rerunMoreMemory!(run)}
            />
          )}
          {actions.renewRun && active && (
            <IconButton
              icon={historyIcon}
              label={trans.__(
                'Renew run %1 (push back its deadline)',
                run.name
              )}
              onClick={() => actions.renewRun!(run)}
            />
          )}
          {actions.stopRun && (
            <IconButton
              icon={stopIcon}
              label={trans.__('Stop run %1', run.name)}
              disabled={!active}
              disabledReason={trans.__('The run has ended')}
              onClick={() => actions.stopRun!(run)}
            />
          )}
          <IconButton
            icon={deleteIcon}
            label={trans.__('Delete run %1', run.name)}
            onClick={() => actions.deleteRun(run)}
          />
        </span>
      </div>
      <div className="jp-canfar-run-meta">
        <span className="jp-canfar-run-summary" data-state={state}>
          {counts}
        </span>
        {timing.seconds !== null && (
          <span
            className="jp-canfar-run-duration"
            title={trans.__(
              active ? 'Running for %1' : 'Took %1',
              formatDuration(timing.seconds)
            )}
          >
            {formatDuration(timing.seconds)}
          </span>
        )}
        {timing.started !== null && (
          <span
            className="jp-canfar-run-start jp-canfar-muted"
            title={new Date(timing.started).toISOString()}
          >
            {trans.__(
              'started %1',
              formatStart(new Date(timing.started).toISOString())
            )}
          </span>
        )}
        {(state === 'stopped' || state === 'deleted') && (
          <span className="jp-canfar-muted">
            {state === 'stopped' ? trans.__('stopped') : trans.__('deleted')}
          </span>
        )}
      </div>
      {failure && (
        <div className="jp-canfar-run-error" role="note">
          {failedStep!.index === 0
            ? trans.__('Reduce step: %1', failure)
            : trans.__('Replica %1: %2', failedStep!.index, failure)}
        </div>
      )}
      {hint && <div className="jp-canfar-hint">{hint}</div>}
      {expanded && (
        <ul className="jp-canfar-replicas" id={listId}>
          {run.replicas.map((replica, i) => (
            <ReplicaRow
              key={replica.index}
              run={run}
              replica={replica}
              status={statuses[i]}
              now={now}
              model={model}
              actions={actions}
              trans={trans}
            />
          ))}
          {run.reduce ? (
            <ReplicaRow
              key="reduce"
              run={run}
              replica={run.reduce}
              status={reduceStatus!}
              now={now}
              model={model}
              actions={actions}
              trans={trans}
            />
          ) : (
            run.spec.reduce && (
              <li
                className="jp-canfar-replica jp-canfar-reduce"
                data-replica={0}
                data-status="Waiting"
              >
                <div className="jp-canfar-replica-row">
                  <span className="jp-canfar-replica-index">
                    {trans.__('reduce')}
                  </span>
                  <span className="jp-canfar-muted">
                    {run.spec.reduce === 'cells'
                      ? trans.__(
                          'the cells tagged reduce run once every replica has completed'
                        )
                      : trans.__(
                          '%1 runs once every replica has completed',
                          run.spec.reduce
                        )}
                  </span>
                </div>
              </li>
            )
          )}
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
