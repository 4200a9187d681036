import plugin, { ICanfarModel } from '../index';
import { offlineModel, makeRun, replica } from './support';

describe('ICanfarModel token', () => {
  it('is what the plugin provides, under a stable name', () => {
    expect(plugin.provides).toBe(ICanfarModel);
    expect(ICanfarModel.name).toBe('canfar-jlab:ICanfarModel');
  });

  it('gives other extensions the runs, their changes and their logs', () => {
    const { model, send } = offlineModel();
    const published: ICanfarModel = model;
    const seen: string[] = [];
    published.changed.connect(() => seen.push('changed'));
    send({
      type: 'sessions',
      t: 1,
      sessions: [],
      runs: [makeRun('fit', [replica(1, 'Running')], { state: 'active' })]
    });
    expect(seen).toEqual(['changed']);
    expect(published.loaded).toBe(true);
    expect(published.run('fit')?.state).toBe('active');
    const log = published.openLog('s1');
    send({
      type: 'log',
      session: 's1',
      run: 'fit',
      replica: 1,
      offset: 0,
      next_offset: 6,
      text: 'hello\n'
    });
    expect(log.text()).toBe('hello\n');
    expect(log.line(0)).toBe('hello');
    published.closeLog('s1');
    model.dispose();
  });
});
