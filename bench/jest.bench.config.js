// `jlpm bench:ui`: the project's jest setup, pointed at bench/*.bench.ts instead of the tests.
const base = require('../jest.config.js');

module.exports = {
  ...base,
  rootDir: '..',
  roots: ['<rootDir>/bench'],
  testRegex: 'bench/.*\\.bench\\.ts$',
  collectCoverage: false,
  transform: {
    ...base.transform,
    '^.+\\.tsx?$': [
      'ts-jest/legacy',
      { tsconfig: './bench/tsconfig.bench.json' }
    ]
  },
  testTimeout: 300000
};
