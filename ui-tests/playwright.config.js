/**
 * Galata's base configuration, pointed at Debian's Chromium: Playwright cannot download its
 * own browser (or ffmpeg for videos) on these machines.
 */
const baseConfig = require('@jupyterlab/galata/lib/playwright-config');

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
    command: 'jlpm start',
    url: 'http://localhost:8888/lab',
    timeout: 120 * 1000,
    reuseExistingServer: !process.env.CI,
    // SIGTERM lets Jupyter shut down and stop the test's local engine (see
    // jupyter_server_test_config.py); Playwright's default SIGKILL would leave it running.
    gracefulShutdown: { signal: 'SIGTERM', timeout: 15000 }
  }
};
