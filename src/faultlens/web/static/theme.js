// Runs before first paint (a classic, blocking script) so a remembered theme never flashes the other one.
(function () {
  try {
    var theme = window.localStorage.getItem('faultlens.theme');
    if (theme === 'light' || theme === 'dark') document.documentElement.setAttribute('data-theme', theme);
  } catch (e) {
    /* storage blocked: follow the system preference */
  }
})();
