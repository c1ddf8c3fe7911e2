// The dashboard's one browser script, served at /assets/app.js. Plain ES2017 for any current
// browser, no bundler: kept as a string here so the compiled dist needs no copied files.
// Pages work without it (plain forms); it adds copy buttons and the live parts over Socket.io.
//
// Live log invariant: `lastSeq` is the seq of the last line on the page. Every (re)subscribe asks
// for lines after it, and a line with seq <= lastSeq is dropped, so reconnects and the server's
// `resubscribe` (sent when this client fell behind) lose and repeat nothing.
export const APP_JS = String.raw`(function () {
  "use strict";
  function $(sel) { return document.querySelector(sel); }
  function $all(sel) { return Array.prototype.slice.call(document.querySelectorAll(sel)); }

  // ---------------------------------------------------------------- copy buttons
  function selectText(el) {
    var range = document.createRange();
    range.selectNodeContents(el);
    var sel = window.getSelection();
    if (sel) { sel.removeAllRanges(); sel.addRange(range); }
  }
  $all("[data-copy]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      var target = document.getElementById(button.getAttribute("data-copy"));
      if (!target) return;
      var text = target.textContent || "";
      var label = button.textContent;
      var done = function () {
        button.textContent = "Copied";
        setTimeout(function () { button.textContent = label; }, 1500);
      };
      var fallback = function () {
        selectText(target);
        try { if (document.execCommand("copy")) done(); } catch (e) { /* text stays selected */ }
      };
      // The Clipboard API exists only in secure contexts (https or localhost).
      if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(text).then(done, fallback);
      else fallback();
    });
  });

  // ---------------------------------------------------------------- live parts
  // The socket signs in with the session cookie (same origin): no token in the page.
  if (document.body.getAttribute("data-live") !== "on") return;
  var opEl = $("#operation");
  var note = $("#live-note");
  function setNote(text) { if (note) note.textContent = text; }
  var ACTIVE = { queued: true, running: true };

  if (typeof window.io !== "function") {
    // No Socket.io on this server: reload while something runs, so the page still moves on.
    if (opEl && ACTIVE[opEl.getAttribute("data-status")]) {
      setNote("(live updates unavailable: reloading every 3 s)");
      setTimeout(function () { location.reload(); }, 3000);
    }
    return;
  }

  var socket = window.io();

  function setBadge(el, prefix, value) {
    if (!el) return;
    el.textContent = value;
    el.className = el.className.replace(new RegExp("\\b" + prefix + "-\\S+", "g"), "").trim() + " " + prefix + "-" + value;
  }
  function versionUpdated(v) {
    $all("[data-version-state]").forEach(function (el) {
      if (el.getAttribute("data-version-state") === v.id) setBadge(el, "state", v.state);
    });
  }
  socket.on("version.updated", versionUpdated);
  socket.on("version.deleted", function (v) {
    versionUpdated({ id: v.id, state: "deleted" });
    $all("[data-version-row]").forEach(function (row) {
      if (row.getAttribute("data-version-row") === v.id) row.classList.add("gone");
    });
  });

  var KIND = { up: "Turn on", down: "Turn off", "delete": "Delete" };
  function lastOpUpdated(op) {
    $all("[data-last-op]").forEach(function (el) {
      if (el.getAttribute("data-last-op") !== op.versionId) return;
      var a = document.createElement("a");
      a.href = "/operations/" + encodeURIComponent(op.id);
      a.appendChild(document.createTextNode(KIND[op.kind] + " "));
      var badge = document.createElement("span");
      badge.className = "badge status-" + op.status;
      badge.textContent = op.status;
      a.appendChild(badge);
      a.appendChild(document.createTextNode(" just now"));
      el.textContent = "";
      el.appendChild(a);
    });
  }

  var lastSeq = 0;
  var opId = null;
  var logEl = $("#log");
  function subscribeOperation() {
    socket.emit("subscribe", { operationId: opId, since: lastSeq }, function (answer) {
      if (answer && answer.ok === false) setNote("(live updates refused: " + answer.error.message + ")");
    });
  }
  function operationUpdated(op) {
    lastOpUpdated(op);
    $all("[data-history-status]").forEach(function (cell) {
      if (cell.getAttribute("data-history-status") === op.id) setBadge(cell.querySelector(".badge"), "status", op.status);
    });
    if (op.id !== opId) return;
    var commit = $("#op-commit");
    if (commit && op.sha && !commit.querySelector("a")) {
      var code = document.createElement("code");
      code.title = op.sha;
      code.textContent = op.sha.slice(0, 8);
      commit.textContent = "";
      commit.appendChild(code);
    }
    opEl.setAttribute("data-status", op.status);
    setBadge($("#op-status"), "status", op.status);
    var cancel = $("#cancel-form");
    if (cancel) cancel.hidden = !ACTIVE[op.status];
    var err = $("#op-error");
    if (err && op.error) err.textContent = op.error;
    var finished = $("#op-finished");
    if (finished && op.finishedAt) finished.textContent = "just now";
    if (!ACTIVE[op.status]) setNote("");
  }
  ["operation.queued", "operation.started", "operation.finished"].forEach(function (name) {
    socket.on(name, operationUpdated);
  });

  if (opEl) {
    opId = opEl.getAttribute("data-operation-id");
    lastSeq = Number(opEl.getAttribute("data-last-seq")) || 0;
    socket.on("operation.log", function (line) {
      if (line.operationId !== opId || line.seq <= lastSeq) return;
      var empty = $("#log-empty");
      if (empty) empty.parentNode.removeChild(empty);
      var atBottom = logEl.scrollTop + logEl.clientHeight >= logEl.scrollHeight - 24;
      var span = document.createElement("span");
      span.className = "line " + line.stream;
      span.setAttribute("data-seq", String(line.seq));
      span.textContent = line.text + "\n";
      logEl.appendChild(span);
      lastSeq = line.seq;
      opEl.setAttribute("data-last-seq", String(lastSeq));
      if (atBottom) logEl.scrollTop = logEl.scrollHeight;
    });
    // The server stopped streaming to this (slow) client: ask again from the last line shown.
    socket.on("resubscribe", function (r) { if (r.operationId === opId) subscribeOperation(); });
  }

  // "connect" fires on the first connection and on every reconnection.
  // A version or project subscription also carries the log lines of its running operations
  // (docs/api.md, "Socket.io"). These pages show none of them (the operation page has its own
  // operation subscription), so they take them as batches, the cheap form, and listen to none.
  socket.on("connect", function () {
    if (opEl) {
      subscribeOperation();
      socket.emit("subscribe", { versionId: opEl.getAttribute("data-version-id"), batch: true });
      if (ACTIVE[opEl.getAttribute("data-status")]) setNote("(live)");
    } else {
      var scope = {};
      try { scope = JSON.parse(document.body.getAttribute("data-live-scope") || "{}"); } catch (e) { scope = {}; }
      if (scope.versionId || scope.projectId) scope.batch = true;
      socket.emit("subscribe", scope);
    }
  });
  socket.on("disconnect", function () {
    if (opEl && ACTIVE[opEl.getAttribute("data-status")]) setNote("(reconnecting…)");
  });
  socket.on("connect_error", function (err) {
    if (opEl && ACTIVE[opEl.getAttribute("data-status")]) setNote("(live updates unavailable: " + err.message + "; reload to see new lines)");
  });
})();
`;
