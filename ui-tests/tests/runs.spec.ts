// Run as batch end to end, against the local engine the server starts on demand: the form,
// live status in the sidebar, the log panel, notifications, re-run, run folder, delete.
import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';
import { Locator } from '@playwright/test';
import * as path from 'path';

// The README's screenshots are refreshed with `jlpm test:screenshots` (CANFAR_JLAB_SCREENSHOTS=1);
// an ordinary run writes them under test-results, so tests never dirty the work tree.
const SCREENSHOTS = process.env.CANFAR_JLAB_SCREENSHOTS
  ? path.resolve(__dirname, '..', '..', 'docs', 'images')
  : path.resolve(__dirname, '..', 'test-results', 'screenshots');
const EXAMPLE = path.resolve(
  __dirname,
  '..',
  '..',
  'examples',
  'reduce_fits.ipynb'
);
// Replicas start a Python process each and import numpy/astropy: allow for a slow machine.
const RUN_TIMEOUT = 120_000;

/** A notebook whose replica 2 fails on its first attempt and succeeds when re-run. */
const FLAKY = {
  cells: [
    {
      cell_type: 'code',
      execution_count: null,
      id: 'flaky-cell',
      metadata: {},
      outputs: [],
      source: [
        'import os, pathlib\n',
        "replica = os.environ.get('REPLICA_ID', '1')\n",
        "marker = pathlib.Path(os.environ.get('CANFAR_RUN_DIR', '.')) / f'tried-{replica}'\n",
        "print(f'replica {replica} starting')\n",
        "if replica == '2' and not marker.exists():\n",
        "    marker.write_text('1')\n",
        "    raise SystemExit('replica 2 fails on its first attempt')\n",
        "print(f'replica {replica} done')"
      ]
    }
  ],
  metadata: {
    kernelspec: {
      display_name: 'Python 3',
      language: 'python',
      name: 'python3'
    }
  },
  nbformat: 4,
  nbformat_minor: 5
};

function sidebar(page: IJupyterLabPageFixture): Locator {
  return page.locator('#canfar-jlab-sidebar');
}

function runGroup(page: IJupyterLabPageFixture, name: string): Locator {
  return sidebar(page).locator(`.jp-canfar-run[data-run="${name}"]`);
}

/** The run's one-line summary reaching `text`, pushed by the live channel (no reload). */
async function expectSummary(
  page: IJupyterLabPageFixture,
  name: string,
  text: string
) {
  await expect(
    runGroup(page, name).locator('.jp-canfar-run-summary')
  ).toHaveText(text, {
    timeout: RUN_TIMEOUT
  });
}

async function openNotebook(page: IJupyterLabPageFixture, file: string) {
  await page.notebook.openByPath(file);
  await page.notebook.activate(path.basename(file));
}

/** Fill the form (the notebook in focus) and launch; the form must be ready to go. */
async function launch(
  page: IJupyterLabPageFixture,
  replicas: number,
  name?: string
) {
  const form = sidebar(page).locator('.jp-canfar-form');
  await expect(form).toBeVisible();
  if (name) {
    await form.locator('#jp-canfar-form-name').fill(name);
  }
  await form.locator('#jp-canfar-form-replicas').fill(String(replicas));
  // The preview says what will be launched before anything is.
  await expect(form.locator('.jp-canfar-preview summary')).toHaveText(
    'What will be launched'
  );
  const button = form.locator('.jp-canfar-launch');
  await expect(button).toHaveText(
    `Run ${replicas} replica${replicas > 1 ? 's' : ''}`
  );
  await expect(button).toBeEnabled();
  return form;
}

/** Upload a notebook of `cells` (FLAKY's metadata) as `${tmpPath}/${name}.ipynb`; its path. */
async function uploadNotebook(
  page: IJupyterLabPageFixture,
  tmpPath: string,
  name: string,
  cells: Record<string, unknown>[]
): Promise<string> {
  const file = `${tmpPath}/${name}.ipynb`;
  await page.contents.uploadContent(
    JSON.stringify({ ...FLAKY, cells }),
    'text',
    file
  );
  return file;
}

/** Open `file` and, through the toolbar's command, its Run as batch form. */
async function openForm(
  page: IJupyterLabPageFixture,
  file: string
): Promise<Locator> {
  await openNotebook(page, file);
  await page.evaluate(() =>
    (window as any).jupyterapp.commands.execute('canfar-jlab:run-as-batch')
  );
  return sidebar(page).locator('.jp-canfar-form');
}

function logLines(page: IJupyterLabPageFixture, name: string): Locator {
  return page.locator(`#canfar-logs-run-${name} .jp-canfar-logview-lines`);
}

// The screen the issue was tried on: the launch button must be in sight without scrolling.
test.use({ viewport: { width: 1440, height: 900 } });

