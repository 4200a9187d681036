// The Run as batch form's rules: default name, validation, and the launch request it makes.
// Mirrors the server's checks (canfar_jlab/models.py) so mistakes show as you type; the
// server still checks everything again.
import { PathExt } from '@jupyterlab/coreutils';
import { TranslationBundle } from '@jupyterlab/translation';

import { ILaunchRequest } from './api';

/** Skaha's session name rule: a DNS label of at most 63 characters. */
export const SESSION_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** Kubernetes' rule for environment variable names. */
export const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;
export const MAX_REPLICAS = 256;
/** Set by the session service for every replica: a user value would be overwritten. */
export const RESERVED_ENV = ['REPLICA_ID', 'REPLICA_COUNT'];
const UNSAFE = ['$', '"', '\\'];
const MAX_NAME = 63;
/** Issue 17's bounds, as the server's LaunchRequest has them. */
export const MAX_RETRIES = 10;
export const MAX_TIMEOUT_SECONDS = 14 * 86400;

const DURATION = /^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$/i;
const UNIT_SECONDS: Record<string, number> = {
  '': 1,
  s: 1,
  m: 60,
  h: 3600,
  d: 86400
};

/**
 * A timeout as typed (`30s`, `90m`, `2h`, `1d` or plain seconds, as the CLI's --timeout)
 * in whole seconds, or null when it is not one.
 */
export function parseDuration(text: string): number | null {
  const match = DURATION.exec(text);
  if (!match) {
    return null;
  }
  const seconds = Math.round(
    Number(match[1]) * UNIT_SECONDS[match[2].toLowerCase()]
  );
  return seconds >= 1 ? seconds : null;
}

/** The shortest exact way to write `seconds`: 2h, 90m, 30s, 1d. */
export function durationText(seconds: number): string {
  for (const [unit, size] of [
    ['d', 86400],
    ['h', 3600],
    ['m', 60]
  ] as const) {
    if (seconds % size === 0) {
      return `${seconds / size}${unit}`;
    }
  }
  return `${seconds}s`;
}

/**
 * A run name from a notebook path: `Reduce FITS (v2).ipynb` gives `reduce-fits-v2`.
 * Room is left for the `-N` suffix replica names get.
 */
export function runNameFromPath(path: string, replicas = 1): string {
  const stem = PathExt.basename(path, PathExt.extname(path));
  const cleaned = stem
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '') // accents go, their letters stay
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  const room = MAX_NAME - (replicas > 1 ? String(replicas).length + 1 : 0);
  const name = cleaned.slice(0, room).replace(/-+$/, '');
  return name || 'run';
}

/** Whether `name` or the replica names it would give (`name-1`...) are among `taken`. */
function inUse(name: string, taken: ReadonlySet<string>): boolean {
  if (taken.has(name)) {
    return true;
  }
  const replica = new RegExp(`^${name}-\\d+$`);
  for (const other of taken) {
    if (replica.test(other)) {
      return true;
    }
  }
  return false;
}

/**
 * `base`, or `base-r2`, `base-r3`... when a run or session has the name already. The `r`
 * keeps the suffix apart from replica numbers: `fit-2` is replica 2 of run `fit`.
 */
export function uniqueRunName(
  base: string,
  taken: ReadonlySet<string>
): string {
  if (!inUse(base, taken)) {
    return base;
  }
  for (let i = 2; ; i++) {
    const suffix = `-r${i}`;
    const candidate =
      base.slice(0, MAX_NAME - suffix.length).replace(/-+$/, '') + suffix;
    if (!inUse(candidate, taken)) {
      return candidate;
    }
  }
}

export interface IEnvRow {
  key: string;
  value: string;
}

/** What the user typed, as typed: numbers stay strings until validated. */
export interface IRunFormValues {
  name: string;
  image: string;
  cores: string;
  ram: string;
  gpus: string;
  replicas: string;
  env: IEnvRow[];
  // Issue 17 (empty: the default, no retry/timeout/cap).
  retries?: string;
  timeout?: string;
  maxRunning?: string;
  pilot?: boolean;
}

/** What the service offers (from /context), and the run and session names in use. */
export interface IFormLimits {
  cores: number[];
  ram: number[];
  gpus: number[];
  takenNames: ReadonlySet<string>;
}

export type FieldName =
  | 'name'
  | 'image'
  | 'cores'
  | 'ram'
  | 'gpus'
  | 'replicas'
  | 'retries'
  | 'timeout'
  | 'maxRunning';

export interface IFormCheck {
  /** One message per field in error. */
  errors: Partial<Record<FieldName, string>>;
  /** One message per env row in error, by row index. */
  envErrors: Record<number, string>;
  /** The request (without `notebook`) when there is no error. */
  request: Omit<ILaunchRequest, 'notebook'> | null;
}

function wholeNumber(text: string): number | null {
  return /^\s*\d+\s*$/.test(text) ? Number(text) : null;
}

