// Entry module: theme toggle, API key form, then the page named by <body data-page>.

import { $, AUTH_EVENT, replace, s, storedKey, storeKey } from './lib.js';

const THEME_KEY = 'faultlens.theme';
let page = null;

function effectiveTheme() {
  const chosen = document.documentElement.dataset.theme;
  if (chosen === 'light' || chosen === 'dark') return chosen;
  return window.matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

function themeIcon(theme) {
  // Shows what a click switches to: a moon in light mode, a sun in dark mode.
  if (theme === 'light') {
    return s('svg', { viewBox: '0 0 24 24', width: 18, height: 18, 'aria-hidden': 'true' },
      s('path', { d: 'M21 12.8A9 9 0 1 1 11.2 3a7 7 0 0 0 9.8 9.8z', fill: 'currentColor' }));
  }
  return s('svg', { viewBox: '0 0 24 24', width: 18, height: 18, 'aria-hidden': 'true' },
    s('circle', { cx: 12, cy: 12, r: 4.5, fill: 'currentColor' }),
    s('path', {
      d: 'M12 1.5v3M12 19.5v3M1.5 12h3M19.5 12h3M4.6 4.6l2.1 2.1M17.3 17.3l2.1 2.1M4.6 19.4l2.1-2.1M17.3 6.7l2.1-2.1',
      stroke: 'currentColor', 'stroke-width': 2, 'stroke-linecap': 'round',
    }));
}

function syncThemeButton() {
  const button = $('#theme-toggle');
  const theme = effectiveTheme();
  const next = theme === 'dark' ? 'light' : 'dark';
  button.setAttribute('aria-label', `Switch to ${next} theme`);
  button.title = `Switch to ${next} theme`;
  button.setAttribute('aria-pressed', String(theme === 'dark'));
  replace(button, themeIcon(theme));
}

function initTheme() {
  $('#theme-toggle').addEventListener('click', () => {
    const next = effectiveTheme() === 'dark' ? 'light' : 'dark';
    document.documentElement.dataset.theme = next;
    try {
      localStorage.setItem(THEME_KEY, next);
    } catch {
      /* the choice then lasts for this page only */
    }
    syncThemeButton();
    document.dispatchEvent(new CustomEvent('faultlens:theme'));
  });
  window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', syncThemeButton);
  syncThemeButton();
}

function syncKeyStatus() {
  const status = $('#key-status');
  const has = Boolean(storedKey());
  status.hidden = !has;
}

function initAuth() {
  const panel = $('#auth-panel');
  const form = $('#auth-form');
  const input = $('#auth-key');
  document.addEventListener(AUTH_EVENT, (event) => {
    $('#auth-reason').textContent = event.detail || 'This server requires an API key.';
    if (panel.hidden) {
      panel.hidden = false;
      input.focus();
    }
  });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) return;
    storeKey(key);
    input.value = '';
    panel.hidden = true;
    syncKeyStatus();
    if (page) page.reload();
  });
  $('#auth-cancel').addEventListener('click', () => { panel.hidden = true; });
  $('#key-forget').addEventListener('click', () => {
    storeKey('');
    syncKeyStatus();
    if (page) page.reload();
  });
  syncKeyStatus();
}

async function start() {
  initTheme();
  initAuth();
  // Each page loads only its own module (the template preloads it alongside this one).
  const kind = document.body.dataset.page;
  if (kind === 'dashboard') page = (await import('./dashboard.js')).initDashboard();
  else if (kind === 'event') page = (await import('./event.js')).initEvent();
  else if (kind === 'pivot') page = (await import('./pivot.js')).initPivot();
}

start();
