/**
 * Galata's base configuration, pointed at Debian's Chromium: Playwright cannot download its
 * own browser (or ffmpeg for videos) on these machines.
 */
const fs = require('fs');
const os = require('os');
const path = require('path');

const baseConfig = require('@jupyterlab/galata/lib/playwright-config');

// One throwaway server root per test session, with the run folders inside it: runs never land
// in the developer's home, and "open the run folder" has a folder the file browser can show.
// Workers inherit the variable, so they all agree on the root.
if (!process.env.JUPYTERLAB_GALATA_ROOT_DIR) {
  process.env.JUPYTERLAB_GALATA_ROOT_DIR = fs.mkdtempSync(
    path.join(os.tmpdir(), 'canfar-jlab-galata-')
  );
}
const runsRoot = path.join(
  process.env.JUPYTERLAB_GALATA_ROOT_DIR,
  'canfar-runs'
);

module.exports = {
  ...baseConfig,
  timeout: 180000,
  retries: 0,
  workers: 1,
  reporter: [['list'], ['html', { open: 'never' }]],
  use: {
    ...baseConfig.use,
    video: 'off',
    trace: 'retain-on-failure',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-dev-shm-usage',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--disable-quic',
        '--no-first-run'
      ]
    }
  },
  webServer: {
    command: `jlpm start --CanfarJlabApp.runs_root=${runsRoot}`,
    url: 'http://localhost:8888/lab',
    timeout: 120 * 1000,
    reuseExistingServer: !process.env.CI
  }
};
