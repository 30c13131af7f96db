// Shoal web UI: small progressive enhancements shared by every page (no framework, no build).
(function () {
  "use strict";

  // Filter a list as you type: <input data-filter="CSS selector of the rows">; each row
  // carries its searchable text in data-search. Every word typed must appear.
  function setUpFilter(input) {
    const table = document.querySelector(input.dataset.filter.split(" ")[0]);
    const counter = input.parentElement.querySelector("[data-filter-count]");
    const empty = table ? table.querySelector("[data-filter-empty]") : null;
    function apply() {
      const words = input.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
      const rows = document.querySelectorAll(input.dataset.filter);
      let shown = 0;
      rows.forEach(function (row) {
        const text = row.dataset.search || "";
        const match = words.every(function (word) { return text.includes(word); });
        row.classList.toggle("hidden", !match);
        if (match) shown += 1;
      });
      if (counter) counter.textContent = shown + " of " + rows.length;
      if (empty) empty.classList.toggle("hidden", shown > 0);
    }
    input.addEventListener("input", apply);
  }

  // Rows with data-href open their page when clicked anywhere outside a link or control.
  function setUpRowLinks() {
    document.addEventListener("click", function (event) {
      const row = event.target.closest("tr[data-href]");
      if (!row || event.target.closest("a, button, input, select, summary, details")) return;
      if (window.getSelection && String(window.getSelection())) return; // selecting text
      window.location.assign(row.dataset.href);
    });
  }

  // Forms with data-fetch post in the background and report in #notice: no page reload.
  function setUpFetchForms() {
    document.querySelectorAll("form[data-fetch]").forEach(function (form) {
      form.addEventListener("submit", async function (event) {
        event.preventDefault();
        const button = form.querySelector("button[type=submit]");
        if (button) button.disabled = true;
        try {
          const response = await fetch(form.action, {
            method: "POST",
            body: new FormData(form),
            credentials: "same-origin",
            headers: { Accept: "application/json" },
          });
          const body = await response.json().catch(function () { return {}; });
          if (response.ok) {
            Shoal.notice("Resync requested. A running integration starts it at once.", "info");
          } else {
            Shoal.notice(body.message || "The request failed (" + response.status + ")", "error");
          }
        } catch (error) {
          Shoal.notice("The catalog could not be reached: " + error, "error");
        } finally {
          if (button) window.setTimeout(function () { button.disabled = false; }, 300);
        }
      });
    });
  }

  function setUpAutoSubmit() {
    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () { select.form.submit(); });
    });
  }

  window.Shoal = {
    notice: function (message, kind) {
      const box = document.getElementById("notice");
      if (!box) return;
      box.textContent = message;
      box.className = "alert " + (kind || "info");
    },
    formatTime: function (iso) {
      if (!iso) return "—";
      const date = new Date(iso);
      if (Number.isNaN(date.getTime())) return String(iso);
      return date.toISOString().slice(0, 19).replace("T", " ") + " UTC";
    },
    formatNumber: function (value) {
      return typeof value === "number" ? value.toLocaleString("en-US") : "—";
    },
    statusClass: function (status) {
      const known = { running: "running", completed: "completed", done: "completed",
        failed: "failed", blocked: "failed", aborted: "aborted", skipped: "aborted" };
      return known[status] || "idle";
    },
  };

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("input[data-filter]").forEach(setUpFilter);
    setUpRowLinks();
    setUpFetchForms();
    setUpAutoSubmit();
  });
})();
