import { ISettingRegistry } from '@jupyterlab/settingregistry';

import { DEFAULT_SETTINGS, readSettings } from '../settings';

function settings(values: Record<string, unknown>): ISettingRegistry.ISettings {
  return {
    get: (key: string) => ({ composite: values[key] })
  } as unknown as ISettingRegistry.ISettings;
}

describe('settings', () => {
  it('opens the log panel on launch unless turned off, and shows times only on request', () => {
    expect(readSettings(settings({}))).toEqual(DEFAULT_SETTINGS);
    expect(DEFAULT_SETTINGS.openLogsOnLaunch).toBe(true);
    expect(DEFAULT_SETTINGS.logTimestamps).toBe(false);
    const changed = readSettings(
      settings({
        openLogsOnLaunch: false,
        logTimestamps: true,
        defaultReplicas: 999
      })
    );
    expect(changed.openLogsOnLaunch).toBe(false);
    expect(changed.logTimestamps).toBe(true);
    expect(changed.defaultReplicas).toBe(1); // out of range: the default
  });
});