/** Whether the whole of `locator` is inside the browser window (no scrolling needed). */
async function inViewport(page: IJupyterLabPageFixture, locator: Locator) {
  const box = await locator.boundingBox();
  const size = page.viewportSize()!;
  return (
    box !== null &&
    box.y >= 0 &&
    box.x >= 0 &&
    box.y + box.height <= size.height &&
    box.x + box.width <= size.width
  );
}

/** The run's notifications (there must be one per run, updated in place). */
function toasts(page: IJupyterLabPageFixture, name: string): Locator {
  return page.locator('.Toastify__toast', {
    hasText: new RegExp(`Run ${name} (launched|completed|failed|stopped)`)
  });
}

test.describe('Run as batch', () => {
  test('3 replicas of the example notebook: form, live status, logs, notification', async ({
    page,
    tmpPath
  }) => {
    await page.contents.uploadFile(EXAMPLE, `${tmpPath}/reduce_fits.ipynb`);
    await openNotebook(page, `${tmpPath}/reduce_fits.ipynb`);

    // The notebook toolbar button (declared in the settings schema) is labelled and opens
    // the form with its launch button in sight at 1440x900, without scrolling.
    const toolbarButton = page.locator(
      '.jp-NotebookPanel-toolbar [data-command="canfar-jlab:run-as-batch"]'
    );
    await expect(toolbarButton).toHaveText('Run as batch');
    await toolbarButton.click();
    await expect(sidebar(page)).toBeVisible();
    const form = sidebar(page).locator('.jp-canfar-form');
    await expect(form.locator('.jp-canfar-launch')).toBeEnabled();
    expect(await inViewport(page, form.locator('.jp-canfar-launch'))).toBe(
      true
    );
    // The notebook's parameters cell is offered, typed, with its values as placeholders.
    await expect(
      form.locator('#jp-canfar-form-param-n_images')
    ).toHaveAttribute('placeholder', '10');
    await expect(form.locator('.jp-canfar-form-notebook')).toContainText(
      'reduce_fits.ipynb'
    );
    // The default name comes from the notebook's file name, made fit for Skaha.
    await expect(form.locator('#jp-canfar-form-name')).toHaveValue(
      'reduce-fits'
    );

    await launch(page, 3);
    await form.locator('.jp-canfar-preview details').click();
    await expect(form.locator('.jp-canfar-preview-replicas li')).toHaveCount(3);
    await expect(form.locator('.jp-canfar-preview-replicas')).toContainText(
      'reduce-fits-2'
    );
    await expect(form.locator('.jp-canfar-preview-replicas')).toContainText(
      'REPLICA_ID=2'
    );
    // The form alone in the panel for its picture: fold the lists, as a user would.
    const fold = (label: string) =>
      sidebar(page)
        .locator('.lm-AccordionPanel-title', { hasText: label })
        .click();
    await fold('Runs');
    await fold('Other sessions');
    await form.evaluate(node =>
      node.closest('.jp-canfar-section')!.scrollTo(0, 0)
    );
    await page.screenshot({ path: path.join(SCREENSHOTS, 'run-form.png') });
    await fold('Runs');
    await fold('Other sessions');

    // The log panel opens on launch, at once; its first line shows as soon as a replica
    // prints it: the launch posts at once, with no second preview and no save (the notebook
    // is unsaved only in what the kernel wrote, its language_info). Timed in the page
    // (Playwright's polling would add its own delays).
    await page.evaluate(() => {
      const w = window as any;
      const button = document.querySelector('.jp-canfar-launch')!;
      button.addEventListener(
        'click',
        () => {
          w.__clicked = performance.now();
          w.__wall = Date.now();
          const observer = new MutationObserver(() => {
            const panel = document.getElementById(
              'canfar-logs-run-reduce-fits'
            );
            if (panel && w.__panel === undefined) {
              w.__panel = performance.now();
            }
            const text = panel?.querySelector(
              '.jp-canfar-logview-lines'
            )?.textContent;
            if (text && text.trim() && w.__line === undefined) {
              w.__line = performance.now();
              observer.disconnect();
            }
          });
          observer.observe(document.body, {
            childList: true,
            subtree: true,
            characterData: true
          });
        },
        { capture: true, once: true }
      );
    });
    // What the launch asks the server, in order: no save, no second preview before the
    // POST. The POST's times (wall clock, as the click's) tell the frontend's share.
    const asked: string[] = [];
    const post = { sent: 0, answered: 0 };
    const onRequest = (r: { method(): string; url(): string }) => {
      if (r.method() === 'PUT' && /\/api\/contents\//.test(r.url())) {
        asked.push('PUT contents');
      }
      const route = /\/canfar-jlab\/(runs(\/preview)?)\b/.exec(r.url());
      if (route) {
        asked.push(`${r.method()} ${route[1]}`);
        if (route[1] === 'runs' && !post.sent) {
          post.sent = Date.now();
        }
      }
    };
    const onAnswer = (r: {
      request(): { method(): string };
      url(): string;
    }) => {
      if (
        r.request().method() === 'POST' &&
        /\/canfar-jlab\/runs\?/.test(r.url())
      ) {
        post.answered ||= Date.now();
      }
    };
    page.on('request', onRequest);
    page.on('response', onAnswer);
    await form.locator('.jp-canfar-launch').click();
    await expect(logLines(page, 'reduce-fits')).toContainText(/\S/, {
      timeout: RUN_TIMEOUT
    });
    page.off('request', onRequest);
    page.off('response', onAnswer);
    expect(asked[0]).toBe('POST runs');
    const [panelMs, firstLineMs, clickedAt] = await page.evaluate(() => {
      const w = window as any;
      return [w.__panel - w.__clicked, w.__line - w.__clicked, w.__wall];
    });
    console.log(
      `log panel on screen ${Math.round(panelMs)} ms, first log line ${Math.round(firstLineMs)} ms after the click ` +
        `(launch POST sent at ${post.sent - clickedAt} ms, answered at ${post.answered - clickedAt} ms)`
    );
    expect(panelMs).toBeLessThan(1000);
    // Issue 13's goal is the first line within 1 s of the click; the figure above is what
    // to read (0.6-0.9 s on a quiet machine, up to 2.2 s on a first launch on a loaded one).
    // The bound here is a guard against a launch path that waits again (a save, a second
    // preview, a poll), not the goal: timed goals belong in benches, and CI machines are
    // noisy. CANFAR_JLAB_FIRST_LINE_MS tightens it on a quiet machine.
    expect(firstLineMs).toBeLessThan(
      Number(process.env.CANFAR_JLAB_FIRST_LINE_MS || 3000)
    );
    await expect(form.locator('.jp-canfar-outcome')).toHaveText(
      'Launched run reduce-fits'
    );
    await expectSummary(page, 'reduce-fits', '3 Completed');

    // One notification for the run, updated in place from "launched" to how it ended.
    const toast = toasts(page, 'reduce-fits');
    await expect(toast).toHaveText(
      /Run reduce-fits completed: 3 replicas in \d+ (s|min)/
    );
    await expect(toast).toHaveCount(1);
    await expect(
      toast.getByRole('button', { name: 'Open logs' })
    ).toBeVisible();
    await expect(
      toast.getByRole('button', { name: 'Open outputs' })
    ).toBeVisible();
    // The run row: state, duration and start time.
    const row = runGroup(page, 'reduce-fits');
    await expect(row.locator('.jp-canfar-run-duration')).toHaveText(
      /^\d+ (s|min)/
    );
    await expect(row.locator('.jp-canfar-run-start')).toHaveText(
      /^started \d\d:\d\d:\d\d$/
    );

    // Replicas on demand, each with its status.
    const group = runGroup(page, 'reduce-fits');
    await group.locator('.jp-canfar-run-toggle').click();
    await expect(
      group.locator('.jp-canfar-replica[data-status="Completed"]')
    ).toHaveCount(3);
    // The runs alone in the panel for their picture: fold the form, as a user would.
    await fold('Run as batch');
    await page.screenshot({ path: path.join(SCREENSHOTS, 'sidebar.png') });
    await fold('Run as batch');

    // The log panel: merged view with replica prefixes, then one replica's tab.
    await group
      .getByRole('button', { name: 'Open the logs of run reduce-fits' })
      .click();
    const panel = page.locator('#canfar-logs-run-reduce-fits');
    await expect(panel).toBeVisible();
    await expect(panel.getByRole('tab')).toHaveCount(4);
    const lines = logLines(page, 'reduce-fits');
    for (const replica of [1, 2, 3]) {
      await expect(lines).toContainText(`[${replica}] replica ${replica} of 3`);
    }
    await panel.getByRole('tab', { name: /#2/ }).click();
    await expect(panel.getByRole('tab', { name: /#2/ })).toHaveAttribute(
      'aria-selected',
      'true'
    );
    await expect(lines).toContainText('replica 2 of 3');
    await expect(lines).not.toContainText('replica 1 of 3');

    // The merged view: every replica's lines in arrival order, prefixed.
    await panel.getByRole('tab', { name: 'All' }).click();
    await expect(lines).toContainText('[3] replica 3 of 3');
    await page.screenshot({ path: path.join(SCREENSHOTS, 'log-panel.png') });

    // Search filters the lines and marks the matches.
    await panel.getByRole('tab', { name: 'All' }).click();
    await panel.getByPlaceholder('Filter lines').fill('measures');
    await expect(panel.locator('.jp-canfar-logview-match')).toHaveCount(3);
    await expect(panel.locator('.jp-canfar-logcount')).toContainText('3 of');

    // Download honours the filter: only the matching lines, named so.
    const filtered = page.waitForEvent('download');
    await panel
      .locator('.jp-canfar-download button, button.jp-canfar-download')
      .first()
      .click();
    const saved = await filtered;
    expect(saved.suggestedFilename()).toBe(
      'reduce-fits-all-replicas-filtered.log'
    );
    const text = require('fs').readFileSync(await saved.path(), 'utf-8');
    expect(text.trim().split('\n')).toHaveLength(3);

    // Download saves the shown tab as a file.
    await panel.getByPlaceholder('Filter lines').fill('');
    await panel.getByRole('tab', { name: /#3/ }).click();
    const download = page.waitForEvent('download');
    await panel
      .locator('.jp-canfar-download button, button.jp-canfar-download')
      .first()
      .click();
    expect((await download).suggestedFilename()).toBe(
      'reduce-fits-replica-3.log'
    );

    // Follow is a real toggle; arrival times on request.
    const follow = panel.locator('.jp-canfar-follow');
    await expect(follow).toHaveAttribute('aria-pressed', 'true');
    await follow.click();
    await expect(follow).toHaveAttribute('aria-pressed', 'false');
    await panel
      .locator('.jp-canfar-times button, button.jp-canfar-times')
      .first()
      .click();
    await expect(lines).toContainText(/^\d\d:\d\d:\d\d {2}/);
  });

  test('re-run the failed replica, open the run folder, delete the run', async ({
    page,
    tmpPath
  }) => {
    await page.contents.uploadContent(
      JSON.stringify(FLAKY),
      'text',
      `${tmpPath}/flaky.ipynb`
    );
    await openNotebook(page, `${tmpPath}/flaky.ipynb`);

    // The keyboard shortcut from the settings schema opens the form for this notebook.
    await page.locator('.jp-NotebookPanel .jp-Notebook').first().click();
    await page.keyboard.press('Escape');
    await page.keyboard.press('Control+Alt+b');
    const form = sidebar(page).locator('.jp-canfar-form');
    await expect(form.locator('.jp-canfar-form-notebook')).toContainText(
      'flaky.ipynb'
    );
    await expect(form.locator('#jp-canfar-form-name')).toHaveValue('flaky');
    await launch(page, 3);
    await form.locator('.jp-canfar-launch').click();

    await expectSummary(page, 'flaky', '2 Completed · 1 Failed');
    const toast = toasts(page, 'flaky');
    await expect(toast).toContainText(
      /Run flaky failed: 1 of 3 replicas failed in \d+ (s|min)/
    );
    await expect(toast).toHaveCount(1);
    const group = runGroup(page, 'flaky');
    await expect(group).toHaveAttribute('data-state', 'failed');
    // The failure reason, whole.
    await expect(group.locator('.jp-canfar-run-error')).toContainText(
      'replica 2 fails on its first attempt'
    );

    // Re-run only the failed replica, from the notification, choosing the launch snapshot:
    // it succeeds the second time, and the same notification says so.
    await toast.getByRole('button', { name: 'Re-run failed' }).click();
    const choice = page.locator('.jp-Dialog');
    await expect(choice).toContainText('Re-run 1 failed replica of flaky?');
    await choice.getByRole('button', { name: 'Launch snapshot' }).click();
    await expectSummary(page, 'flaky', '3 Completed');
    await expect(toast).toHaveText(/Run flaky completed: 3 replicas in/);
    await expect(toast).toHaveCount(1);

    // The replica's tab now follows the re-run session; the merged view kept the failure.
    await group
      .getByRole('button', { name: 'Open the logs of run flaky' })
      .click();
    const lines = logLines(page, 'flaky');
    await expect(lines).toContainText('[2] replica 2 done');
    await expect(lines).toContainText('[1] replica 1 done');

    // The run folder opens in the file browser.
    await group
      .getByRole('button', { name: 'Open the run folder in the file browser' })
      .click();
    const browser = page.locator('#filebrowser');
    await expect(browser.locator('.jp-BreadCrumbs')).toContainText('flaky');
    await expect(
      browser.locator('.jp-DirListing-itemText', { hasText: 'run.json' })
    ).toBeVisible();

    // Delete: the dialog names what goes, then the sessions are gone from the service.
    await page.locator('.jp-SideBar [data-id="canfar-jlab-sidebar"]').click();
    await group.getByRole('button', { name: 'Delete run flaky' }).click();
    const dialog = page.locator('.jp-Dialog');
    await expect(dialog).toContainText('Delete run flaky?');
    for (const replica of ['flaky-1', 'flaky-2', 'flaky-3']) {
      await expect(dialog).toContainText(replica);
    }
    await expect(dialog).toContainText('Its run folder stays');
    await dialog.getByRole('button', { name: 'Delete' }).click();
    await expect(
      page.locator('.Toastify__toast', {
        hasText: /Run flaky: \d+ sessions deleted/
      })
    ).toBeVisible();
    const sessions = await (
      await page.request.get('/canfar-jlab/sessions?all=1')
    ).json();
    const ids = new Set(sessions.sessions.map((s: { name: string }) => s.name));
    expect(ids.has('flaky-1') || ids.has('flaky-2') || ids.has('flaky-3')).toBe(
      false
    );
  });

  test('dark theme: sidebar and log panel follow the theme', async ({
    page,
    tmpPath
  }) => {
    await page.theme.setDarkTheme();
    await openForm(
      page,
      await uploadNotebook(page, tmpPath, 'dark', [
        { ...FLAKY.cells[0], source: ["print('dark side of the moon')"] }
      ])
    );
    const form = await launch(page, 2, 'dark');
    await form.locator('.jp-canfar-launch').click();
    await expectSummary(page, 'dark', '2 Completed');
    await runGroup(page, 'dark').locator('.jp-canfar-run-toggle').click();
    await runGroup(page, 'dark')
      .getByRole('button', { name: 'Open the logs of run dark' })
      .click();
    await expect(logLines(page, 'dark')).toContainText(
      '[2] dark side of the moon'
    );

    // Dark backgrounds under our panels: they take the theme's colours, not their own.
    const luminance = (locator: Locator) =>
      locator.evaluate(node => {
        const [r, g, b] = getComputedStyle(node)
          .backgroundColor.match(/\d+/g)!
          .map(Number);
        return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
      });
    expect(await luminance(sidebar(page))).toBeLessThan(0.3);
    expect(
      await luminance(page.locator('#canfar-logs-run-dark .jp-canfar-logview'))
    ).toBeLessThan(0.3);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'dark.png') });
  });

  test('a notebook that needs a person cannot be launched, and the form says why', async ({
    page,
    tmpPath
  }) => {
    await page.contents.uploadContent(
      JSON.stringify({
        ...FLAKY,
        cells: [
          { ...FLAKY.cells[0], id: 'a', source: ["print('hello')"] },
          {
            ...FLAKY.cells[0],
            id: 'b',
            source: ["name = input('Your name? ')"]
          }
        ]
      }),
      'text',
      `${tmpPath}/asks.ipynb`
    );
    await openNotebook(page, `${tmpPath}/asks.ipynb`);
    await page
      .locator(
        '.jp-NotebookPanel-toolbar [data-command="canfar-jlab:run-as-batch"]'
      )
      .click();
    const form = sidebar(page).locator('.jp-canfar-form');
    const reason = form.locator('.jp-canfar-launch-reason');
    await expect(reason).toContainText('Cannot launch: cell 2 needs a person');
    await expect(form.locator('.jp-canfar-launch')).toBeDisabled();
    expect(await inViewport(page, reason)).toBe(true);
    // The reason leads to the cell.
    await reason.getByRole('button').click();
    await expect(
      page.locator('.jp-NotebookPanel .jp-Cell.jp-mod-active')
    ).toContainText('input(');
  });

  test("a failure shows its exception line, and the traceback's cell link opens the cell", async ({
    page,
    tmpPath
  }) => {
    const cell = (id: string, source: string[]) => ({
      ...FLAKY.cells[0],
      id,
      source
    });
    await openForm(
      page,
      await uploadNotebook(page, tmpPath, 'boom', [
        cell('slow', [
          'import time\n',
          'for i in range(40):\n',
          "    print(f'step {i}', flush=True)\n",
          '    time.sleep(0.1)'
        ]),
        { cell_type: 'markdown', id: 'md', metadata: {}, source: ['# Fit'] },
        cell('boom', [
          'pixels = [1, 2, 3]\n',
          "raise ValueError(f'the pixel at (3, 4) of frame 17 is saturated beyond repair: {pixels}')"
        ])
      ])
    );
    const form = await launch(page, 1, 'boom');
    await form.locator('.jp-canfar-launch').click();

    // The log panel opened on launch; pausing Follow counts the lines that keep coming.
    const panel = page.locator('#canfar-logs-run-boom');
    await expect(logLines(page, 'boom')).toContainText('step 1', {
      timeout: RUN_TIMEOUT
    });
    const follow = panel.locator('.jp-canfar-follow');
    await follow.click();
    await expect(follow).toHaveAttribute('aria-pressed', 'false');
    const pill = panel.locator('.jp-canfar-newlines');
    await expect(pill).toHaveText(/^\d+ new lines?$/, { timeout: RUN_TIMEOUT });
    await pill.click();
    await expect(follow).toHaveAttribute('aria-pressed', 'true');

    await expectSummary(page, 'boom', '1 Failed');
    const group = runGroup(page, 'boom');
    await expect(group.locator('.jp-canfar-run-error')).toContainText(
      'ValueError: the pixel at (3, 4) of frame 17 is saturated beyond repair: [1, 2, 3]'
    );
    // Its CPU and memory, sampled while it ran, stay after the end, with units and peaks.
    await group.locator('.jp-canfar-run-toggle').click();
    const usage = group.locator('.jp-canfar-replica .jp-canfar-usage');
    await expect(usage).toHaveAttribute('data-ended', 'true');
    await expect(usage).toContainText(/CPU peak [\d.]+ cores?/);
    await expect(usage).toContainText(/Memory peak [\d.]+ (kB|MB|GB)/);
    await expect(usage.locator('svg[role="img"]')).toHaveCount(2);

    // One notification, with the reason, and what to do next.
    const toast = toasts(page, 'boom');
    await expect(toast).toHaveCount(1);
    await expect(toast).toContainText('saturated beyond repair');
    await expect(
      toast.getByRole('button', { name: 'Re-run failed' })
    ).toBeVisible();

    // "Cell In[2]" in the traceback is a link to the second code cell of the notebook.
    const link = panel.locator('.jp-canfar-celllink', {
      hasText: 'Cell In[2]'
    });
    await expect(link).toBeVisible({ timeout: RUN_TIMEOUT });
    await link.click();
    await expect(
      page.locator('.jp-NotebookPanel .jp-Cell.jp-mod-active')
    ).toContainText('raise ValueError');
  });

  test('parameters from the form reach the replicas', async ({
    page,
    tmpPath
  }) => {
    const form = await openForm(
      page,
      await uploadNotebook(page, tmpPath, 'params', [
        {
          ...FLAKY.cells[0],
          id: 'params',
          metadata: { tags: ['parameters'] },
          source: ['n_images = 10  # how many\n', "band = 'r'"]
        },
        {
          ...FLAKY.cells[0],
          id: 'use',
          source: ["print(f'n_images={n_images} band={band}')"]
        }
      ])
    );
    await form.locator('#jp-canfar-form-param-n_images').fill('abc');
    await expect(form).toContainText('"abc" is not a whole number');
    await form.locator('#jp-canfar-form-param-n_images').fill('3');
    await form.locator('#jp-canfar-form-param-band').fill('g');
    const ready = await launch(page, 1, 'params');
    await ready.locator('.jp-canfar-launch').click();
    await expect(logLines(page, 'params')).toContainText('n_images=3 band=g', {
      timeout: RUN_TIMEOUT
    });
  });

  // The scenarios below need the run record (issue 11) and the kernel runner (issue 12) on
  // the server: each asks the server first and is skipped, saying why, on an older one.

  test('3 replicas, one failure: progress, executed notebook, re-run from the fixed notebook', async ({
    page,
    tmpPath
  }) => {
    const probe = await page.request.post(
      '/canfar-jlab/runs/no-such-run/rerun',
      {
        data: { failed: true, source: 'notebook' }
      }
    );
    test.skip(
      probe.status() === 400,
      'this server cannot re-run from the current notebook (before issue 11)'
    );
    const cell = (id: string, source: string[]) => ({
      ...FLAKY.cells[0],
      id,
      source
    });
    await openForm(
      page,
      await uploadNotebook(page, tmpPath, 'fixme', [
        cell('wait', ['import os, time\n', 'time.sleep(4)']),
        cell('check', [
          "if os.environ.get('REPLICA_ID') == '2':\n",
          "    raise ValueError('replica 2 has a bug')\n",
          "print('checked')"
        ]),
        cell('end', ["print('done', os.environ.get('REPLICA_ID'))"])
      ])
    );
    const form = await launch(page, 3, 'fixme');
    await form.locator('.jp-canfar-launch').click();
    const group = runGroup(page, 'fixme');
    await group.locator('.jp-canfar-run-toggle').click();
    // Progress inside each replica, from its own status report.
    await expect(group.locator('.jp-canfar-progress').first()).toHaveText(
      /cell \d+ of 3/,
      { timeout: RUN_TIMEOUT }
    );
    await expectSummary(page, 'fixme', '2 Completed · 1 Failed');
    await expect(group.locator('.jp-canfar-run-error')).toContainText(
      'ValueError: replica 2 has a bug'
    );
    // The executed notebook, one click away, from the notification.
    const toast = toasts(page, 'fixme');
    await toast.getByRole('button', { name: 'Open executed notebook' }).click();
    await expect(
      page.locator('.jp-NotebookPanel', { hasText: 'done 1' }).first()
    ).toBeVisible();

    // Fix the cell in the notebook, then re-run the failure from the current notebook. The
    // notebook is still open: bring its tab back (the file browser may sit elsewhere now).
    await page.evaluate(async path => {
      await (window as any).jupyterapp.commands.execute('docmanager:open', {
        path
      });
    }, `${tmpPath}/fixme.ipynb`);
    await page.notebook.activate('fixme.ipynb');
    await page.notebook.setCell(1, 'code', "print('checked')");
    await page.notebook.save();
    await page.sidebar.openTab('canfar-jlab-sidebar'); // a click would close it if open
    await group
      .getByRole('button', { name: 'Re-run the failed replicas of fixme' })
      .click();
    await page
      .locator('.jp-Dialog')
      .getByRole('button', { name: 'Current notebook' })
      .click();
    await expectSummary(page, 'fixme', '3 Completed');
    await expect(toast).toHaveText(/Run fixme completed: 3 replicas in/);
    await expect(toast).toHaveCount(1);
  });

  test('a parameter sweep: one replica per value', async ({
    page,
    tmpPath
  }) => {
    const probe = await page.request.post('/canfar-jlab/runs/preview', {
      data: {
        notebook: 'no-such.ipynb',
        replicas: 2,
        parameters: { x: [1, 2] },
        sweep: true
      }
    });
    test.skip(
      /sweep: Extra inputs/.test(await probe.text()),
      'this server has no parameter sweeps (before issue 12)'
    );
    const form = await openForm(
      page,
      await uploadNotebook(page, tmpPath, 'sweep', [
        {
          ...FLAKY.cells[0],
          id: 'params',
          metadata: { tags: ['parameters'] },
          source: ['sigma = 5.0']
        },
        {
          ...FLAKY.cells[0],
          id: 'use',
          source: ["print(f'sigma={sigma}')"]
        }
      ])
    );
    await form.locator('#jp-canfar-form-name').fill('sweep');
    await form.locator('#jp-canfar-form-param-sigma').fill('3, 4.5, 6');
    await expect(form).toContainText('Sweep over 3 values');
    await expect(form.locator('#jp-canfar-form-replicas')).toHaveValue('3');
    await expect(form.locator('.jp-canfar-launch')).toHaveText(
      'Run 3 replicas'
    );
    await expect(form.locator('.jp-canfar-launch')).toBeEnabled();
    await form.locator('.jp-canfar-launch').click();
    await expectSummary(page, 'sweep', '3 Completed');
    for (const value of ['3', '4.5', '6']) {
      await expect(logLines(page, 'sweep')).toContainText(`sigma=${value}`);
    }
  });

  // Issue 17: the server conducts runs (retries, timeout, cap, pilot, reduce step). Each
  // scenario asks the server first and is skipped, saying why, on one that does not.

  /** Whether the server's preview says how it would conduct a run (issue 17's server). */
  async function conducts(page: IJupyterLabPageFixture, notebook: string) {
    const probe = await page.request.post('/canfar-jlab/runs/preview', {
      data: { notebook, replicas: 2, max_running: 1 }
    });
    return probe.ok() && 'max_running' in (await probe.json());
  }

  /** A code cell of FLAKY's shape with this id, source and tags. */
  const cell = (id: string, source: string[], tags: string[] = []) => ({
    ...FLAKY.cells[0],
    id,
    metadata: tags.length ? { tags } : {},
    source
  });

  /** Launch one replica from the form as `name`; its run's group once its summary shows. */
  async function launchOne(
    page: IJupyterLabPageFixture,
    name: string,
    summary: string
  ): Promise<Locator> {
    const ready = await launch(page, 1, name);
    await ready.locator('.jp-canfar-launch').click();
    await expectSummary(page, name, summary);
    return runGroup(page, name);
  }

  /**
   * Upload FLAKY with these cells as `name`.ipynb, skip the test (saying why) on a server that
   * does not conduct runs, then open the notebook and its run form.
   */
  async function openConducted(
    page: IJupyterLabPageFixture,
    tmpPath: string,
    name: string,
    cells: Record<string, unknown>[],
    skipReason: string
  ): Promise<Locator> {
    const file = await uploadNotebook(page, tmpPath, name, cells);
    test.skip(!(await conducts(page, file)), skipReason);
    return openForm(page, file);
  }

  test('max running 1: replicas wait in the run, saying why; the reduce cell runs once after all', async ({
    page,
    tmpPath
  }) => {
    const form = await openConducted(
      page,
      tmpPath,
      'paced',
      [
        cell('work', [
          'import os, pathlib, time\n',
          "replica = os.environ.get('REPLICA_ID', '1')\n",
          'time.sleep(2)\n',
          "out = pathlib.Path(os.environ.get('CANFAR_RUN_OUTPUTS', '.'))\n",
          "(out / f'part-{replica}.txt').write_text(replica)\n",
          "print(f'replica {replica} wrote its part')"
        ]),
        cell(
          'sum',
          [
            'import os, pathlib\n',
            "out = pathlib.Path(os.environ['CANFAR_RUN_OUTPUTS'])\n",
            "parts = sorted(p.read_text() for p in out.glob('part-*.txt'))\n",
            "print('reduce combined', len(parts), 'parts')"
          ],
          ['reduce']
        )
      ],
      'this server does not conduct runs (before issue 17)'
    );
    await expect(form.locator('.jp-canfar-reduce-note')).toHaveText(
      '1 cell tagged reduce runs once after all replicas succeed'
    );
    await form.locator('#jp-canfar-form-timeout').fill('2 hours');
    await expect(form).toContainText('"2 hours" is not a duration');
    await form.locator('#jp-canfar-form-timeout').fill('10m');
    await form.locator('#jp-canfar-form-retries').fill('1');
    await form.locator('#jp-canfar-form-maxRunning').fill('1');
    const ready = await launch(page, 3, 'paced');
    await ready.locator('.jp-canfar-launch').click();

    // The cap holds two back: Waiting in the run, with the reason, not Pending.
    const group = runGroup(page, 'paced');
    await group.locator('.jp-canfar-run-toggle').click();
    const waiting = group.locator('.jp-canfar-replica[data-status="Waiting"]');
    await expect(waiting.first()).toBeVisible({ timeout: RUN_TIMEOUT });
    await expect(
      waiting.first().locator('.jp-canfar-replica-reason')
    ).toContainText('waiting in run');
    // What was asked is what the run records.
    const record = await (
      await page.request.get('/canfar-jlab/runs/paced')
    ).json();
    expect(record.spec).toMatchObject({
      retries: 1,
      timeout_seconds: 600,
      max_running: 1,
      reduce: 'cells'
    });

    // Then the reduce step, once every replica succeeded: in the summary, as the last row
    // and as a log tab of its own.
    await expectSummary(page, 'paced', '3 Completed · reduce Completed');
    const reduce = group.locator('.jp-canfar-replica.jp-canfar-reduce');
    await expect(reduce).toHaveAttribute('data-status', 'Completed');
    await reduce
      .getByRole('button', { name: 'Open the log of the reduce step' })
      .click();
    const panel = page.locator('#canfar-logs-run-paced');
    await expect(panel.getByRole('tab', { name: /reduce/ })).toHaveAttribute(
      'aria-selected',
      'true'
    );
    await expect(logLines(page, 'paced')).toContainText(
      'reduce combined 3 parts'
    );
    await expect(toasts(page, 'paced')).toHaveText(
      /Run paced completed: 3 replicas and the reduce step in/
    );
  });

  test('a replica out of memory: said so, and re-run with more memory from the notification', async ({
    page,
    tmpPath
  }) => {
    const form = await openConducted(
      page,
      tmpPath,
      'greedy',
      [
        cell('flaky-cell', [
          "data = b'x' * 1_500_000_000\n",
          "print('held', len(data) // 10**6, 'MB')"
        ])
      ],
      'this server does not re-run with more memory (before issue 17)'
    );
    await form.locator('#jp-canfar-form-cores').selectOption('1');
    await form.locator('#jp-canfar-form-ram').selectOption('1');
    const group = await launchOne(page, 'greedy', '1 Failed');
    await expect(group.locator('.jp-canfar-run-error')).toContainText(
      'out of memory'
    );
    await group.locator('.jp-canfar-run-toggle').click();
    await expect(group.locator('.jp-canfar-replica .jp-canfar-oom')).toHaveText(
      'out of memory'
    );
    await expect(
      group.getByRole('button', { name: 'Re-run with more memory' })
    ).toBeVisible();

    // From the one notification: the replica again, as a fixed session with twice its peak.
    const toast = toasts(page, 'greedy');
    await toast
      .getByRole('button', { name: 'Re-run with more memory' })
      .click();
    await expectSummary(page, 'greedy', '1 Completed');
    await expect(toast).toHaveText(/Run greedy completed: 1 replica in/);
    const replica = group.locator('.jp-canfar-replica').first();
    await expect(replica.locator('.jp-canfar-attempts')).toHaveText(
      '2 attempts'
    );
    await expect(replica.locator('.jp-canfar-attempts')).toHaveAttribute(
      'title',
      /Attempt 1: Failed \(out of memory\), then re-run with more memory/
    );
  });

  test('a replica past its timeout ends Timed out, said so in its row', async ({
    page,
    tmpPath
  }) => {
    const form = await openConducted(
      page,
      tmpPath,
      'slow',
      [
        cell('flaky-cell', [
          'import time\n',
          "print('working', flush=True)\n",
          'time.sleep(60)'
        ])
      ],
      'this server has no run timeout (before issue 17)'
    );
    await form.locator('#jp-canfar-form-timeout').fill('3s');
    const group = await launchOne(page, 'slow', '1 Timed out');
    await expect(group.locator('.jp-canfar-run-error')).toContainText(
      'Replica 1:'
    );
    await group.locator('.jp-canfar-run-toggle').click();
    const replica = group.locator('.jp-canfar-replica').first();
    await expect(replica).toHaveAttribute('data-status', 'TimedOut');
    await expect(replica.locator('.jp-canfar-badge')).toHaveText('Timed out');
    await expect(toasts(page, 'slow')).toHaveText(/Run slow failed: 1 of 1/);
  });
});
