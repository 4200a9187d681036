// The user settings of schema/plugin.json, read with their defaults.
import { ISettingRegistry } from '@jupyterlab/settingregistry';

export interface ICanfarSettings {
  /** Image for new runs; empty lets the service choose. */
  defaultImage: string;
  /** Cores per replica; 0 means flexible. */
  defaultCores: number;
  /** RAM per replica in GB; 0 means flexible. */
  defaultRam: number;
  defaultReplicas: number;
  /** Open the run's log panel when it is launched. */
  openLogsOnLaunch: boolean;
  /** Prefix log lines with their arrival time. */
  logTimestamps: boolean;
}

export const DEFAULT_SETTINGS: ICanfarSettings = {
  defaultImage: '',
  defaultCores: 0,
  defaultRam: 0,
  defaultReplicas: 1,
  openLogsOnLaunch: true,
  logTimestamps: false
};

function whole(
  value: unknown,
  fallback: number,
  min: number,
  max: number
): number {
  return typeof value === 'number' &&
    Number.isInteger(value) &&
    value >= min &&
    value <= max
    ? value
    : fallback;
}

/** The settings as the UI uses them; anything out of range falls back to the default. */
export function readSettings(
  settings: ISettingRegistry.ISettings
): ICanfarSettings {
  const get = (key: keyof ICanfarSettings) => settings.get(key).composite;
  const text = (value: unknown) =>
    typeof value === 'string' ? value.trim() : '';
  return {
    defaultImage: text(get('defaultImage')),
    defaultCores: whole(get('defaultCores'), 0, 0, 256),
    defaultRam: whole(get('defaultRam'), 0, 0, 512),
    defaultReplicas: whole(get('defaultReplicas'), 1, 1, 256),
    openLogsOnLaunch: get('openLogsOnLaunch') !== false,
    logTimestamps: get('logTimestamps') === true
  };
}
