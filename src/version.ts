// The bundler inlines package.json, the same file the Python package takes its version from,
// so the frontend and the server extension agree exactly when they come from one build.
declare const require: (id: string) => any;
const pkg = require('../package.json');

/** The version of this frontend build. */
export const FRONTEND_VERSION: string = pkg.version;
