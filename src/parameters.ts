// The notebook's `parameters` cell (papermill's convention) as form fields: each simple
// assignment becomes a typed field; a list of values in a field makes a sweep.

export type ParameterType = 'int' | 'float' | 'bool' | 'str' | 'other';

export interface INotebookParameter {
  name: string;
  type: ParameterType;
  /** The default as written in the cell ("10", "'r'"), shown as the placeholder. */
  literal: string;
  /** The comment after the assignment, if any. */
  comment: string;
}

const ASSIGNMENT =
  /^([A-Za-z_][A-Za-z0-9_]*)\s*(?::\s*[A-Za-z_][\w[\], .]*)?=\s*(.+?)\s*(?:#\s*(.*))?$/;

function typeOf(literal: string): ParameterType {
  if (/^[-+]?\d+$/.test(literal)) {
    return 'int';
  }
  if (/^[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?$/.test(literal)) {
    return 'float';
  }
  if (literal === 'True' || literal === 'False') {
    return 'bool';
  }
  if (/^(['"]).*\1$/.test(literal)) {
    return 'str';
  }
  return 'other';
}

/** The parameters a `parameters` cell assigns at top level, in order, each once. */
export function parseParametersCell(source: string): INotebookParameter[] {
  const found = new Map<string, INotebookParameter>();
  for (const raw of source.split('\n')) {
    if (/^\s/.test(raw)) {
      continue; // inside a block: not a top-level assignment
    }
    const line = raw.replace(/\s+$/, '');
    const match = ASSIGNMENT.exec(line);
    if (!match || line.startsWith('#')) {
      continue;
    }
    // A "#" inside a string literal is not a comment: keep the whole literal then.
    let literal = match[2];
    let comment = match[3] ?? '';
    if (/^['"]/.test(literal) && !/^(['"]).*\1$/.test(literal)) {
      literal = line.slice(line.indexOf('=') + 1).trim();
      comment = '';
    }
    found.set(match[1], {
      name: match[1],
      type: typeOf(literal),
      literal,
      comment
    });
  }
  return [...found.values()];
}

export type ParameterInput =
  | { kind: 'empty' }
  | { kind: 'value'; value: unknown }
  | { kind: 'sweep'; values: unknown[] }
  | { kind: 'error'; message: string };

function one(text: string, type: ParameterType): unknown | undefined {
  const t = text.trim();
  switch (type) {
    case 'int':
      return /^[-+]?\d+$/.test(t) ? Number(t) : undefined;
    case 'float': {
      const n = Number(t);
      return t !== '' && Number.isFinite(n) ? n : undefined;
    }
    case 'bool':
      if (/^(true|yes|1)$/i.test(t)) {
        return true;
      }
      return /^(false|no|0)$/i.test(t) ? false : undefined;
    default:
      // A string: quotes optional.
      return /^(['"]).*\1$/.test(t) ? t.slice(1, -1) : t;
  }
}

const TYPE_NAMES: Record<ParameterType, string> = {
  int: 'a whole number',
  float: 'a number',
  bool: 'true or false',
  str: 'text',
  other: 'a JSON value'
};

/**
 * What the user typed for a parameter of `type`: nothing (keep the notebook's default), one
 * value, or a sweep: comma-separated values for numbers and booleans, or a JSON list.
 */
export function readParameterInput(
  text: string,
  type: ParameterType
): ParameterInput {
  const t = text.trim();
  if (t === '') {
    return { kind: 'empty' };
  }
  if (t.startsWith('[')) {
    try {
      const values = JSON.parse(t);
      if (Array.isArray(values) && values.length > 0) {
        return values.length === 1
          ? { kind: 'value', value: values[0] }
          : { kind: 'sweep', values };
      }
    } catch {
      // not JSON: read as typed below
    }
    if (type === 'other') {
      return { kind: 'error', message: 'Not a valid JSON list' };
    }
  }
  if (type === 'other') {
    try {
      return { kind: 'value', value: JSON.parse(t) };
    } catch {
      return { kind: 'error', message: 'Enter a JSON value' };
    }
  }
  const pieces = type === 'str' ? [t] : t.split(',');
  const values: unknown[] = [];
  for (const piece of pieces) {
    const value = one(piece, type);
    if (value === undefined) {
      return {
        kind: 'error',
        message: `"${piece.trim()}" is not ${TYPE_NAMES[type]}`
      };
    }
    values.push(value);
  }
  return values.length === 1
    ? { kind: 'value', value: values[0] }
    : { kind: 'sweep', values };
}

/** How many replicas a sweep makes: one per combination of the listed values. */
export function sweepSize(values: Record<string, unknown>): number {
  let n = 1;
  for (const value of Object.values(values)) {
    if (Array.isArray(value)) {
      n *= value.length;
    }
  }
  return n;
}
