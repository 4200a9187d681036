import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** The server extension's route prefix under the Jupyter base URL. */
export const ROUTE_PREFIX = 'canfar-jlab';

/**
 * A failed call to the canfar-jlab server extension.
 *
 * `status` is the HTTP status, or 0 when the server could not be reached at all.
 */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/**
 * Call a canfar-jlab route and parse its JSON answer.
 *
 * Errors become an `ApiError` carrying the server's one-line message, so views can
 * show it as is.
 */
export async function requestAPI<T>(
  endPoint: string,
  settings: ServerConnection.ISettings,
  init: RequestInit = {}
): Promise<T> {
  const url = URLExt.join(settings.baseUrl, ROUTE_PREFIX, endPoint);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ApiError(
      `Cannot reach the Jupyter server: ${(error as Error).message ?? error}`,
      0
    );
  }
  const text = await response.text();
  let data: any = null;
  if (text.length > 0) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!response.ok) {
    const message =
      (data && typeof data === 'object' && (data.message || data.reason)) ||
      response.statusText ||
      `HTTP ${response.status}`;
    throw new ApiError(String(message), response.status);
  }
  return data as T;
}
