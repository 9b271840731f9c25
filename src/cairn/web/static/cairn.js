// Cairn's dashboard script: live updates over SSE, the test-fire form, cancel, fragments.
// Pages work without it (server-rendered, plain forms); this only adds what needs a
// connection that stays open. No framework, no build step: served as is by `cairn serve`.
"use strict";

(function () {
  const csrf = () => document.querySelector('meta[name="cairn-csrf"]')?.content || "";
  const sandbox = () => document.querySelector('meta[name="cairn-sandbox"]')?.content || "";
  const FINAL = ["succeeded", "failed", "cancelled"];

  // --- formatting, as the server's templates do it ---------------------------------------

  function duration(ms) {
    if (ms === null || ms === undefined) return "—";
    if (ms < 10) return ms.toFixed(2) + " ms";
    if (ms < 1000) return Math.round(ms) + " ms";
    if (ms < 60000) return (ms / 1000).toFixed(2) + " s";
    const seconds = Math.floor(ms / 1000);
    return Math.floor(seconds / 60) + " min " + String(seconds % 60).padStart(2, "0") + " s";
  }

  const count = (n) => (n === null || n === undefined ? "—" : Math.trunc(n).toLocaleString("en-US"));

  function when(iso) {
    if (!iso) return "—";
    const d = new Date(iso);
    if (isNaN(d)) return iso;
    return d.toISOString().slice(0, 19).replace("T", " ");
  }

  // "12 s ago", as the server's templates say it (the absolute time is in the title).
  function ago(iso) {
    const seconds = (Date.now() - Date.parse(iso)) / 1000;
    if (isNaN(seconds)) return "—";
    if (seconds < 5) return "just now";
    for (const [size, unit] of [[86400, "d"], [3600, "h"], [60, "min"]]) {
      if (seconds >= size) return Math.floor(seconds / size) + " " + unit + " ago";
    }
    return Math.floor(seconds) + " s ago";
  }

  function cost(run) {
    if (run.cost_micros === null || run.cost_micros === undefined) {
      if (!FINAL.includes(run.status)) return "pending";
      return (run.tokens_in || run.tokens_out) ? "unpriced" : "$0.0000";
    }
    if (run.cost_micros > 0 && run.cost_micros < 50) return "<$0.0001";
    const units = Math.floor((run.cost_micros + 50) / 100);
    return "$" + Math.floor(units / 10000).toLocaleString("en-US") + "." + String(units % 10000).padStart(4, "0");
  }

  function pretty(value) {
    return typeof value === "string" ? value : JSON.stringify(value, null, 2);
  }

  // A small element builder: el("td", {class: "num"}, "12"). Text only, never HTML.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value !== null && value !== undefined && value !== false) node.setAttribute(name, value);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  const statusBadge = (status) => el("span", { class: "badge status-" + status }, status);

  function outcomeBadge(outcome) {
    if (!outcome) return el("span", { class: "muted" }, "—");
    const quiet = outcome === "model_chose_no_tool" || outcome === "no_tools_available";
    return el("span", { class: "badge outcome-" + outcome + (quiet ? " quiet" : "") }, outcome.replaceAll("_", " "));
  }

  function announce(region, text) {
    if (!region) return;
    region.textContent = "";
    window.setTimeout(() => { region.textContent = text; }, 50);
  }

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-Cairn-CSRF": csrf() },
      body: JSON.stringify(body || {}),
    });
    let data = null;
    try { data = await response.json(); } catch (_) { /* an empty or HTML body */ }
    if (!response.ok) {
      throw new Error((data && (data.detail || data.title)) || response.status + " " + response.statusText);
    }
    return data;
  }

  // --- fragments loaded after the page (the live catalog, the explanation) ----------------

  function loadFragments(root) {
    for (const box of root.querySelectorAll(".fragment[data-fragment]")) {
      fetch(box.dataset.fragment, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(async (response) => {
          const html = await response.text();
          if (!response.ok) throw new Error(response.status + " " + response.statusText);
          const doc = new DOMParser().parseFromString(html, "text/html");
          const content = doc.querySelector("main") || doc.body;
          box.replaceChildren(...content.childNodes);
          copyButtons(box);
        })
        .catch((error) => {
          box.replaceChildren(el("p", { class: "alert warn" }, "Could not load this part: " + error.message));
        })
        .finally(() => box.setAttribute("aria-busy", "false"));
    }
  }

  // --- the runs table (runs page, agent page): rows appear and change live ----------------

  function runRow(run) {
    const tools = Array.isArray(run.tool_calls) ? run.tool_calls.length : run.tool_calls;
    return el("tr", { "data-run-id": run.run_id, "data-status": run.status, class: "fresh" },
      el("td", { class: "run-cell" }, el("a", { class: "mono", href: "/runs/" + run.run_id }, run.run_id),
        el("span", { class: "run-agent" }, run.agent_slug)),
      el("td", { class: "col-agent" }, el("a", { href: "/agents/" + run.agent_slug }, run.agent_slug)),
      el("td", { "data-col": "status" }, statusBadge(run.status)),
      el("td", { "data-col": "outcome" }, outcomeBadge(run.outcome)),
      el("td", { class: "col-opt" }, run.kind),
      el("td", { class: "mono small col-opt" }, run.trigger_id || "—"),
      el("td", { "data-col": "tools", class: "num col-opt" }, count(tools || 0)),
      el("td", { "data-col": "tokens", class: "num col-opt" }, count((run.tokens_in || 0) + (run.tokens_out || 0))),
      el("td", { "data-col": "cost", class: "num col-opt" }, cost(run)),
      el("td", { "data-col": "duration", class: "num col-opt" }, duration(run.duration_ms)),
      el("td", { class: "col-time" }, el("time", { datetime: run.created_at, title: when(run.created_at) + " UTC" }, ago(run.created_at))));
  }

  function updateRow(row, run) {
    row.dataset.status = run.status;
    const set = (col, node) => row.querySelector('[data-col="' + col + '"]')?.replaceChildren(node);
    set("status", statusBadge(run.status));
    set("outcome", outcomeBadge(run.outcome));
    set("tools", count(run.tool_calls || 0));
    set("tokens", count((run.tokens_in || 0) + (run.tokens_out || 0)));
    set("cost", cost(run));
    set("duration", duration(run.duration_ms));
  }

  function liveRuns(table) {
    if (table.dataset.live !== "on") return;
    const body = table.tBodies[0];
    const limit = Number(table.dataset.limit || 50);
    const f = table.dataset;
    const announcer = document.getElementById("runs-announce");
    const empty = document.getElementById("runs-empty");
    const matches = (run) =>
      (!f.filterAgent || run.agent_slug === f.filterAgent) &&
      (!f.filterStatus || run.status === f.filterStatus) &&
      (!f.filterTrigger || run.trigger_id === f.filterTrigger) &&
      (!f.filterKind || run.kind === f.filterKind) &&
      (!f.filterQ || run.run_id.startsWith(f.filterQ.startsWith("run_") ? f.filterQ : "run_" + f.filterQ));

    let url = table.dataset.streamUrl;
    if (!url) {
      const rows = [...body.rows];
      const params = new URLSearchParams();
      if (rows.length) params.set("after", rows[0].dataset.runId);
      const live = rows.filter((r) => !FINAL.includes(r.dataset.status)).map((r) => r.dataset.runId);
      if (live.length) params.set("watch", live.join(","));
      url = "/runs/live?" + params.toString();
    }
    const source = new EventSource(url, { withCredentials: true });
    source.addEventListener("run", (message) => {
      const run = JSON.parse(message.data);
      const row = body.querySelector('tr[data-run-id="' + CSS.escape(run.run_id) + '"]');
      if (row) {
        if (!matches(run)) { row.remove(); }
        else {
          const before = row.dataset.status;
          updateRow(row, run);
          if (before !== run.status && FINAL.includes(run.status)) {
            announce(announcer, "Run " + run.run_id + " of " + run.agent_slug + " " + run.status + ".");
          }
        }
      } else if (matches(run)) {
        const newest = body.rows[0]?.dataset.runId;
        if (newest && run.run_id < newest && body.rows.length >= limit) return; // an older page's run
        let next = null;
        for (const other of body.rows) { if (other.dataset.runId < run.run_id) { next = other; break; } }
        body.insertBefore(runRow(run), next);
        while (body.rows.length > limit) body.deleteRow(-1);
        announce(announcer, "New run " + run.run_id + " of " + run.agent_slug + ": " + run.status + ".");
      }
      if (empty) empty.hidden = body.rows.length > 0;
    });
    window.addEventListener("pagehide", () => source.close());
  }

  // --- a run's timeline, live ---------------------------------------------------------------

  function Timeline(list) {
    this.list = list;
    this.called = new Map();
  }

  Timeline.prototype.step = function (kind, seq, headChildren) {
    const head = el("div", { class: "step-head" }, ...headChildren);
    const item = el("li", { class: "step step-" + kind + " fresh", "data-seq": seq }, head);
    this.list.append(item);
    document.getElementById("timeline-empty")?.remove();
    return item;
  };

  Timeline.prototype.handle = function (event) {
    const data = event.data || {};
    this.list.querySelector("li.step-thinking")?.remove();
    const last = this.list.lastElementChild;
    if (event.kind === "text") {
      if (last && last.classList.contains("step-turn") && last.dataset.turn === String(data.turn)) {
        last.querySelector(".step-text").append(data.delta || "");
        this.thinking();
        return;
      }
      const item = this.step("turn", event.seq, [el("span", { class: "step-kind" }, "Model turn " + ((data.turn || 0) + 1))]);
      item.dataset.turn = String(data.turn);
      item.append(el("p", { class: "step-text" }, data.delta || ""));
    } else if (event.kind === "tool_call") {
      const item = this.step("tool", event.seq, [
        el("span", { class: "step-kind" }, "Tool call"), " ", el("code", { class: "tool-name" }, data.name)]);
      item.classList.add("pending");
      item.dataset.callId = data.call_id;
      item.append(el("div", { class: "io" },
        el("div", {}, el("h4", {}, "Arguments"), el("pre", { class: "args" }, pretty(data.arguments))),
        el("div", {}, el("h4", {}, "Result"), el("p", { class: "muted result" }, "waiting…"))));
      this.called.set(data.call_id, Date.parse(event.created_at));
    } else if (event.kind === "tool_result") {
      const item = this.list.querySelector('li[data-call-id="' + CSS.escape(data.call_id || "") + '"]');
      if (!item) { this.thinking(); return; }
      item.classList.remove("pending");
      const box = item.querySelector(".io > div:last-child");
      if (data.error) {
        item.classList.add("failed");
        box.replaceChildren(el("h4", {}, "Error"), el("pre", { class: "result error" }, data.error));
      } else {
        box.replaceChildren(el("h4", {}, "Result"), el("pre", { class: "result" }, pretty(data.result)));
      }
      const began = this.called.get(data.call_id);
      if (began && event.created_at) {
        const ms = Date.parse(event.created_at) - began;
        item.querySelector(".step-head").append(el("span", { class: "step-time" }, "took " + (ms >= 1 ? duration(ms) : "<1 ms")));
      }
    } else if (event.kind === "retry") {
      const item = this.step("retry", event.seq, [el("span", { class: "step-kind" }, "Retry " + data.attempt)]);
      item.append(el("p", {}, (data.message || "") + " (waiting " + data.wait_s + " s)"));
    } else if (event.kind === "finish") {
      const item = this.step("finish", event.seq, [el("span", { class: "step-kind" }, "Finished")]);
      item.append(el("p", {}, "Stop reason ", el("code", {}, data.stop_reason || "")));
    } else if (event.kind === "error" && data.error_type === "cancelled") {
      const item = this.step("cancelled", event.seq, [el("span", { class: "step-kind" }, "Cancelled")]);
      item.append(el("p", {}, data.message || ""));
    } else if (event.kind === "error") {
      const item = this.step("error", event.seq, [el("span", { class: "step-kind" }, "Error")]);
      item.classList.add("failed");
      item.append(el("p", {}, data.message || "", " ", data.error_type ? el("span", { class: "badge bad" }, data.error_type) : null));
    }
    this.thinking();
  };

  // While the run is live and no tool call is waiting, the model is thinking: say so at
  // the end of the timeline, with the time since the last step.
  Timeline.prototype.thinking = function () {
    this.list.querySelector("li.step-thinking")?.remove();
    if (this.ended) return;
    const last = this.list.lastElementChild;
    if (last && last.classList.contains("pending")) return;
    const since = Date.now();
    const timer = el("span", { class: "step-time", "data-since": since }, "0.0 s");
    this.list.append(el("li", { class: "step step-thinking pending", "aria-live": "off" },
      el("div", { class: "step-head" }, el("span", { class: "step-kind" }, "Model thinking…"), timer)));
  };

  Timeline.prototype.end = function () {
    this.ended = true;
    this.list.querySelector("li.step-thinking")?.remove();
  };

  const KINDS = ["text", "tool_call", "tool_result", "retry", "finish", "error"];

  // Follow one run's SSE stream into a timeline; onEnd gets {status, outcome}.
  function followRun(url, timeline, onEvent, onEnd) {
    const source = new EventSource(url, { withCredentials: true });
    for (const kind of KINDS) {
      source.addEventListener(kind, (message) => {
        const event = JSON.parse(message.data);
        timeline.handle(event);
        onEvent(event);
      });
    }
    source.addEventListener("end", (message) => {
      source.close();
      timeline.end();
      onEnd(JSON.parse(message.data));
    });
    window.addEventListener("pagehide", () => source.close());
    return source;
  }

  // The summary (tokens, tool calls, cost), the trace and the waterfall of a live run come
  // from the row the runner keeps current: re-read them from the page while it runs.
  const LIVE_SECTIONS = ["run-summary", "trace-section", "waterfall-section"];

  function refreshWhileLive(root) {
    let busy = false;
    async function refresh() {
      if (busy) return;
      busy = true;
      try {
        const response = await fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } });
        if (!response.ok) return;
        const doc = new DOMParser().parseFromString(await response.text(), "text/html");
        for (const id of LIVE_SECTIONS) {
          const fresh = doc.getElementById(id);
          const here = document.getElementById(id);
          if (fresh && here) here.replaceChildren(...fresh.childNodes);
        }
      } catch (_) { /* the next tick tries again */ } finally { busy = false; }
    }
    const every = window.setInterval(refresh, 1000);
    const clock = window.setInterval(() => {
      const started = Date.parse(document.getElementById("run-duration")?.dataset.started || "");
      const box = document.getElementById("run-duration");
      if (box && !isNaN(started)) box.textContent = duration(Date.now() - started) + " so far";
      const thinking = root.querySelector("li.step-thinking .step-time");
      if (thinking) thinking.textContent = ((Date.now() - Number(thinking.dataset.since)) / 1000).toFixed(1) + " s";
    }, 100);
    return () => { window.clearInterval(every); window.clearInterval(clock); };
  }

  async function refreshMain() {
    const response = await fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } });
    if (!response.ok) return;
    const doc = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = doc.querySelector("main");
    const main = document.querySelector("main");
    if (fresh && main) {
      main.replaceChildren(...fresh.childNodes);
      init(main);
    }
  }

  function liveRun(root) {
    if (root.dataset.live !== "on") return;
    const status = document.getElementById("run-live-status");
    const badge = document.getElementById("run-status");
    const cancel = document.getElementById("cancel-run");
    const timeline = new Timeline(document.getElementById("timeline"));
    if (cancel) {
      cancel.addEventListener("click", async () => {
        cancel.disabled = true;
        cancel.textContent = "Cancelling…";
        try {
          await post(root.dataset.cancelUrl);
          announce(status, "Cancel requested; the run stops within a second.");
        } catch (error) {
          cancel.disabled = false;
          cancel.textContent = "Cancel run";
          announce(status, "Could not cancel: " + error.message);
        }
      });
    }
    const url = root.dataset.streamUrl + "?after=" + encodeURIComponent(root.dataset.after || "0");
    const stopRefresh = refreshWhileLive(root);
    timeline.thinking();
    followRun(url, timeline, () => {
      if (root.dataset.status !== "running") {
        root.dataset.status = "running";
        badge?.replaceChildren(statusBadge("running"));
      }
    }, (end) => {
      stopRefresh();
      badge?.replaceChildren(statusBadge(end.status));
      cancel?.remove();
      announce(status, "The run " + end.status + (end.outcome ? " (" + end.outcome.replaceAll("_", " ") + ")" : "") + ".");
      refreshMain();
    });
  }

  // --- the test-fire form -------------------------------------------------------------------

  function testFire(form) {
    const area = form.querySelector("textarea");
    const state = document.getElementById("payload-state");
    const button = document.getElementById("fire-button");
    const result = document.getElementById("fire-result");
    const link = document.getElementById("fire-run-link");
    const status = document.getElementById("fire-status");
    const list = document.getElementById("fire-timeline");
    const hint = state.textContent;

    function check() {
      try {
        JSON.parse(area.value.trim() || "{}");
        area.removeAttribute("aria-invalid");
        state.classList.remove("bad");
        state.textContent = hint;
        button.disabled = false;
        return true;
      } catch (error) {
        area.setAttribute("aria-invalid", "true");
        state.classList.add("bad");
        state.textContent = "Not valid JSON: " + error.message;
        button.disabled = true;
        return false;
      }
    }
    area.addEventListener("input", check);
    document.getElementById("format-payload")?.addEventListener("click", () => {
      if (check()) area.value = JSON.stringify(JSON.parse(area.value.trim() || "{}"), null, 2);
    });

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!check()) return;
      button.disabled = true;
      result.hidden = false;
      list.replaceChildren();
      link.textContent = "";
      status.textContent = "Firing…";
      try {
        const fired = await post(form.action, { event_payload: JSON.parse(area.value.trim() || "{}") });
        link.textContent = fired.run_id;
        link.href = fired.url;
        status.replaceChildren("Status: ", statusBadge("queued"));
        const url = "/api/v1/sandboxes/" + encodeURIComponent(sandbox()) + "/runs/" + fired.run_id + "/stream";
        followRun(url, new Timeline(list), () => {
          if (!status.dataset.running) {
            status.dataset.running = "1";
            status.replaceChildren("Status: ", statusBadge("running"));
          }
        }, (end) => {
          delete status.dataset.running;
          status.replaceChildren("Status: ", statusBadge(end.status), " ", outcomeBadge(end.outcome), " ",
            el("a", { href: fired.url }, "Open the run"));
          button.disabled = false;
        });
      } catch (error) {
        status.textContent = "Could not fire: " + error.message;
        button.disabled = false;
      }
    });
  }

  // --- copy buttons on suggested commands -----------------------------------------------------

  function copyButtons(root) {
    if (!navigator.clipboard) return;
    for (const code of root.querySelectorAll("code.copyable")) {
      if (code.nextElementSibling?.classList.contains("copy")) continue;
      const button = el("button", { type: "button", class: "copy", "aria-label": "Copy " + code.textContent }, "Copy");
      button.addEventListener("click", async () => {
        try {
          await navigator.clipboard.writeText(code.textContent);
          button.textContent = "Copied";
        } catch (_) {
          button.textContent = "Select and copy";
        }
      });
      code.after(button);
    }
  }

  // --- wiring -------------------------------------------------------------------------------

  function init(root) {
    loadFragments(root);
    copyButtons(root);
    const runs = root.querySelector("table#runs");
    if (runs) liveRuns(runs);
    const run = root.querySelector("#run");
    if (run) liveRun(run);
    const form = root.querySelector("form#test-fire");
    if (form) testFire(form);
    for (const select of root.querySelectorAll("form.filters select, select[data-autosubmit]")) {
      select.addEventListener("change", () => select.form.requestSubmit());
    }
  }

  document.addEventListener("DOMContentLoaded", () => init(document));
})();
