// Integration page: live resync progress over the catalog's event stream (server-sent events).
(function () {
  "use strict";

  function node(tag, className, text) {
    const element = document.createElement(tag);
    if (className) element.className = className;
    if (text !== undefined && text !== null) element.textContent = String(text);
    return element;
  }

  function badge(status, small) {
    const text = status || "never synced";
    return node("span", "badge status-" + Shoal.statusClass(status) + (small ? " small" : ""), text);
  }

  function duration(seconds) {
    if (typeof seconds !== "number" || seconds < 0) return "";
    if (seconds < 60) return seconds.toFixed(seconds < 10 ? 1 : 0) + " s";
    const minutes = Math.floor(seconds / 60);
    return minutes + " min " + String(Math.floor(seconds % 60)).padStart(2, "0") + " s";
  }

  // One kind: a stacked bar (upserted, unchanged, failed, filtered out, still in flight) over
  // the number of items the last complete run fetched for it, and the counts in words.
  function kindRow(kind, expected) {
    const n = function (key) { return typeof kind[key] === "number" ? kind[key] : 0; };
    const done = n("upserted") + n("unchanged") + n("failed") + n("filteredOut");
    const inFlight = Math.max(0, n("fetched") - done);
    const finished = kind.status !== "running" && kind.status !== "pending";
    const total = Math.max(finished ? 0 : expected || 0, n("fetched"), done, 1);
    const row = node("div", "kind");
    row.dataset.kind = kind.kind;
    row.dataset.status = kind.status;
    const head = node("div", "kind-head");
    head.append(node("span", "kind-name mono", kind.kind), badge(kind.status, true));
    const outOf = !finished && expected ? " / ~" + Shoal.formatNumber(expected) : "";
    head.append(node("span", "kind-total", Shoal.formatNumber(n("fetched")) + outOf + " fetched"));
    const bar = node("div", "bar");
    bar.setAttribute("role", "img");
    bar.setAttribute("aria-label", kind.kind + ": " + done + " of " + total + " processed");
    [["upserted", n("upserted")], ["unchanged", n("unchanged")], ["failed", n("failed")],
      ["filtered", n("filteredOut")], ["inflight", inFlight]].forEach(function (part) {
      if (part[1] <= 0) return;
      const segment = node("span", "segment " + part[0]);
      segment.style.width = (100 * part[1] / total).toFixed(2) + "%";
      segment.title = part[0] + ": " + part[1];
      bar.append(segment);
    });
    const stats = node("div", "kind-stats");
    ["fetched", "upserted", "unchanged", "failed"].forEach(function (key) {
      const stat = node("span", "stat stat-" + key);
      const value = node("b", "", Shoal.formatNumber(n(key)));
      value.dataset.count = key;
      stat.append(node("span", "muted", key + " "), value);
      stats.append(stat);
    });
    const errors = (kind.errors || []).map(function (error) {
      return node("div", "error-text", error.message + " × " + error.count);
    });
    row.append(head, bar, stats, ...errors);
    return row;
  }

  function runPanel(run, expected) {
    const parts = [];
    if (!run) {
      parts.push(node("p", "muted", "No resync reported yet. Press Resync, or start the integration."));
      return parts;
    }
    const head = node("div", "run-head");
    head.dataset.run = run.id;
    head.dataset.status = run.status;
    head.append(badge(run.status), node("span", "mono", run.id));
    head.append(node("span", "muted", "trigger " + (run.trigger || "—")));
    head.append(node("span", "muted", "started " + Shoal.formatTime(run.startedAt)));
    const elapsed = node("span", "muted elapsed");
    elapsed.dataset.started = run.startedAt || "";
    if (run.status !== "running") elapsed.textContent = duration(run.durationSeconds);
    head.append(elapsed);
    parts.push(head);
    const kinds = node("div", "kinds");
    (run.kinds || []).forEach(function (kind) { kinds.append(kindRow(kind, expected[kind.kind])); });
    parts.push(kinds);
    if (run.kinds && run.kinds.length) {
      const legend = node("div", "legend");
      [["upserted", "upserted"], ["unchanged", "unchanged"], ["failed", "failed"],
        ["filtered", "filtered out"], ["inflight", "fetched, not yet stored"]].forEach(function (item) {
        legend.append(node("span", item[0], item[1]));
      });
      parts.push(legend);
    }
    const phase = run.deletePhase || {};
    if (phase.status && phase.status !== "pending") {
      const line = node("p", "delete-phase");
      line.append(node("span", "muted", "Delete phase "), badge(phase.status, true));
      if (phase.reason) line.append(node("span", "reason", " " + phase.reason));
      if (phase.status === "done") line.append(node("span", "muted", " " + phase.deleted + " deleted"));
      parts.push(line);
    }
    if (run.abortedBy) parts.push(node("p", "aborted-by", "Aborted by " + run.abortedBy));
    if (run.error) parts.push(node("p", "error-text", run.error));
    return parts;
  }

  document.addEventListener("DOMContentLoaded", function () {
    const root = document.getElementById("integration");
    const panel = document.getElementById("current-run");
    if (!root || !panel || !window.EventSource) return;
    const title = document.getElementById("current-run-title");
    const status = document.getElementById("integration-status");
    const live = document.getElementById("live-indicator");
    const history = document.getElementById("live-history");
    const initial = JSON.parse(document.getElementById("run-data").textContent);
    const expected = initial.expected || {};
    let shown = initial.run;

    function show(run) {
      shown = run;
      panel.replaceChildren(...runPanel(run, expected));
      title.textContent = run && run.status === "running" ? "Resync in progress" : "Latest resync";
    }

    function setStatus(value) {
      if (!value) return;
      status.textContent = value;
      status.className = "badge status-" + Shoal.statusClass(value);
    }

    // The history is rendered by the server; fetch it again when runs change (newest reply wins).
    let requested = 0;
    let timer = null;
    async function refreshHistory() {
      const ticket = ++requested;
      const response = await fetch(root.dataset.history, { credentials: "same-origin" });
      if (response.redirected) {
        window.location.reload(); // the session expired: the page itself goes to the login form
        return;
      }
      if (!response.ok || ticket !== requested) return;
      const open = Array.from(history.querySelectorAll("tbody.run details[open]"))
        .map(function (details) { return details.closest("tbody.run").dataset.run; });
      history.innerHTML = await response.text();
      open.forEach(function (id) {
        const details = history.querySelector('tbody.run[data-run="' + CSS.escape(id) + '"] details');
        if (details) details.open = true;
      });
    }
    function scheduleHistory(now) {
      if (now) {
        window.clearTimeout(timer);
        timer = null;
        refreshHistory();
      } else if (timer === null) {
        timer = window.setTimeout(function () { timer = null; refreshHistory(); }, 1500);
      }
    }

    function onRun(run) {
      const newer = !shown || run.id === shown.id || (run.startedAt || "") >= (shown.startedAt || "");
      if (newer) {
        show(run);
        setStatus(run.status);
      }
      scheduleHistory(run.status !== "running");
    }

    show(shown);
    const events = new EventSource(root.dataset.events);
    events.addEventListener("open", function () {
      live.textContent = "live";
      live.className = "live on";
    });
    events.addEventListener("error", function () {
      live.textContent = "reconnecting…";
      live.className = "live off";
    });
    events.addEventListener("ready", async function () {
      // catch up on whatever happened between rendering the page and connecting
      const response = await fetch(root.dataset.events.replace(/\/events$/, "/runs?limit=1"),
        { credentials: "same-origin" });
      const body = response.ok ? await response.json() : {};
      if (body.runs && body.runs.length) onRun(body.runs[0]);
    });
    events.addEventListener("run", function (event) { onRun(JSON.parse(event.data)); });
    events.addEventListener("state", function (event) {
      const state = JSON.parse(event.data);
      setStatus(state.status);
      const facts = { "state-start": state.lastResyncStart, "state-end": state.lastResyncEnd,
        "state-next": state.nextResync };
      Object.keys(facts).forEach(function (id) {
        const element = document.getElementById(id);
        if (element && facts[id] !== undefined) element.textContent = Shoal.formatTime(facts[id]);
      });
    });
    events.addEventListener("resync-request", function (event) {
      const request = JSON.parse(event.data);
      const by = request.actor ? " by " + request.actor : "";
      Shoal.notice("Resync requested (" + request.source + by + ") at " +
        Shoal.formatTime(request.createdAt) + ".", "info");
    });
    window.addEventListener("pagehide", function () { events.close(); });

    window.setInterval(function () {
      const elapsed = panel.querySelector(".elapsed");
      if (!elapsed || !shown || shown.status !== "running" || !elapsed.dataset.started) return;
      elapsed.textContent = duration((Date.now() - Date.parse(elapsed.dataset.started)) / 1000);
    }, 1000);
  });
})();
