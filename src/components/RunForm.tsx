import { TranslationBundle } from '@jupyterlab/translation';
import { addIcon, closeIcon } from '@jupyterlab/ui-components';
import * as React from 'react';

import {
  IContext,
  IExportProblem,
  IImages,
  ILaunchRequest,
  IPreview,
  IRun
} from '../api';
import {
  checkRunForm,
  ENV_NAME,
  FieldName,
  RESERVED_ENV,
  IRunFormValues,
  runNameFromPath,
  uniqueRunName
} from '../form';
import {
  INotebookParameter,
  ParameterInput,
  readParameterInput,
  sweepSize
} from '../parameters';
import { ICanfarSettings } from '../settings';
import { IconButton } from './IconButton';
import { ImagePicker } from './ImagePicker';

/** The notebook the form is for. `revision` grows each time it is saved. */
export interface INotebookTarget {
  path: string;
  dirty: boolean;
  revision: number;
}

/** What a launch came to: problems that stopped it, or the run that started. */
export interface ILaunchOutcome {
  problems?: IExportProblem[];
  run?: IRun;
}

export interface ICatalog {
  images: IImages | null;
  context: IContext | null;
  error: string | null;
}

export interface IRunFormProps {
  notebook: INotebookTarget;
  settings: ICanfarSettings;
  catalog: ICatalog;
  takenNames: ReadonlySet<string>;
  preview(request: ILaunchRequest): Promise<IPreview>;
  launch(request: ILaunchRequest): Promise<ILaunchOutcome>;
  revealCell?(problem: IExportProblem): void;
  trans: TranslationBundle;
  /** Milliseconds to wait after the last change before asking for a preview. */
  previewDelay?: number;
  /** The assignments of the notebook's `parameters` cell, if it has one. */
  parameters?: INotebookParameter[];
  /** The image of the session JupyterLab runs in, when the server knows it. */
  defaultImage?: string | null;
  /** The logins of ~/.canfar/config.yaml a run may use, and the one in use (issue 16). */
  sites?: string[];
  site?: string | null;
  /** Code cells of the notebook tagged `reduce` (run once after every replica succeeded). */
  reduceCells?: number;
}

type PreviewState =
  | { kind: 'idle' }
  | { kind: 'loading' }
  | { kind: 'ok'; preview: IPreview }
  | { kind: 'error'; message: string };

const resource = (n: number): string => (n > 0 ? String(n) : '');

function initialValues(props: IRunFormProps): IRunFormValues {
  const { settings } = props;
  const replicas = settings.defaultReplicas;
  return {
    name: uniqueRunName(
      runNameFromPath(props.notebook.path, replicas),
      props.takenNames
    ),
    image: settings.defaultImage || props.defaultImage || '',
    cores: resource(settings.defaultCores),
    ram: resource(settings.defaultRam),
    gpus: '',
    replicas: String(replicas),
    env: [],
    retries: '',
    timeout: '',
    maxRunning: '',
    pilot: false
  };
}

