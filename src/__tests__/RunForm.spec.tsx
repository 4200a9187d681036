import { nullTranslator } from '@jupyterlab/translation';
import {
  act,
  fireEvent,
  render,
  screen,
  waitFor,
  within
} from '@testing-library/react';
import * as React from 'react';

import { IContext, ILaunchRequest, IPreview } from '../api';
import { ILaunchOutcome, IRunFormProps, RunForm } from '../components/RunForm';
import { DEFAULT_SETTINGS } from '../settings';

const trans = nullTranslator.load('canfar_jlab');

const context: IContext = {
  cores: { default: 2, options: [1, 2, 4] },
  memoryGB: { default: 4, options: [1, 2, 4, 8] },
  gpus: { options: [] }
};

function preview(
  request: ILaunchRequest,
  problems: IPreview['problems'] = []
): IPreview {
  return {
    problems,
    replicas: Array.from({ length: request.replicas }, (_, i) => ({
      index: i + 1,
      name: `${request.name}-${i + 1}`,
      env: {
        REPLICA_ID: String(i + 1),
        REPLICA_COUNT: String(request.replicas),
        RUN: 'x'
      }
    })),
    argv: ['python', 'runner.py', 'script.py'],
    image: 'images.canfar.net/skaha/astroml:latest',
    folder: '/home/me/canfar-runs/x'
  };
}

function setup(patch: Partial<IRunFormProps> = {}) {
  const previews: ILaunchRequest[] = [];
  const launches: ILaunchRequest[] = [];
  const props: IRunFormProps = {
    notebook: { path: 'work/Reduce FITS.ipynb', dirty: false, revision: 0 },
    settings: DEFAULT_SETTINGS,
    catalog: {
      images: {
        images: [
          {
            id: 'images.canfar.net/skaha/astroml:latest',
            types: ['headless', 'notebook']
          },
          { id: 'images.canfar.net/skaha/desktop:1', types: ['desktop'] }
        ],
        note: ''
      },
      context,
      error: null
    },
    takenNames: new Set(['taken']),
    preview: async request => {
      previews.push(request);
      return preview(request);
    },
    launch: async (request): Promise<ILaunchOutcome> => {
      launches.push(request);
      return {
        run: {
          name: request.name!,
          replicas: [{ name: `${request.name}-1` }]
        } as any
      };
    },
    trans,
    previewDelay: 0,
    ...patch
  };
  const view = render(<RunForm {...props} />);
  return { props, previews, launches, view };
}

const field = (id: string) =>
  document.getElementById(`jp-canfar-form-${id}`) as HTMLInputElement;
const launchButton = () =>
  screen.getByRole('button', { name: /^Run \d+ replicas?$/ });

// Wait for the preview and the enabled Launch button, then press it.
async function launchOncePreviewed(): Promise<void> {
  await screen.findByText('What will be launched');
  await waitFor(() =>
    expect((launchButton() as HTMLButtonElement).disabled).toBe(false)
  );
  await act(async () => {
    fireEvent.click(launchButton());
  });
}

