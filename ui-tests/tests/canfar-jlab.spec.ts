import { expect, test } from '@jupyterlab/galata';

test.describe('CANFAR sidebar', () => {
  test('opens and shows the server version and backend', async ({ page }) => {
    const tab = page.locator('.jp-SideBar [data-id="canfar-jlab-sidebar"]');
    await expect(tab).toBeVisible();
    await tab.click();

    const panel = page.locator('#canfar-jlab-sidebar');
    await expect(panel).toBeVisible();
    await expect(panel.locator('.jp-canfar-title')).toHaveText('CANFAR');

    // The version comes from the server extension's /config route, so it is only shown
    // once the frontend and the server part have shaken hands.
    const status = panel.locator('.jp-canfar-status[data-state="ok"]');
    await expect(status).toBeVisible();
    await expect(panel.locator('.jp-canfar-version')).toHaveText(
      /^canfar-jlab \d+\.\d+\.\d+/
    );
    await expect(panel.locator('.jp-canfar-backend')).toHaveText(
      /Local engine|Skaha at/
    );
  });
});

test.describe('For other extensions', () => {
  test('the plugin provides its live model behind the ICanfarModel token', async ({
    page
  }) => {
    // What another extension's `requires: [ICanfarModel]` gets: resolved by the token the
    // canfar-jlab plugin declares it provides.
    const seen = await page.evaluate(async () => {
      const app = (window as any).jupyterapp;
      const registry = app.pluginRegistry;
      const token = [...registry._services.keys()].find(
        (t: { name: string }) => t.name === 'canfar-jlab:ICanfarModel'
      );
      if (!token) {
        return null;
      }
      const model = await app.resolveRequiredService(token);
      await new Promise<void>(resolve => {
        if (model.loaded) {
          resolve();
        } else {
          model.changed.connect(() => model.loaded && resolve());
        }
      });
      return {
        provider: registry._services.get(token),
        runs: Array.isArray(model.runs),
        sessions: Array.isArray(model.sessions),
        loaded: model.loaded,
        signals: typeof model.runEnded.connect === 'function'
      };
    });
    expect(seen).toEqual({
      provider: 'canfar-jlab:plugin',
      runs: true,
      sessions: true,
      loaded: true,
      signals: true
    });
  });
});

test.describe('Platform metrics', () => {
  test('a 503 from the platform stats says "platform metrics unavailable" and nothing else breaks', async ({
    page
  }) => {
    await page.route(/\/canfar-jlab\/stats(\?|$)/, route =>
      route.fulfill({
        status: 503,
        contentType: 'application/json',
        body: JSON.stringify({ message: 'metrics backend unavailable' })
      })
    );
    await page.reload();
    await page.locator('.jp-SideBar [data-id="canfar-jlab-sidebar"]').click();
    const panel = page.locator('#canfar-jlab-sidebar');
    await expect(panel.locator('.jp-canfar-platform-unavailable')).toHaveText(
      'Platform metrics unavailable'
    );
    await expect(
      panel.locator('.jp-canfar-status[data-state="ok"]')
    ).toBeVisible();
    await expect(panel.locator('.jp-canfar-problem')).toHaveCount(0);
  });
});
