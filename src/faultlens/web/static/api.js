// The one way the pages talk to the JSON API: same origin, optional bearer key, the one error body.

const KEY_NAME = 'faultlens.apiKey';
export const AUTH_EVENT = 'faultlens:auth-required';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }

  /** 404 and 503 mean "this server does not offer that yet / right now": panels go quiet instead of red. */
  get unavailable() {
    return this.status === 404 || this.status === 503 || this.status === 501;
  }
}

// sessionStorage keeps the key for this tab only; it throws in some locked-down browsers.
export function storedKey() {
  try {
    return sessionStorage.getItem(KEY_NAME) || '';
  } catch {
    return '';
  }
}

export function storeKey(value) {
  try {
    if (value) sessionStorage.setItem(KEY_NAME, value);
    else sessionStorage.removeItem(KEY_NAME);
  } catch {
    /* the key then lives only until the next request fails */
  }
}

export function apiUrl(path, params) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== '') url.searchParams.set(name, String(value));
  }
  return url;
}

export async function getJSON(path, params, { signal } = {}) {
  const headers = { Accept: 'application/json' };
  const key = storedKey();
  if (key) headers.Authorization = 'Bearer ' + key;
  let response;
  try {
    response = await fetch(apiUrl(path, params), { headers, signal, credentials: 'same-origin' });
  } catch (error) {
    if (error && error.name === 'AbortError') throw error;
    throw new ApiError(0, 'network_error', 'The server could not be reached.');
  }
  if (response.ok) return response.json();
  let body = null;
  try {
    body = await response.json();
  } catch {
    /* not the JSON error body: keep the status text */
  }
  const error = body && body.error ? body.error : {};
  const failure = new ApiError(response.status, error.code || 'http_' + response.status,
    error.message || response.statusText || 'Request failed');
  if (response.status === 401) document.dispatchEvent(new CustomEvent(AUTH_EVENT, { detail: failure.message }));
  throw failure;
}
