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
