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