function checkResource(
  text: string,
  options: number[],
  what: string,
  trans: TranslationBundle
): { value?: number; error?: string } {
  if (text.trim() === '') {
    return {};
  }
  const value = wholeNumber(text);
  if (value === null || value < (what === 'gpus' ? 0 : 1)) {
    return {
      error: trans.__('Enter a whole number, or leave empty for flexible')
    };
  }
  if (options.length > 0 && !options.includes(value)) {
    return {
      error: trans.__('The service offers %1', options.join(', '))
    };
  }
  return { value };
}

/** Check the form; give the request only when everything is right. */
export function checkRunForm(
  values: IRunFormValues,
  limits: IFormLimits,
  trans: TranslationBundle
): IFormCheck {
  const errors: IFormCheck['errors'] = {};
  const envErrors: Record<number, string> = {};

  const replicas = wholeNumber(values.replicas);
  if (replicas === null || replicas < 1 || replicas > MAX_REPLICAS) {
    errors.replicas = trans.__('Between 1 and %1 replicas', MAX_REPLICAS);
  }

  const name = values.name.trim();
  const longest =
    replicas !== null && replicas > 1 ? `${name}-${replicas}` : name;
  if (name === '') {
    errors.name = trans.__('A run needs a name');
  } else if (!SESSION_NAME.test(name)) {
    errors.name = trans.__(
      'Use a-z, 0-9 and "-", starting and ending with a letter or digit'
    );
  } else if (!errors.replicas && longest.length > MAX_NAME) {
    errors.name = trans.__(
      'Too long: replica names (%1) must have at most 63 characters',
      longest
    );
  } else if (limits.takenNames.has(name)) {
    errors.name = trans.__('"%1" is in use by a run or a session', name);
  }

  const image = values.image.trim();
  if (/\s/.test(image)) {
    errors.image = trans.__('An image name has no spaces');
  }

  const cores = checkResource(values.cores, limits.cores, 'cores', trans);
  const ram = checkResource(values.ram, limits.ram, 'ram', trans);
  const gpus = checkResource(values.gpus, limits.gpus, 'gpus', trans);
  for (const [field, result] of [
    ['cores', cores],
    ['ram', ram],
    ['gpus', gpus]
  ] as const) {
    if (result.error) {
      errors[field] = result.error;
    }
  }

  const retries = (values.retries ?? '').trim();
  const retryCount = retries === '' ? 0 : wholeNumber(retries);
  if (retryCount === null || retryCount > MAX_RETRIES) {
    errors.retries = trans.__('Between 0 and %1 retries', MAX_RETRIES);
  }
  const timeoutText = (values.timeout ?? '').trim();
  const timeout = timeoutText === '' ? null : parseDuration(timeoutText);
  if (timeoutText !== '' && timeout === null) {
    errors.timeout = trans.__(
      '"%1" is not a duration: 30s, 90m, 2h, 1d or seconds',
      timeoutText
    );
  } else if (timeout !== null && timeout > MAX_TIMEOUT_SECONDS) {
    errors.timeout = trans.__('At most 14 days (Skaha ends sessions then)');
  }
  const capText = (values.maxRunning ?? '').trim();
  const cap = capText === '' ? null : wholeNumber(capText);
  if (capText !== '' && (cap === null || cap < 1 || cap > MAX_REPLICAS)) {
    errors.maxRunning = trans.__('A whole number from 1, or empty for no cap');
  }

  const env: Record<string, string> = {};
  values.env.forEach((row, index) => {
    const key = row.key.trim();
    if (key === '' && row.value === '') {
      return; // a blank row is just an empty slot
    }
    let error: string | null = null;
    if (!ENV_NAME.test(key)) {
      error = trans.__('"%1" is not a valid variable name', key);
    } else if (RESERVED_ENV.includes(key)) {
      error = trans.__(
        '%1 is set by the session service for each replica',
        key
      );
    } else if (key in env) {
      error = trans.__('%1 is set twice', key);
    } else if (row.value === '') {
      error = trans.__('Give %1 a value (the service drops empty ones)', key);
    } else if (
      UNSAFE.some(ch => row.value.includes(ch)) ||
      row.value.includes('=')
    ) {
      error = trans.__('Values cannot contain $, ", \\ or =');
    } else if (/[\r\n]/.test(row.value)) {
      error = trans.__('Values cannot contain line breaks');
    }
    if (error) {
      envErrors[index] = error;
    } else {
      env[key] = row.value;
    }
  });

  const ok =
    Object.keys(errors).length === 0 && Object.keys(envErrors).length === 0;
  if (!ok) {
    return { errors, envErrors, request: null };
  }
  const request: Omit<ILaunchRequest, 'notebook'> = {
    name,
    replicas: replicas!
  };
  if (image) {
    request.image = image;
  }
  if (cores.value !== undefined) {
    request.cores = cores.value;
  }
  if (ram.value !== undefined) {
    request.ram = ram.value;
  }
  if (gpus.value !== undefined && gpus.value > 0) {
    request.gpus = gpus.value;
  }
  if (Object.keys(env).length > 0) {
    request.env = env;
  }
  if (retryCount) {
    request.retries = retryCount;
  }
  if (timeout !== null) {
    request.timeout_seconds = timeout;
  }
  if (cap !== null) {
    request.max_running = cap;
  }
  if (values.pilot) {
    request.pilot = true;
  }
  return { errors, envErrors, request };
}
