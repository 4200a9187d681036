import {
  parseParametersCell,
  readParameterInput,
  sweepSize
} from '../parameters';

describe('notebook parameters', () => {
  it('reads the typed assignments of a parameters cell', () => {
    const cell = [
      '# Parameters (override with -p NAME=VALUE)',
      'n_images = 8  # how many frames',
      'threshold: float = 2.5',
      "band = 'r#1'",
      'verbose = False',
      'shape = (2, 3)',
      'if verbose:',
      '    n_images = 1',
      'n_images = 10'
    ].join('\n');
    expect(parseParametersCell(cell)).toEqual([
      { name: 'n_images', type: 'int', literal: '10', comment: '' },
      { name: 'threshold', type: 'float', literal: '2.5', comment: '' },
      { name: 'band', type: 'str', literal: "'r#1'", comment: '' },
      { name: 'verbose', type: 'bool', literal: 'False', comment: '' },
      { name: 'shape', type: 'other', literal: '(2, 3)', comment: '' }
    ]);
  });

  it('reads a value, a sweep, or says what is wrong, by type', () => {
    expect(readParameterInput('', 'int')).toEqual({ kind: 'empty' });
    expect(readParameterInput('12', 'int')).toEqual({
      kind: 'value',
      value: 12
    });
    expect(readParameterInput('1, 2,3', 'int')).toEqual({
      kind: 'sweep',
      values: [1, 2, 3]
    });
    expect(readParameterInput('1.5', 'int')).toEqual({
      kind: 'error',
      message: '"1.5" is not a whole number'
    });
    expect(readParameterInput('0.5,1e3', 'float')).toEqual({
      kind: 'sweep',
      values: [0.5, 1000]
    });
    expect(readParameterInput('yes', 'bool')).toEqual({
      kind: 'value',
      value: true
    });
    // Text keeps its commas; a JSON list sweeps it.
    expect(readParameterInput('a,b', 'str')).toEqual({
      kind: 'value',
      value: 'a,b'
    });
    expect(readParameterInput('["g", "r"]', 'str')).toEqual({
      kind: 'sweep',
      values: ['g', 'r']
    });
    expect(readParameterInput('[1, 2]', 'other')).toEqual({
      kind: 'sweep',
      values: [1, 2]
    });
    expect(sweepSize({ a: [1, 2, 3], b: ['g', 'r'], c: 4 })).toBe(6);
  });
});