/** The Run as batch form for one notebook. */
export function RunForm(props: IRunFormProps): JSX.Element {
  const { trans, notebook, catalog, settings } = props;
  const [values, setValues] = React.useState<IRunFormValues>(() =>
    initialValues(props)
  );
  const touched = React.useRef(new Set<keyof IRunFormValues>());
  const [preview, setPreview] = React.useState<PreviewState>({ kind: 'idle' });
  const [launching, setLaunching] = React.useState(false);
  const [outcome, setOutcome] = React.useState<{
    ok: boolean;
    text: string;
  } | null>(null);
  const [params, setParams] = React.useState<Record<string, string>>({});
  const [site, setSite] = React.useState<string>('');
  const [secrets, setSecrets] = React.useState('');

  // Settings apply live to the fields the user has not changed.
  React.useEffect(() => {
    const fresh = initialValues(props);
    setValues(current => {
      const next = { ...current };
      for (const key of ['image', 'cores', 'ram', 'replicas'] as const) {
        if (!touched.current.has(key)) {
          next[key] = fresh[key];
        }
      }
      return next;
    });
  }, [settings]);

  const limits = {
    cores: catalog.context?.cores?.options ?? [],
    ram: catalog.context?.memoryGB?.options ?? [],
    gpus: catalog.context?.gpus?.options ?? [],
    takenNames: props.takenNames
  };
  // Parameters: empty keeps the notebook's value, a list of values makes a sweep.
  const declared = props.parameters ?? [];
  const paramInputs: Record<string, ParameterInput> = {};
  const parameters: Record<string, unknown> = {};
  let paramError = false;
  for (const p of declared) {
    const input = readParameterInput(params[p.name] ?? '', p.type);
    paramInputs[p.name] = input;
    if (input.kind === 'value') {
      parameters[p.name] = input.value;
    } else if (input.kind === 'sweep') {
      parameters[p.name] = input.values;
    } else if (input.kind === 'error') {
      paramError = true;
    }
  }
  const sweep = Object.values(parameters).some(Array.isArray);
  const sweepReplicas = sweep ? sweepSize(parameters) : null;
  const check = checkRunForm(
    sweepReplicas !== null
      ? { ...values, replicas: String(sweepReplicas) }
      : values,
    limits,
    trans
  );
  // Secret variables: names only (their values stay on the Jupyter server).
  const secretNames = secrets.split(/[\s,]+/).filter(Boolean);
  const badSecret = secretNames.find(
    n => !ENV_NAME.test(n) || RESERVED_ENV.includes(n)
  );
  const sites = props.sites ?? [];
  const request: ILaunchRequest | null =
    check.request && !paramError && !badSecret
      ? {
          notebook: notebook.path,
          ...check.request,
          ...(Object.keys(parameters).length > 0 ? { parameters } : {}),
          ...(sweep ? { sweep: true } : {}),
          ...(sites.length > 1 && site ? { site } : {}),
          ...(secretNames.length > 0 ? { secret_env: secretNames } : {})
        }
      : null;
  const requestKey = request ? JSON.stringify(request) : '';

  // Ask the server what this would launch, a moment after the last change. Not while a
  // launch is on its way: the save it makes would ask again, competing with the launch.
  React.useEffect(() => {
    if (!request) {
      setPreview({ kind: 'idle' });
      return;
    }
    if (launching) {
      return;
    }
    let current = true;
    setPreview({ kind: 'loading' });
    const timer = setTimeout(() => {
      props.preview(request).then(
        answer => current && setPreview({ kind: 'ok', preview: answer }),
        error =>
          current && setPreview({ kind: 'error', message: error.message })
      );
    }, props.previewDelay ?? 400);
    return () => {
      current = false;
      clearTimeout(timer);
    };
  }, [requestKey, notebook.revision, launching]);

  const set = (key: keyof IRunFormValues, value: any) => {
    touched.current.add(key);
    setOutcome(null);
    setValues(current => ({ ...current, [key]: value }));
  };

  const problems = preview.kind === 'ok' ? preview.preview.problems : [];
  // Problems block the launch until fixed and saved (saving checks the notebook again).
  const blocked = problems.length > 0 || preview.kind === 'error';
  const canLaunch = request !== null && !launching && !blocked;
  let blockedReason: string | null = null;
  if (problems.length > 0) {
    const first = problems[0];
    blockedReason = trans._n(
      'Cannot launch: cell %2 needs a person (%3). Fix it, or tag it skip-batch, and save.',
      'Cannot launch: %1 cells need a person (first: cell %2, %3). Fix them, or tag them skip-batch, and save.',
      problems.length,
      first.cell,
      first.message
    );
  } else if (preview.kind === 'error') {
    blockedReason = trans.__('Cannot launch: %1', preview.message);
  } else if (request === null) {
    blockedReason = trans.__('Correct the fields marked above to launch.');
  }

  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    if (!request || !canLaunch) {
      return;
    }
    setLaunching(true);
    setOutcome(null);
    try {
      const result = await props.launch(request);
      if (result.problems && result.problems.length > 0) {
        setPreview({
          kind: 'ok',
          preview: { problems: result.problems, replicas: [], argv: [] }
        });
      } else if (result.run) {
        const taken = new Set(props.takenNames);
        taken.add(result.run.name);
        result.run.replicas.forEach(r => taken.add(r.name));
        touched.current.delete('name');
        setValues(current => ({
          ...current,
          name: uniqueRunName(
            runNameFromPath(notebook.path, Number(current.replicas) || 1),
            taken
          )
        }));
        setOutcome({
          ok: true,
          text: trans.__('Launched run %1', result.run.name)
        });
      }
    } catch (error) {
      setOutcome({ ok: false, text: (error as Error).message });
    } finally {
      setLaunching(false);
    }
  };

  const field = (name: FieldName) => ({
    id: `jp-canfar-form-${name}`,
    'aria-invalid': check.errors[name] ? true : undefined,
    'aria-describedby': check.errors[name]
      ? `jp-canfar-form-${name}-error`
      : undefined
  });
  const error = (name: FieldName) =>
    check.errors[name] ? (
      <div
        className="jp-canfar-field-error"
        id={`jp-canfar-form-${name}-error`}
      >
        {check.errors[name]}
      </div>
    ) : null;

  // Retries, timeout and max running: a labelled text or number input each; their errors
  // are shown together under the row.
  const conductField = (
    name: 'retries' | 'timeout' | 'maxRunning',
    label: string,
    title: string,
    attributes: React.InputHTMLAttributes<HTMLInputElement>
  ) => (
    <div className="jp-canfar-field">
      <label htmlFor={`jp-canfar-form-${name}`}>{label}</label>
      <input
        {...field(name)}
        {...attributes}
        className="jp-mod-styled"
        title={title}
        value={values[name]}
        onChange={e => set(name, e.target.value)}
      />
    </div>
  );

  const resourceField = (name: 'cores' | 'ram' | 'gpus', label: string) => {
    const options = limits[name];
    if (name === 'gpus' && options.length === 0) {
      return null; // the service has no GPUs to offer
    }
    return (
      <div className="jp-canfar-field">
        <label htmlFor={`jp-canfar-form-${name}`}>{label}</label>
        {options.length > 0 ? (
          <select
            {...field(name)}
            className="jp-mod-styled"
            value={values[name]}
            onChange={e => set(name, e.target.value)}
          >
            <option value="">
              {name === 'gpus' ? trans.__('None') : trans.__('Flexible')}
            </option>
            {options.map(n => (
              <option key={n} value={String(n)}>
                {n}
              </option>
            ))}
          </select>
        ) : (
          <input
            {...field(name)}
            className="jp-mod-styled"
            inputMode="numeric"
            placeholder={trans.__('Flexible')}
            value={values[name]}
            onChange={e => set(name, e.target.value)}
          />
        )}
        {error(name)}
      </div>
    );
  };

  const images = (catalog.images?.images ?? []).filter(
    image => image.types.length === 0 || image.types.includes('headless')
  );
  // The image a launch would use when none is chosen (on CANFAR: this session's own).
  const serviceDefault =
    props.defaultImage ||
    (!values.image.trim() && preview.kind === 'ok'
      ? (preview.preview.image ?? null)
      : null);
  const replicaCount = sweepReplicas ?? (Number(values.replicas) || 0);
  // The preview's count of reduce cells when it says one, else the notebook's own.
  const reduceCells =
    preview.kind === 'ok' && Array.isArray(preview.preview.reduce_cells)
      ? preview.preview.reduce_cells.length
      : (props.reduceCells ?? 0);

  return (
    <form className="jp-canfar-form" onSubmit={submit} noValidate>
      <div className="jp-canfar-form-notebook" title={notebook.path}>
        {trans.__('Notebook: %1', notebook.path)}
      </div>

      <div className="jp-canfar-field">
        <label htmlFor="jp-canfar-form-name">{trans.__('Run name')}</label>
        <input
          {...field('name')}
          className="jp-mod-styled"
          value={values.name}
          spellCheck={false}
          autoComplete="off"
          onChange={e => set('name', e.target.value)}
        />
        {error('name')}
      </div>

      <div className="jp-canfar-field">
        <label htmlFor="jp-canfar-form-image">{trans.__('Image')}</label>
        <ImagePicker
          id="jp-canfar-form-image"
          value={values.image}
          images={images}
          placeholder={
            serviceDefault
              ? trans.__('Default: %1', serviceDefault)
              : images.length > 0
                ? trans.__('Search %1 images', images.length)
                : trans.__('Service default')
          }
          invalid={!!check.errors.image}
          describedBy={
            check.errors.image ? 'jp-canfar-form-image-error' : undefined
          }
          onChange={value => set('image', value)}
          trans={trans}
        />
        {error('image')}
        {catalog.images?.note && (
          <div className="jp-canfar-note">{catalog.images.note}</div>
        )}
      </div>

      <div className="jp-canfar-field-row">
        {resourceField('cores', trans.__('Cores'))}
        {resourceField('ram', trans.__('RAM (GB)'))}
        {resourceField('gpus', trans.__('GPUs'))}
      </div>

      <div className="jp-canfar-field">
        <label htmlFor="jp-canfar-form-replicas">{trans.__('Replicas')}</label>
        <input
          {...field('replicas')}
          className="jp-mod-styled"
          type="number"
          min={1}
          max={256}
          value={
            sweepReplicas !== null ? String(sweepReplicas) : values.replicas
          }
          disabled={sweepReplicas !== null}
          onChange={e => set('replicas', e.target.value)}
        />
        {sweepReplicas !== null && (
          <div className="jp-canfar-note">
            {trans.__('Set by the sweep: one replica per combination.')}
          </div>
        )}
        {error('replicas')}
      </div>

      <fieldset className="jp-canfar-params jp-canfar-conduct">
        <legend>{trans.__('Retries, timeout and pacing')}</legend>
        <div className="jp-canfar-field-row jp-canfar-conduct-row">
          {conductField(
            'retries',
            trans.__('Retries'),
            trans.__(
              'Re-create a replica that fails (not one stopped, timed out or out of memory) up to this many times, after 2 s, 4 s, 8 s…'
            ),
            { type: 'number', min: 0, max: 10, placeholder: '0' }
          )}
          {conductField(
            'timeout',
            trans.__('Timeout'),
            trans.__(
              'End a replica that runs longer: 30s, 90m, 2h, 1d (it is then Timed out)'
            ),
            {
              placeholder: trans.__('none'),
              spellCheck: false,
              autoComplete: 'off'
            }
          )}
          {conductField(
            'maxRunning',
            trans.__('Max running'),
            trans.__(
              'At most this many replicas at once; the rest wait in the run'
            ),
            { type: 'number', min: 1, placeholder: trans.__('all') }
          )}
        </div>
        {error('retries')}
        {error('timeout')}
        {error('maxRunning')}
        <label className="jp-canfar-check">
          <input
            id="jp-canfar-form-pilot"
            type="checkbox"
            checked={!!values.pilot}
            aria-describedby="jp-canfar-form-pilot-note"
            onChange={e => set('pilot', e.target.checked)}
          />
          {trans.__('Pilot')}
        </label>
        <div className="jp-canfar-note" id="jp-canfar-form-pilot-note">
          {trans.__(
            'Replica 1 runs alone first; the others start sized from its peak memory and CPU, or not at all if it fails.'
          )}
        </div>
        {reduceCells > 0 && (
          <div className="jp-canfar-note jp-canfar-reduce-note">
            {trans._n(
              '%1 cell tagged reduce runs once after all replicas succeed',
              '%1 cells tagged reduce run once after all replicas succeed',
              reduceCells
            )}
          </div>
        )}
      </fieldset>

      {declared.length > 0 && (
        <fieldset className="jp-canfar-params">
          <legend>{trans.__('Parameters')}</legend>
          <div className="jp-canfar-note">
            {trans.__(
              "From the notebook's parameters cell. Empty keeps its value; 1, 2, 3 (or a JSON list) runs one replica per value."
            )}
          </div>
          {declared.map(p => {
            const input = paramInputs[p.name];
            const id = `jp-canfar-form-param-${p.name}`;
            return (
              <div className="jp-canfar-param" key={p.name}>
                <label htmlFor={id} title={p.comment || undefined}>
                  <code>{p.name}</code>
                  <span className="jp-canfar-muted"> {p.type}</span>
                </label>
                <input
                  id={id}
                  className="jp-mod-styled"
                  placeholder={p.literal}
                  value={params[p.name] ?? ''}
                  spellCheck={false}
                  autoComplete="off"
                  aria-invalid={input?.kind === 'error' ? true : undefined}
                  onChange={e => {
                    const text = e.target.value;
                    setOutcome(null);
                    setParams(current => ({ ...current, [p.name]: text }));
                  }}
                />
                {input?.kind === 'sweep' && (
                  <div className="jp-canfar-note">
                    {trans.__('Sweep over %1 values', input.values.length)}
                  </div>
                )}
                {input?.kind === 'error' && (
                  <div className="jp-canfar-field-error">{input.message}</div>
                )}
              </div>
            );
          })}
        </fieldset>
      )}

      <fieldset className="jp-canfar-env">
        <legend>{trans.__('Environment variables')}</legend>
        {values.env.map((row, index) => (
          <div className="jp-canfar-env-row" key={index}>
            <input
              className="jp-mod-styled"
              aria-label={trans.__('Name of variable %1', index + 1)}
              placeholder={trans.__('NAME')}
              value={row.key}
              spellCheck={false}
              aria-invalid={check.envErrors[index] ? true : undefined}
              onChange={e =>
                set(
                  'env',
                  values.env.map((r, i) =>
                    i === index ? { ...r, key: e.target.value } : r
                  )
                )
              }
            />
            <span aria-hidden="true">=</span>
            <input
              className="jp-mod-styled"
              aria-label={trans.__('Value of variable %1', index + 1)}
              placeholder={trans.__('value')}
              value={row.value}
              spellCheck={false}
              onChange={e =>
                set(
                  'env',
                  values.env.map((r, i) =>
                    i === index ? { ...r, value: e.target.value } : r
                  )
                )
              }
            />
            <IconButton
              icon={closeIcon}
              label={trans.__('Remove variable %1', index + 1)}
              onClick={() =>
                set(
                  'env',
                  values.env.filter((_, i) => i !== index)
                )
              }
            />
            {check.envErrors[index] && (
              <div className="jp-canfar-field-error jp-canfar-env-error">
                {check.envErrors[index]}
              </div>
            )}
          </div>
        ))}
        <button
          type="button"
          className="jp-Button jp-mod-minimal jp-canfar-env-add"
          onClick={() => set('env', [...values.env, { key: '', value: '' }])}
        >
          <addIcon.react tag="span" className="jp-canfar-iconbutton-icon" />
          {trans.__('Add variable')}
        </button>
      </fieldset>

      {sites.length > 1 && (
        <div className="jp-canfar-field">
          <label htmlFor="jp-canfar-form-site">{trans.__('Site')}</label>
          <select
            id="jp-canfar-form-site"
            className="jp-mod-styled"
            value={site}
            onChange={e => {
              setOutcome(null);
              setSite(e.target.value);
            }}
          >
            <option value="">
              {props.site
                ? trans.__('The active login (%1)', props.site)
                : trans.__('The active login')}
            </option>
            {sites.map(name => (
              <option key={name} value={name}>
                {name}
              </option>
            ))}
          </select>
        </div>
      )}

      <div className="jp-canfar-field">
        <label htmlFor="jp-canfar-form-secrets">
          {trans.__('Secret variables')}
        </label>
        <input
          id="jp-canfar-form-secrets"
          className="jp-mod-styled"
          placeholder={trans.__('Names, e.g. API_TOKEN')}
          value={secrets}
          spellCheck={false}
          autoComplete="off"
          aria-invalid={badSecret ? true : undefined}
          onChange={e => {
            setOutcome(null);
            setSecrets(e.target.value);
          }}
        />
        {badSecret ? (
          <div className="jp-canfar-field-error">
            {trans.__(
              '"%1" is not a variable name replicas can get',
              badSecret
            )}
          </div>
        ) : (
          <div className="jp-canfar-note">
            {trans.__(
              "Values come from the Jupyter server's environment and are never written to the run or its logs."
            )}
          </div>
        )}
      </div>

      {catalog.error && (
        <div className="jp-canfar-problem" role="alert">
          {trans.__('Cannot list images and resources: %1', catalog.error)}
        </div>
      )}

      <PreviewView
        state={preview}
        dirty={notebook.dirty}
        revealCell={props.revealCell}
        trans={trans}
      />

      <div className="jp-canfar-form-actions">
        <button
          type="submit"
          className="jp-Button jp-mod-styled jp-mod-accept jp-canfar-launch"
          disabled={!canLaunch}
          aria-describedby={
            blockedReason ? 'jp-canfar-launch-reason' : undefined
          }
        >
          {launching
            ? trans.__('Launching…')
            : trans._n('Run %1 replica', 'Run %1 replicas', replicaCount)}
        </button>
        {blockedReason && !launching && (
          <div
            className="jp-canfar-launch-reason"
            id="jp-canfar-launch-reason"
            role="status"
          >
            {problems.length > 0 && props.revealCell ? (
              <button
                type="button"
                className="jp-canfar-link"
                onClick={() => props.revealCell!(problems[0])}
              >
                {blockedReason}
              </button>
            ) : (
              blockedReason
            )}
          </div>
        )}
      </div>
      {outcome && (
        <div
          className={outcome.ok ? 'jp-canfar-outcome' : 'jp-canfar-problem'}
          role={outcome.ok ? 'status' : 'alert'}
        >
          {outcome.text}
        </div>
      )}
    </form>
  );
}

