// The run page: poll the job's status (GET /api/runs/{id}/status) until it is done or failed,
// showing the progress and the log; then link (and go) to the finished run's page.
(function () {
  "use strict";
  var box = document.getElementById("run-status");
  if (!box) { return; }
  var url = box.getAttribute("data-status-url");
  var state = box.getAttribute("data-state");
  var finished = document.getElementById("run-done");
  function show(s) {
    document.getElementById("run-state").textContent = s.state;
    document.getElementById("run-state").className = "state " + s.state;
    var bar = document.getElementById("run-progress");
    bar.max = s.total || 1;
    bar.value = s.done || 0;
    document.getElementById("run-count").textContent = (s.done || 0) + "/" + (s.total || 0);
    var log = document.getElementById("run-log");
    log.textContent = (s.log || []).join("\n");
    log.hidden = !(s.log && s.log.length);
    if (s.error) {
      var err = document.getElementById("run-error");
      if (!err) {
        err = document.createElement("p");
        err.id = "run-error";
        err.className = "error";
        box.insertBefore(err, finished);
      }
      err.textContent = s.error;
    }
    if (s.state === "done" && s.run_id) {
      var link = document.getElementById("run-link");
      link.href = "/runs/" + encodeURIComponent(s.run_id);
      link.textContent = "run " + s.run_id.slice(0, 12);
      finished.hidden = false;
    }
  }
  function poll() {
    fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (s) {
        if (s.error && typeof s.error === "object") { return; }
        show(s);
        if (s.state === "queued" || s.state === "running") {
          window.setTimeout(poll, 500);
        }
      });
  }
  if (state === "queued" || state === "running") { poll(); }
})();
