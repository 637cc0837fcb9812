// Live progress on an access request's page: polls the request's status URL (from the page's
// data-status-url) while the copy is being prepared, and reloads the page once it is ready, failed
// or rejected so the server renders the download button. No inline script: the page's CSP need not
// allow one.
(function () {
  "use strict";
  var section = document.getElementById("request");
  if (!section || !section.dataset.statusUrl) {
    return;
  }
  var waiting = ["received", "building"];
  var status = section.dataset.status;
  if (waiting.indexOf(status) === -1) {
    return;
  }
  var delay = 1000;
  var part = function (role) {
    return section.querySelector('[data-role="' + role + '"]');
  };

  function show(data) {
    var label = part("status");
    if (label) {
      label.textContent = data.status_display;
      label.className = "status status-" + data.status;
    }
    var bar = part("progress");
    if (bar) {
      bar.value = data.progress;
      bar.textContent = data.progress + " %";
    }
    var text = part("progress-text");
    if (text) {
      text.textContent = data.progress + " %";
    }
  }

  function poll() {
    fetch(section.dataset.statusUrl, {
      credentials: "same-origin",
      cache: "no-store",
      headers: { Accept: "application/json" },
    })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("status " + response.status);
        }
        return response.json();
      })
      .then(function (data) {
        show(data);
        if (waiting.indexOf(data.status) === -1) {
          window.location.reload();
          return;
        }
        status = data.status;
        delay = 1000;
        window.setTimeout(poll, delay);
      })
      .catch(function () {
        // Signed out, offline or a hiccup: back off, never hammer the server.
        delay = Math.min(delay * 2, 30000);
        window.setTimeout(poll, delay);
      });
  }

  window.setTimeout(poll, delay);
})();