const SHOWN_REPLICAS = 8;

function PreviewView(props: {
  state: PreviewState;
  dirty: boolean;
  revealCell?(problem: IExportProblem): void;
  trans: TranslationBundle;
}): JSX.Element | null {
  const { state, trans, dirty } = props;
  const unsaved = dirty ? (
    <div className="jp-canfar-note">
      {trans.__(
        'The notebook has unsaved changes: a launch saves those its replicas would run, and the server checks it again.'
      )}
    </div>
  ) : null;
  switch (state.kind) {
    case 'idle':
      return unsaved;
    case 'loading':
      return (
        <div className="jp-canfar-preview" aria-busy="true">
          {trans.__('Checking the notebook…')}
          {unsaved}
        </div>
      );
    case 'error':
      return (
        <div className="jp-canfar-problem jp-canfar-preview" role="alert">
          {state.message}
        </div>
      );
  }
  const { problems, replicas, argv } = state.preview;
  // Variables that differ between replicas go on each line; the rest are said once.
  const keys = replicas.length > 0 ? Object.keys(replicas[0].env) : [];
  const varying = keys.filter(
    k =>
      k.startsWith('REPLICA_') ||
      replicas.some(r => r.env[k] !== replicas[0].env[k])
  );
  const common = keys.filter(k => !varying.includes(k));
  if (problems.length > 0) {
    return (
      <div className="jp-canfar-problem jp-canfar-problems" role="alert">
        <div className="jp-canfar-problems-title">
          {trans._n(
            'This problem stops the launch:',
            'These %1 problems stop the launch:',
            problems.length
          )}
        </div>
        <ul>
          {problems.map((problem, index) => (
            <li key={index}>
              {props.revealCell ? (
                <button
                  type="button"
                  className="jp-canfar-link"
                  onClick={() => props.revealCell!(problem)}
                >
                  {trans.__('Cell %1, line %2', problem.cell, problem.line)}
                </button>
              ) : (
                trans.__('Cell %1, line %2', problem.cell, problem.line)
              )}
              {': '}
              {problem.message}
            </li>
          ))}
        </ul>
        {unsaved}
      </div>
    );
  }
  return (
    <div className="jp-canfar-preview">
      {unsaved}
      <details>
        <summary>{trans.__('What will be launched')}</summary>
        <ul className="jp-canfar-preview-replicas">
          {replicas.slice(0, SHOWN_REPLICAS).map(replica => (
            <li key={replica.index}>
              <code>{replica.name}</code>{' '}
              <span className="jp-canfar-muted">
                {varying.map(k => `${k}=${replica.env[k]}`).join(' ')}
              </span>
              {replica.waiting && (
                <span className="jp-canfar-muted"> ({replica.waiting})</span>
              )}
            </li>
          ))}
          {replicas.length > SHOWN_REPLICAS && (
            <li className="jp-canfar-muted">
              {trans.__('… and %1 more', replicas.length - SHOWN_REPLICAS)}
            </li>
          )}
        </ul>
        {common.length > 0 && (
          <div className="jp-canfar-preview-argv">
            <span className="jp-canfar-muted">
              {trans.__('Every replica:')}
            </span>{' '}
            <code>
              {common.map(k => `${k}=${replicas[0].env[k]}`).join(' ')}
            </code>
          </div>
        )}
        {state.preview.image && (
          <div className="jp-canfar-preview-argv">
            <span className="jp-canfar-muted">{trans.__('Image:')}</span>{' '}
            <code>{state.preview.image}</code>
          </div>
        )}
        {state.preview.folder && (
          <div className="jp-canfar-preview-argv">
            <span className="jp-canfar-muted">{trans.__('Run folder:')}</span>{' '}
            <code>{state.preview.folder}</code>
          </div>
        )}
        <div className="jp-canfar-preview-argv">
          <span className="jp-canfar-muted">{trans.__('Command:')}</span>{' '}
          <code>{argv.join(' ')}</code>
        </div>
      </details>
    </div>
  );
}
