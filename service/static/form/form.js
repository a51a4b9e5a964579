/*
 * Laneway hosted form: page navigation, client-side validation from the
 * definition (the attributes the server rendered), screen activity posts and
 * the command poll (highlights). Plain ES2019, no build step, no dependencies.
 *
 * Activity (POST data-activity-url, JSON): {screen_name, page, fields, action, field_id}
 *   - "load" once when the page opens, "field_change" after typing stops
 *     (data-debounce-ms) or at once for choices, "page_change" on Next/Back
 *     or when a highlight moves the customer to another page, "submit".
 *   - fields: every field of the form (empty ones as ""), so each activity is
 *     the whole screen state.
 * Commands (GET data-commands-url every data-poll-interval-ms): each new
 * "highlight" is shown once (yellow field, a short label, scrolled into view)
 * and acknowledged (POST data-ack-url {ids}).
 */
(function () {
  "use strict";

  var root = document.getElementById("lw-form");
  if (!root) { return; }

  var POLL_INTERVAL_MS = parseInt(root.dataset.pollIntervalMs, 10) || 1000;
  var DEBOUNCE_MS = parseInt(root.dataset.debounceMs, 10) || 600;
  var HIGHLIGHT_MS = 30000;  // a highlight fades after this long, or at the next one
  var initial = JSON.parse(document.getElementById("lw-initial").textContent || "{}");

  var pages = Array.prototype.slice.call(root.querySelectorAll("section.lw-page[data-page]"));
  var fieldBoxes = Array.prototype.slice.call(root.querySelectorAll(".lw-field[data-field-id]"));
  var submittedBox = document.getElementById("lw-submitted");
  var current = 1;
  var submitted = false;
  var debounceTimer = null;
  var pendingFieldId = null;
  var lastPostedFields = null;
  var shownCommands = {};
  var highlightTimer = null;

  // ---- values -------------------------------------------------------------

  function inputsOf(box) {
    return Array.prototype.slice.call(box.querySelectorAll("input, select"));
  }

  function valueOf(box) {
    var type = box.dataset.type;
    var inputs = inputsOf(box);
    if (type === "radio") {
      for (var i = 0; i < inputs.length; i++) { if (inputs[i].checked) { return inputs[i].value; } }
      return "";
    }
    if (type === "checkbox") { return inputs[0].checked ? "yes" : ""; }
    return inputs[0].value;
  }

  function setValue(box, value) {
    var type = box.dataset.type;
    var inputs = inputsOf(box);
    if (type === "radio") {
      inputs.forEach(function (el) { el.checked = el.value === value; });
    } else if (type === "checkbox") {
      inputs[0].checked = value === "yes";
    } else {
      inputs[0].value = value;
    }
  }

  function allFields() {
    var fields = {};
    fieldBoxes.forEach(function (box) { fields[box.dataset.fieldId] = valueOf(box); });
    return fields;
  }

  function boxFor(fieldId) {
    for (var i = 0; i < fieldBoxes.length; i++) {
      if (fieldBoxes[i].dataset.fieldId === fieldId) { return fieldBoxes[i]; }
    }
    return null;
  }

  function pageOf(element) {
    var section = element.closest("section.lw-page[data-page]");
    return section ? parseInt(section.dataset.page, 10) : null;
  }

  // ---- validation (rules rendered from the form definition) ----------------

  var EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
  var NUMBER = /^-?[0-9]{1,15}(\.[0-9]{1,15})?$/;  // as the server's NUMBER

  function compile(pattern) {
    try { return new RegExp("^(?:" + pattern + ")$", "v"); } catch (e) { /* older engine */ }
    try { return new RegExp("^(?:" + pattern + ")$", "u"); } catch (e) { return null; }
  }

  /** The problem with one field's value, or "" when it is fine. */
  function problemOf(box) {
    var inputs = inputsOf(box);
    var el = inputs[0];
    var label = box.dataset.label;
    var value = valueOf(box).trim();
    if (!value) { return el.required ? label + " is required." : ""; }
    var type = box.dataset.type;
    if (type === "select" || type === "radio") {
      var allowed = inputs.length && type === "radio"
        ? inputs.map(function (i) { return i.value; })
        : Array.prototype.slice.call(el.options).map(function (o) { return o.value; });
      if (allowed.indexOf(value) < 0) { return "Choose one of the options for " + label + "."; }
      return "";
    }
    var min = el.getAttribute("minlength");
    var max = el.getAttribute("maxlength");
    if (min && value.length < parseInt(min, 10)) { return label + " needs at least " + min + " characters."; }
    if (max && value.length > parseInt(max, 10)) { return label + " takes at most " + max + " characters."; }
    var pattern = el.getAttribute("pattern");
    if (pattern) {
      var re = compile(pattern);
      if (re && !re.test(value)) {
        var help = box.querySelector(".lw-help");
        return label + " is not in the expected format." + (help ? " " + help.textContent : "");
      }
    }
    if (type === "number") {
      if (!NUMBER.test(value)) { return label + " must be a number."; }
      var low = el.dataset.min, high = el.dataset.max;
      if (low !== undefined && parseFloat(value) < parseFloat(low)) { return label + " must be at least " + low + "."; }
      if (high !== undefined && parseFloat(value) > parseFloat(high)) { return label + " must be at most " + high + "."; }
    }
    if (type === "email" && !EMAIL.test(value)) { return "Enter an email address like name@example.com."; }
    if (type === "date" && isNaN(Date.parse(value))) { return "Enter a date for " + label + "."; }
    return "";
  }

  function showProblem(box, problem) {
    var out = box.querySelector(".lw-error");
    if (out) { out.textContent = problem; }
    box.classList.toggle("lw-invalid", !!problem);
    inputsOf(box).forEach(function (el) { el.setAttribute("aria-invalid", problem ? "true" : "false"); });
  }

  /** Validate the fields of page n; returns the first invalid field box, or null. */
  function validatePage(n) {
    var first = null;
    fieldBoxes.forEach(function (box) {
      if (pageOf(box) !== n) { return; }
      var problem = problemOf(box);
      showProblem(box, problem);
      if (problem && !first) { first = box; }
    });
    return first;
  }

  // ---- activity -----------------------------------------------------------

  function screenName() {
    return pages[current - 1].dataset.screenName;
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      credentials: "same-origin",
      keepalive: true
    });
  }

  function activity(action, fieldId) {
    var fields = allFields();
    lastPostedFields = JSON.stringify(fields);
    return {
      screen_name: screenName(),
      page: current,
      fields: fields,
      action: action,
      field_id: fieldId || null
    };
  }

  // One activity post at a time, in order: two in flight could reach the
  // server swapped, and the older screen would then read as the latest.
  var activityChain = Promise.resolve();

  function sendActivity(action, fieldId) {
    clearTimeout(debounceTimer);
    debounceTimer = null;
    pendingFieldId = null;
    var body = activity(action, fieldId);  // the screen as it is now
    var sending = activityChain.then(function () {
      return post(root.dataset.activityUrl, body).catch(function () { return null; });
    });
    activityChain = sending;
    return sending;
  }

  function fieldChanged(fieldId, immediately) {
    if (submitted) { return; }
    if (JSON.stringify(allFields()) === lastPostedFields) {  // typed and undone: nothing to tell
      clearTimeout(debounceTimer);
      debounceTimer = null;
      return;
    }
    if (immediately) { sendActivity("field_change", fieldId); return; }
    pendingFieldId = fieldId;
    clearTimeout(debounceTimer);
    debounceTimer = setTimeout(function () { sendActivity("field_change", fieldId); }, DEBOUNCE_MS);
  }

  function flushWithBeacon() {
    if (debounceTimer === null || !navigator.sendBeacon) { return; }
    clearTimeout(debounceTimer);
    debounceTimer = null;
    var body = new Blob([JSON.stringify(activity("field_change", pendingFieldId))], { type: "application/json" });
    navigator.sendBeacon(root.dataset.activityUrl, body);
  }

  // ---- pages --------------------------------------------------------------

  function fillReview() {
    var fields = allFields();
    Array.prototype.forEach.call(root.querySelectorAll("[data-review-for]"), function (row) {
      var value = fields[row.dataset.reviewFor] || "";
      var dd = row.querySelector("dd");
      dd.textContent = value || "—";
      row.classList.toggle("lw-empty", !value);
    });
  }

  function showPage(n) {
    current = Math.min(Math.max(1, n), pages.length);
    pages.forEach(function (section) { section.hidden = parseInt(section.dataset.page, 10) !== current; });
    Array.prototype.forEach.call(root.querySelectorAll(".lw-progress li"), function (li) {
      var step = parseInt(li.dataset.step, 10);
      li.classList.toggle("lw-current", step === current);
      li.classList.toggle("lw-done", step < current);
    });
    if (root.querySelector("#page-" + current + " #lw-review")) { fillReview(); }
    clearHighlight();
  }

  function goTo(n) {
    if (n === current) { return; }
    showPage(n);
    window.scrollTo(0, 0);
    sendActivity("page_change", null);
  }

  function firstInvalidPage() {
    for (var n = 1; n <= pages.length; n++) {
      var bad = validatePage(n);
      if (bad) { return { page: n, box: bad }; }
    }
    return null;
  }

  function submit(section) {
    var invalid = firstInvalidPage();
    var message = section.querySelector(".lw-form-error");
    if (invalid) {
      goTo(invalid.page);
      inputsOf(invalid.box)[0].focus();
      return;
    }
    var button = section.querySelector("[data-nav=submit]");
    button.disabled = true;
    message.textContent = "";
    sendActivity("submit", null).then(function (response) {
      if (response && response.ok) {
        showSubmitted();
        return;
      }
      button.disabled = false;
      if (!response) { message.textContent = "We could not reach the server. Check your connection and try again."; return; }
      return response.json().then(function (body) {
        message.textContent = body && body.error ? body.error : "Something went wrong; please try again.";
      }, function () { message.textContent = "Something went wrong; please try again."; });
    });
  }

  function showSubmitted() {
    submitted = true;
    document.getElementById("lw-pages").hidden = true;
    root.querySelector(".lw-progress").hidden = true;
    submittedBox.hidden = false;
    window.scrollTo(0, 0);
  }

  // ---- highlights ---------------------------------------------------------

  function clearHighlight() {
    clearTimeout(highlightTimer);
    Array.prototype.forEach.call(root.querySelectorAll(".lw-highlighted"), function (box) {
      box.classList.remove("lw-highlighted");
    });
    Array.prototype.forEach.call(root.querySelectorAll(".lw-highlight-label"), function (tag) { tag.remove(); });
  }

  function highlight(command, pollStartedAtMs) {
    var box = boxFor(command.field_id);
    if (!box) { return; }
    var page = pageOf(box);
    if (page !== current) { goTo(page); }
    clearHighlight();
    box.classList.add("lw-highlighted");
    box.dataset.highlightedAtMs = String(Date.now());  // when it showed (epoch ms), for measurements
    box.dataset.commandId = command.id;  // the stream id: when the command was queued (epoch ms first)
    box.dataset.pollStartedAtMs = String(pollStartedAtMs);  // the poll that brought it
    var tag = document.createElement("span");
    tag.className = "lw-highlight-label";
    tag.setAttribute("role", "status");
    tag.textContent = (command.label || "Look here").slice(0, 60);
    var label = box.querySelector(".lw-label");
    (label || box).insertAdjacentElement("afterend", tag);
    box.scrollIntoView({ block: "center", behavior: "smooth" });
    highlightTimer = setTimeout(clearHighlight, HIGHLIGHT_MS);
  }

  var gone = false;  // the server no longer knows this form (404): polling stops

  // Polls start POLL_INTERVAL_MS apart (start to start), so a command waits at
  // most one interval plus one round trip before it shows.
  function poll() {
    if (submitted || gone) { return; }
    var started = Date.now();
    if (document.visibilityState === "hidden") {  // a background tab: commands wait (unacked) until it is back
      setTimeout(poll, POLL_INTERVAL_MS);
      return;
    }
    fetch(root.dataset.commandsUrl, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (response.status === 404) { gone = true; }  // the session expired or was erased: stop asking
        return response.ok ? response.json() : { commands: [] };
      })
      .then(function (body) {
        var ids = [];
        (body.commands || []).forEach(function (command) {
          ids.push(command.id);
          if (shownCommands[command.id]) { return; }
          shownCommands[command.id] = true;
          if (command.action === "highlight") { highlight(command, started); }
        });
        if (ids.length) { return post(root.dataset.ackUrl, { ids: ids }); }
      })
      .catch(function () { return null; })
      .then(function () { if (!gone) { setTimeout(poll, Math.max(0, started + POLL_INTERVAL_MS - Date.now())); } });
  }

  // ---- wiring -------------------------------------------------------------

  fieldBoxes.forEach(function (box) {
    var id = box.dataset.fieldId;
    inputsOf(box).forEach(function (el) {
      var choice = el.tagName === "SELECT" || el.type === "radio" || el.type === "checkbox" || el.type === "date";
      el.addEventListener("input", function () {
        if (box.classList.contains("lw-invalid")) { showProblem(box, problemOf(box)); }
        fieldChanged(id, choice);
      });
      el.addEventListener("change", function () { fieldChanged(id, true); });
    });
  });

  pages.forEach(function (section) {
    section.addEventListener("click", function (event) {
      var button = event.target.closest("[data-nav]");
      if (!button) { return; }
      var nav = button.dataset.nav;
      if (nav === "back") { goTo(current - 1); return; }
      if (nav === "submit") { submit(section); return; }
      var invalid = validatePage(current);
      if (invalid) { inputsOf(invalid)[0].focus(); return; }
      goTo(current + 1);
    });
  });
  document.getElementById("lw-pages").addEventListener("submit", function (event) { event.preventDefault(); });
  window.addEventListener("pagehide", flushWithBeacon);
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") { flushWithBeacon(); }
  });

  Object.keys(initial.fields || {}).forEach(function (id) {
    var box = boxFor(id);
    if (box) { setValue(box, initial.fields[id]); }
  });
  if (initial.submitted) {
    showSubmitted();
    return;
  }
  showPage(initial.page || 1);
  sendActivity("load", null);
  poll();
  root.dataset.ready = "true";
})();