describe('RunForm', () => {
  it('starts from the notebook name and the settings, and previews what will run', async () => {
    const { previews } = setup({
      settings: { ...DEFAULT_SETTINGS, defaultReplicas: 3 }
    });
    expect(field('name').value).toBe('reduce-fits');
    expect(field('replicas').value).toBe('3');
    await screen.findByText('What will be launched');
    expect(previews[previews.length - 1]).toEqual({
      notebook: 'work/Reduce FITS.ipynb',
      name: 'reduce-fits',
      replicas: 3
    });
    // Each replica's own variables on its line; the shared ones once.
    expect(screen.getByText('REPLICA_ID=2 REPLICA_COUNT=3')).toBeTruthy();
    expect(screen.getByText('RUN=x')).toBeTruthy();
    expect(launchButton().textContent).toBe('Run 3 replicas');
    // Only headless images are offered, in the picker that opens on focus.
    fireEvent.focus(field('image'));
    const options = within(screen.getByRole('listbox')).getAllByRole('option');
    expect(options.map(o => o.getAttribute('title'))).toEqual([
      'images.canfar.net/skaha/astroml:latest'
    ]);
  });

  it('shows what is wrong next to the field and will not launch', async () => {
    const { launches } = setup();
    fireEvent.change(field('name'), { target: { value: 'Bad Name' } });
    fireEvent.change(field('replicas'), { target: { value: '0' } });
    expect(field('name').getAttribute('aria-invalid')).toBe('true');
    expect(screen.getByText(/Use a-z, 0-9/)).toBeTruthy();
    expect(screen.getByText('Between 1 and 256 replicas')).toBeTruthy();
    expect((launchButton() as HTMLButtonElement).disabled).toBe(true);
    fireEvent.submit(launchButton().closest('form')!);
    expect(launches).toEqual([]);
  });

  it("offers the service's cores and RAM, empty meaning flexible, and env rows", async () => {
    const { launches } = setup();
    fireEvent.change(field('cores'), { target: { value: '4' } });
    fireEvent.click(screen.getByRole('button', { name: 'Add variable' }));
    fireEvent.change(screen.getByLabelText('Name of variable 1'), {
      target: { value: 'BAND' }
    });
    fireEvent.change(screen.getByLabelText('Value of variable 1'), {
      target: { value: 'r' }
    });
    await launchOncePreviewed();
    expect(launches).toEqual([
      {
        notebook: 'work/Reduce FITS.ipynb',
        name: 'reduce-fits',
        replicas: 1,
        cores: 4,
        env: { BAND: 'r' }
      }
    ]);
    expect(await screen.findByText('Launched run reduce-fits')).toBeTruthy();
    // The next launch from this form gets a fresh name.
    expect(field('name').value).toBe('reduce-fits-r2');
  });

  it('asks for no preview while a launch is on its way (its save would), one after', async () => {
    let finish: (outcome: ILaunchOutcome) => void = () => undefined;
    const { props, previews, view } = setup({
      launch: () => new Promise<ILaunchOutcome>(resolve => (finish = resolve))
    });
    await screen.findByText('What will be launched');
    await waitFor(() =>
      expect((launchButton() as HTMLButtonElement).disabled).toBe(false)
    );
    const before = previews.length;
    await act(async () => {
      fireEvent.click(launchButton());
    });
    // The launch saved the notebook: a new revision, which would otherwise be checked.
    await act(async () => {
      view.rerender(
        <RunForm
          {...props}
          launch={props.launch}
          notebook={{ ...props.notebook, revision: 1 }}
        />
      );
      await new Promise(resolve => setTimeout(resolve, 20));
    });
    expect(previews.length).toBe(before);
    await act(async () => {
      finish({ problems: [] });
    });
    await waitFor(() => expect(previews.length).toBe(before + 1));
  });

  it('sends retries, a timeout in seconds, a cap and a pilot; says what reduce cells do', async () => {
    const { launches } = setup({
      settings: { ...DEFAULT_SETTINGS, defaultReplicas: 4 },
      reduceCells: 2
    });
    expect(
      screen.getByText(
        '2 cells tagged reduce run once after all replicas succeed'
      )
    ).toBeTruthy();
    expect(screen.getByText(/Replica 1 runs alone first/).id).toBe(
      'jp-canfar-form-pilot-note'
    );
    fireEvent.change(field('timeout'), { target: { value: '2 hours' } });
    expect(
      screen.getByText(
        '"2 hours" is not a duration: 30s, 90m, 2h, 1d or seconds'
      )
    ).toBeTruthy();
    expect(field('timeout').getAttribute('aria-invalid')).toBe('true');
    expect((launchButton() as HTMLButtonElement).disabled).toBe(true);
    fireEvent.change(field('timeout'), { target: { value: '90m' } });
    fireEvent.change(field('retries'), { target: { value: '2' } });
    fireEvent.change(field('maxRunning'), { target: { value: '2' } });
    fireEvent.click(field('pilot'));
    await launchOncePreviewed();
    expect(launches).toEqual([
      {
        notebook: 'work/Reduce FITS.ipynb',
        name: 'reduce-fits',
        replicas: 4,
        retries: 2,
        timeout_seconds: 5400,
        max_running: 2,
        pilot: true
      }
    ]);
  });

  it("takes the preview's count of reduce cells and shows replicas that will wait", async () => {
    setup({
      reduceCells: 0,
      settings: { ...DEFAULT_SETTINGS, defaultReplicas: 2 },
      preview: async request => ({
        ...preview(request),
        reduce_cells: [4],
        replicas: preview(request).replicas.map(r => ({
          ...r,
          waiting: r.index > 1 ? 'waiting for the pilot' : null
        }))
      })
    });
    expect(
      await screen.findByText(
        '1 cell tagged reduce runs once after all replicas succeed'
      )
    ).toBeTruthy();
    expect(screen.getByText('(waiting for the pilot)')).toBeTruthy();
  });

  it('lists export problems, links them to cells, and blocks the launch', async () => {
    const revealed: number[] = [];
    setup({
      preview: async request =>
        preview(request, [
          {
            cell: 3,
            line: 2,
            message: 'input() waits for a keyboard',
            cell_id: 'abc'
          }
        ]),
      revealCell: problem => revealed.push(problem.cell)
    });
    const alert = await screen.findByRole('alert');
    expect(alert.textContent).toContain('This problem stops the launch');
    expect(alert.textContent).toContain('input() waits for a keyboard');
    expect((launchButton() as HTMLButtonElement).disabled).toBe(true);
    fireEvent.click(screen.getByRole('button', { name: 'Cell 3, line 2' }));
    expect(revealed).toEqual([3]);
  });

  it('blocks a notebook with problems, saved or not, and says why next to the button', async () => {
    const revealed: number[] = [];
    setup({
      notebook: { path: 'a.ipynb', dirty: true, revision: 0 },
      preview: async request =>
        preview(request, [
          { cell: 1, line: 1, message: 'input() waits for a keyboard' }
        ]),
      revealCell: problem => revealed.push(problem.cell)
    });
    await screen.findByText(/unsaved changes/);
    const reason = await screen.findByText(
      'Cannot launch: cell 1 needs a person (input() waits for a keyboard). Fix it, or tag it skip-batch, and save.'
    );
    const button = launchButton() as HTMLButtonElement;
    expect(button.disabled).toBe(true);
    expect(button.getAttribute('aria-describedby')).toBe(
      'jp-canfar-launch-reason'
    );
    fireEvent.click(reason);
    expect(revealed).toEqual([1]);
  });

  it("offers the notebook's parameters, typed, and makes a sweep of a list", async () => {
    const { previews } = setup({
      parameters: [
        { name: 'n_images', type: 'int', literal: '8', comment: '' },
        { name: 'band', type: 'str', literal: "'r'", comment: '' }
      ]
    });
    const nImages = screen.getByLabelText(/n_images/) as HTMLInputElement;
    expect(nImages.placeholder).toBe('8');
    fireEvent.change(nImages, { target: { value: 'eight' } });
    expect(screen.getByText('"eight" is not a whole number')).toBeTruthy();
    expect((launchButton() as HTMLButtonElement).disabled).toBe(true);
    fireEvent.change(nImages, { target: { value: '4, 8, 16' } });
    fireEvent.change(screen.getByLabelText(/band/), {
      target: { value: 'g' }
    });
    expect(screen.getByText('Sweep over 3 values')).toBeTruthy();
    // One replica per value: the replica count follows the sweep.
    expect(field('replicas').value).toBe('3');
    expect(field('replicas').disabled).toBe(true);
    await waitFor(() =>
      expect(previews[previews.length - 1]).toEqual({
        notebook: 'work/Reduce FITS.ipynb',
        name: 'reduce-fits',
        replicas: 3,
        parameters: { n_images: [4, 8, 16], band: 'g' },
        sweep: true
      })
    );
    expect(launchButton().textContent).toBe('Run 3 replicas');
  });

  it('chooses a site among several logins, names secret variables, and shows the default image', async () => {
    const { previews } = setup({
      sites: ['canfar', 'srcnet-ch'],
      site: 'canfar'
    });
    // The preview says which image a launch without one would use.
    await waitFor(() =>
      expect(field('image').placeholder).toBe(
        'Default: images.canfar.net/skaha/astroml:latest'
      )
    );
    const siteField = document.getElementById(
      'jp-canfar-form-site'
    ) as HTMLSelectElement;
    expect(siteField.options[0].textContent).toBe('The active login (canfar)');
    fireEvent.change(siteField, { target: { value: 'srcnet-ch' } });
    fireEvent.change(field('secrets'), { target: { value: 'REPLICA_ID' } });
    expect(
      screen.getByText('"REPLICA_ID" is not a variable name replicas can get')
    ).toBeTruthy();
    expect((launchButton() as HTMLButtonElement).disabled).toBe(true);
    fireEvent.change(field('secrets'), {
      target: { value: 'API_TOKEN, DB_PASSWORD' }
    });
    await waitFor(() =>
      expect(previews[previews.length - 1]).toEqual({
        notebook: 'work/Reduce FITS.ipynb',
        name: 'reduce-fits',
        replicas: 1,
        site: 'srcnet-ch',
        secret_env: ['API_TOKEN', 'DB_PASSWORD']
      })
    );
  });

  it("shows the server's refusal and does not launch on it", async () => {
    setup({
      preview: async () => {
        throw new Error("the run name 'reduce-fits' is in use");
      }
    });
    expect((await screen.findByRole('alert')).textContent).toContain(
      'is in use'
    );
    expect((launchButton() as HTMLButtonElement).disabled).toBe(true);
  });

  it('takes new settings for the fields the user has not touched', async () => {
    const { props, view } = setup();
    fireEvent.change(field('replicas'), { target: { value: '5' } });
    view.rerender(
      <RunForm
        {...props}
        settings={{ ...DEFAULT_SETTINGS, defaultReplicas: 7, defaultCores: 2 }}
      />
    );
    expect(field('replicas').value).toBe('5');
    expect(field('cores').value).toBe('2');
  });
});
