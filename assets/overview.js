// The overview refreshes itself: every 30 seconds (and when its tab is shown
// again) it fetches its own URL, filters and all, and swaps the new grid in for
// the old one. Nothing else on the page changes, so a half-filled filter form
// is left alone. Without this script the page is the same, reloaded by hand.
(function () {
  "use strict";
  var PERIOD_MS = 30000;
  var GRID = "overview-grid";

  function refresh() {
    if (document.hidden) {
      return;
    }
    fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        // An ended session answers with the sign-in page: keep the last grid.
        if (!response.ok || response.redirected) {
          throw new Error("overview refresh: " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(GRID);
        var shown = document.getElementById(GRID);
        if (fresh && shown) {
          shown.replaceWith(document.importNode(fresh, true));
        }
      })
      .catch(function () {
        // Offline or signed out: the next tick tries again.
      });
  }

  var note = document.getElementById("refresh-note");
  if (note) {
    note.hidden = false;
  }
  window.setInterval(refresh, PERIOD_MS);
  document.addEventListener("visibilitychange", refresh);
})();
