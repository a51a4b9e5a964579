// Laneway operator dashboard: plain JS, no build step.
// The API key lives in sessionStorage only and goes out as a Bearer header, never in a URL.
// The live list follows the tenant feed (Server-Sent Events) opened with a short-lived token.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const store = window.sessionStorage;
  let session = null;          // {tenant, operator, key}
  let current = null;          // the open conversation id
  let feed = null;             // the EventSource
  let feedRetryMs = 1000;      // the next reconnect's delay: doubles while streams fail, 1 s once one opens
  let lastEventId = "";
  let listTimer = null;
  let contextTimer = null;
  let reconnectTimer = null;

  function base() {
    return "/api/v1/tenants/" + encodeURIComponent(session.tenant);
  }

  function conversationPath(id, suffix) {
    return base() + "/conversations/" + encodeURIComponent(id) + (suffix || "");
  }

  async function api(method, path, body, extraHeaders) {
    const headers = Object.assign({
      "Authorization": "Bearer " + session.key,
      "X-Operator": session.operator,
    }, extraHeaders || {});
    const init = { method: method, headers: headers, cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    let data = null;
    if (response.status !== 204) {
      try { data = await response.json(); } catch (e) { data = null; }
    }
    if (!response.ok) {
      const error = new Error((data && data.error) || ("HTTP " + response.status));
      error.status = response.status;
      error.data = data;
      throw error;
    }
    return data;
  }

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function ago(iso) {
    const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (seconds < 60) return seconds + " s ago";
    if (seconds < 3600) return Math.round(seconds / 60) + " min ago";
    return Math.round(seconds / 3600) + " h ago";
  }

  // -- sign-in --------------------------------------------------------------------

  function loadSession() {
    const raw = store.getItem("laneway.session");
    session = raw ? JSON.parse(raw) : null;
  }

  async function signIn(event) {
    event.preventDefault();
    const candidate = { tenant: $("tenant").value.trim(), operator: $("operator").value.trim(), key: $("apikey").value.trim() };
    session = candidate;
    $("signin-error").textContent = "";
    try {
      await api("GET", base() + "/conversations?limit=1");
    } catch (error) {
      session = null;
      $("signin-error").textContent = error.status === 404 || error.status === 401
        ? "This key does not belong to that tenant." : error.message;
      return;
    }
    store.setItem("laneway.session", JSON.stringify(candidate));
    $("apikey").value = "";
    start();
  }

  function signOut() {
    store.removeItem("laneway.session");
    if (feed) feed.close();
    feed = null;
    session = null;
    current = null;
    window.location.replace("/dashboard");
  }

  function start() {
    $("signin").hidden = true;
    $("app").hidden = false;
    $("signout").hidden = false;
    $("who").hidden = false;
    $("who").textContent = session.operator + " @ " + session.tenant;
    refreshList();
    connect();
    refreshDesk();
  }

  // -- the live feed --------------------------------------------------------------

  function setLive(on) {
    $("live").dataset.live = on ? "on" : "off";
    $("live").textContent = on ? "live" : "offline";
  }

  async function connect() {
    if (reconnectTimer) { clearTimeout(reconnectTimer); reconnectTimer = null; }
    if (feed) { feed.close(); feed = null; }
    let token;
    try {
      token = await api("POST", base() + "/events/token");
    } catch (error) {
      setLive(false);
      if (error.status === 401 || error.status === 404) { signOut(); return; }
      reconnectTimer = setTimeout(connect, 3000);
      return;
    }
    const url = token.url + "&operator=" + encodeURIComponent(session.operator) +
      (lastEventId ? "&last_event_id=" + encodeURIComponent(lastEventId) : "");
    const source = new EventSource(url);
    feed = source;
    source.addEventListener("open", () => { feedRetryMs = 1000; setLive(true); refreshList(); refreshDesk(); });
    source.addEventListener("feed", (event) => {
      lastEventId = event.lastEventId || lastEventId;
      let data = {};
      try { data = JSON.parse(event.data); } catch (e) { /* a malformed entry only refreshes */ }
      scheduleList();
      scheduleDesk();
      if (current && data.conversation === current) scheduleContext();
    });
    const again = () => {
      if (feed !== source) return;
      source.close();
      feed = null;
      setLive(false);
      // Back off while the server refuses (429: this key's or tenant's streams are all open elsewhere).
      reconnectTimer = setTimeout(connect, feedRetryMs);
      feedRetryMs = Math.min(feedRetryMs * 2, 30000);
    };
    source.addEventListener("reauth", again);
    source.addEventListener("revoked", () => { source.close(); signOut(); });
    source.addEventListener("error", again);
  }

  function scheduleList() {
    if (listTimer) return;
    listTimer = setTimeout(() => { listTimer = null; refreshList(); }, 200);
  }

  function scheduleContext() {
    if (contextTimer) return;
    contextTimer = setTimeout(() => { contextTimer = null; if (current) openConversation(current, false); }, 200);
  }

  // -- the list -------------------------------------------------------------------

  async function refreshList() {
    if (!session) return;
    const params = new URLSearchParams({ limit: "50" });
    if ($("filter-status").value) params.set("status", $("filter-status").value);
    if ($("filter-attention").checked) params.set("needs_attention", "true");
    let data;
    try {
      data = await api("GET", base() + "/conversations?" + params.toString());
    } catch (error) {
      if (error.status === 401 || error.status === 404) signOut();
      return;
    }
    const list = $("conversation-list");
    list.replaceChildren();
    for (const c of data.conversations) {
      const item = el("li", null, "row" + (c.needs_attention ? " attention" : "") + (c.conversation_id === current ? " open" : ""));
      item.dataset.conversation = c.conversation_id;
      item.dataset.status = c.status;
      item.tabIndex = 0;
      const top = el("div", null, "row-top");
      if (c.needs_attention) top.append(el("span", "!", "mark"));
      top.append(el("span", c.customer_name || c.conversation_id, "cid"));
      if (c.customer_name) top.append(el("span", c.conversation_id, "number"));
      top.append(el("span", c.status.replace("_", " "), "badge status-" + c.status));
      if (c.lane) top.append(el("span", c.lane, "badge lane"));
      top.append(el("span", ownerText(c), "badge owner owner-" + c.owner));
      item.dataset.owner = c.owner;
      item.append(top);
      const bottom = el("div", null, "row-bottom");
      bottom.append(el("span", ago(c.last_activity_at), "when"));
      if (c.form_page) bottom.append(el("span", "form: page " + (c.form_page.page_number || "?") + (c.form_page.page_title ? " " + c.form_page.page_title : ""), "form-page"));
      if (c.attention_reasons.length) bottom.append(el("span", c.attention_reasons.join(", "), "why"));
      if (c.claimed_by) bottom.append(el("span", "claimed by " + c.claimed_by.operator_id, "claimed"));
      if (c.last_message && c.last_message.unanswered) {
        bottom.append(el("span", "unanswered", "unanswered-mark"));
        item.dataset.unanswered = "true";
      }
      if (c.alert) bottom.append(el("span", alertText(c.alert.rule_id), "alert-mark"));
      if (c.sla) bottom.append(slaMark(c.sla));
      item.append(bottom);
      if (c.last_message) item.append(el("div", c.last_message.author + ": " + c.last_message.text, "preview"));
      item.addEventListener("click", () => openConversation(c.conversation_id, true));
      item.addEventListener("keydown", (e) => { if (e.key === "Enter") openConversation(c.conversation_id, true); });
      list.append(item);
    }
    $("list-empty").hidden = data.conversations.length > 0;
  }

  // -- the conversation view ------------------------------------------------------

  let lastCtx = null;

  function ownerText(c) {
    if (c.owner === "operator") return "owner: " + c.owner_id;
    return c.owner === "queue" ? "owner: queue" : "owner: AI";
  }

  function resetHandback() {
    $("handback-warning").hidden = true;
    $("handback-warning").textContent = "";
    $("handback-btn").textContent = "Hand back to AI";
  }

  // Hand-back warns first when the customer's last message is unanswered (the AI answers it on hand-back).
  function handBack() {
    const n = lastCtx && lastCtx.conversation_id === current ? lastCtx.unanswered_customer_messages : 0;
    const warning = $("handback-warning");
    if (n > 0 && warning.hidden) {
      warning.textContent = (n === 1 ? "The customer's last message is" : "The customer's last " + n + " messages are") +
        " unanswered: the AI will answer on hand-back. Click again to hand back.";
      warning.hidden = false;
      $("handback-btn").textContent = "Confirm hand back";
      return;
    }
    resetHandback();
    act("POST", "/handback");
  }

  async function openConversation(id, fresh) {
    current = id;
    document.body.classList.add("viewing");
    let ctx;
    try {
      ctx = await api("GET", conversationPath(id, "/context"));
    } catch (error) {
      $("action-error").textContent = error.message;
      return;
    }
    if (current !== id) return;
    lastCtx = ctx;
    $("conversation").hidden = false;
    if (fresh) $("action-error").textContent = "";
    if (fresh || !ctx.unanswered_customer_messages) resetHandback();
    $("conv-title").textContent = ctx.customer_name ? ctx.customer_name + " · " + id : id;
    $("conversation").dataset.status = ctx.status;
    $("conversation").dataset.conversation = id;
    $("conversation").dataset.owner = ctx.owner;
    $("conversation").dataset.unanswered = String(ctx.unanswered_customer_messages);
    $("conv-meta").textContent = [ctx.status.replace("_", " "), ownerText(ctx) + (ctx.owner === "ai" ? "" : " (AI silent)"),
      ctx.lane ? "lane " + ctx.lane : "no lane",
      ctx.channel, ctx.needs_attention ? "needs attention: " + ctx.attention_reasons.join(", ") : ""].filter(Boolean).join(" · ");
    const mine = ctx.claimed_by && ctx.claimed_by.operator_id === session.operator;
    $("conv-claim").textContent = ctx.claimed_by ? "Claimed by " + ctx.claimed_by.operator_id + (mine ? " (you)" : "") : "Not claimed";
    $("conversation").dataset.claimedBy = ctx.claimed_by ? ctx.claimed_by.operator_id : "";
    $("claim-btn").disabled = !!ctx.claimed_by;
    $("release-btn").disabled = !mine;
    $("reply-btn").disabled = !mine;
    $("assign-btn").disabled = !!ctx.claimed_by && !mine;

    const transcript = $("transcript");
    transcript.replaceChildren();
    for (const t of ctx.transcript) {
      const item = el("li", null, "msg " + t.author + (t.unanswered ? " unanswered" : ""));
      item.dataset.author = t.author;
      if (t.unanswered) item.dataset.unanswered = "true";
      const who = t.author + (t.author_id ? " (" + t.author_id + ")" : "") + " · " + (t.channel || "") + " · " + new Date(t.at).toLocaleTimeString();
      item.append(el("div", who, "msg-meta"));
      item.append(el("div", t.text, "msg-text"));
      if (t.media) item.append(mediaLine(t.media));
      if (t.delivery) {
        // Delivery status badge (Twilio's MessageStatus once reported), with the error code and its meaning.
        const badge = el("span", t.delivery + (t.delivery_error_code ? " " + t.delivery_error_code : ""),
          "badge delivery-" + t.delivery.replace(/[^a-z_]/g, ""));
        if (t.delivery_error) badge.title = t.delivery_error;
        const line = el("div", null, "msg-delivery");
        line.append(badge);
        if (t.delivery_error) line.append(el("span", " " + t.delivery_error, "delivery-error"));
        if (t.delivery_deferred_reason) {
          // Deferred before sending (issue 15): quiet hours in the customer's time zone, or the sender's pacing.
          const why = t.delivery_deferred_reason === "quiet_hours" ? "quiet hours" : "pacing";
          const when = t.delivery_deferred_until ? new Date(t.delivery_deferred_until).toLocaleString() : "";
          line.append(el("span", " " + why + (when ? ", goes " + when : ""), "delivery-deferred"));
        }
        item.append(line);
      }
      if (t.unanswered) item.append(el("div", "unanswered", "msg-unanswered"));
      transcript.append(item);
    }
    transcript.scrollTop = transcript.scrollHeight;
    showWindow(ctx);

    const slots = $("ctx-slots");
    slots.replaceChildren();
    for (const [k, v] of Object.entries(ctx.slots)) { slots.append(el("dt", k)); slots.append(el("dd", v)); }
    const form = $("ctx-form");
    form.replaceChildren();
    if (ctx.form && ctx.form.screen) {
      const s = ctx.form.screen;
      form.append(el("p", "Page " + (s.page_number || "?") + (s.page_count ? " of " + s.page_count : "") + (s.page_title ? ": " + s.page_title : "") + (s.submitted ? " (submitted)" : "")));
      form.append(el("p", "Last " + s.last_action + " " + Math.round(s.seconds_since_update) + " s ago", "muted"));
      for (const a of ctx.form.recent_activity) {
        form.append(el("p", a.action + (a.field_id ? " " + a.field_id : "") + " on " + a.screen_name, "muted"));
      }
    } else {
      form.append(el("p", ctx.form ? "Form opened, no activity yet" : "No form", "muted"));
    }
    showSummary(ctx.handoff_summary);
    showCsat(ctx.csat);
    const listOf = (id, rows) => { const ul = $(id); ul.replaceChildren(); rows.forEach((r) => ul.append(el("li", r))); };
    listOf("ctx-notes", ctx.notes.map((n) => n.author_id + ": " + n.text));
    listOf("ctx-lanes", ctx.lane_history.map((c) => c.lane + " (" + c.reason + ")"));
    listOf("ctx-triggers", ctx.triggers_fired.map((f) => f.rule_id + " × " + f.fires));
    document.querySelectorAll("#conversation-list li").forEach((li) => li.classList.toggle("open", li.dataset.conversation === id));
  }

  // WhatsApp: the 24-hour window's state and time left; when closed, the reply box offers the tenant's templates.
  function showWindow(ctx) {
    const line = $("wa-window");
    const picker = $("reply-template");
    const w = ctx.whatsapp_window;
    line.hidden = !w;
    if (!w) { picker.hidden = true; picker.replaceChildren(); return; }
    const h = Math.floor(w.seconds_left / 3600), m = Math.floor((w.seconds_left % 3600) / 60);
    line.textContent = w.open ? "WhatsApp window open: " + h + " h " + m + " min left"
      : "WhatsApp window closed: replies go out as an approved template";
    line.dataset.open = String(w.open);
    const chosen = picker.value;
    picker.replaceChildren(el("option", w.open ? "Free-form reply" : "Default template for replies", ""));
    picker.firstChild.value = "";
    for (const t of ctx.whatsapp_templates) {
      const option = el("option", t.name + (t.description ? ": " + t.description : ""));
      option.value = t.name;
      picker.append(option);
    }
    picker.value = chosen;
    picker.hidden = w.open || ctx.whatsapp_templates.length === 0;
  }

  // Attachments are fetched through the media proxy with the Bearer key, then shown from a blob URL.
  function mediaLine(media) {
    const line = el("div", null, "msg-media");
    media.forEach((m) => {
      const button = el("button", m.content_type.startsWith("image/") ? "Show photo" : "Download " + m.content_type, "media-btn");
      button.type = "button";
      button.addEventListener("click", async () => {
        try {
          const response = await fetch(m.url, { headers: { "Authorization": "Bearer " + session.key, "X-Operator": session.operator }, cache: "no-store" });
          if (!response.ok) throw new Error("attachment: HTTP " + response.status);
          const url = URL.createObjectURL(await response.blob());
          if (m.content_type.startsWith("image/")) {
            const img = el("img", null, "media-img");
            img.src = url;
            img.alt = "attachment";
            button.replaceWith(img);
          } else {
            const a = el("a", "Save " + m.content_type);
            a.href = url;
            a.download = "attachment";
            button.replaceWith(a);
          }
        } catch (error) {
          $("action-error").textContent = error.message;
        }
      });
      line.append(button);
    });
    return line;
  }

  function showSummary(summary) {
    const box = $("ctx-summary");
    box.replaceChildren();
    if (!summary) return;
    box.dataset.source = summary.source;
    box.append(el("p", summary.wants, "summary-wants"));
    if (summary.collected.length) box.append(el("p", "Collected: " + summary.collected.join("; ")));
    if (summary.tried.length) box.append(el("p", "Tried: " + summary.tried.join("; ")));
    box.append(el("p", summary.source === "model"
      ? "Written by the model " + ago(summary.written_at) : "From the conversation's state", "muted"));
  }

  function showCsat(csat) {
    const box = $("ctx-csat");
    box.dataset.score = csat && csat.score ? String(csat.score) : "";
    if (!csat) { box.textContent = "No survey sent"; return; }
    if (csat.score) {
      box.textContent = csat.score + " / 5 (closed by " + csat.operator_id + ", answered " + ago(csat.answered_at) + ")";
    } else {
      box.textContent = "Survey sent " + ago(csat.sent_at) + " after " + csat.operator_id + " closed: " +
        (csat.pending ? "pending" : "no answer");
    }
  }

  // -- canned responses: "/" in the reply box ----------------------------------------

  let canned = [];            // the rendered responses shown
  let cannedIndex = 0;        // the highlighted one
  let cannedSeq = 0;          // ignores answers to older queries
  let cannedTimer = null;

  function cannedQuery() {
    const match = /^\/([^\s]{0,64})$/.exec($("reply-text").value);
    return match ? match[1] : null;
  }

  function hideCanned() {
    canned = [];
    $("canned").hidden = true;
    $("canned").replaceChildren();
  }

  function drawCanned() {
    const list = $("canned");
    list.replaceChildren();
    canned.forEach((c, i) => {
      const item = el("li", null, "canned-item" + (i === cannedIndex ? " selected" : ""));
      item.dataset.shortcut = c.shortcut;
      item.setAttribute("role", "option");
      item.setAttribute("aria-selected", String(i === cannedIndex));
      const head = el("div", null, "canned-head");
      head.append(el("span", "/" + c.shortcut, "canned-shortcut"), el("span", c.title, "canned-title"));
      item.append(head, el("div", c.text, "canned-text"));
      if (c.missing.length) item.append(el("div", "not known yet: " + c.missing.join(", "), "canned-missing"));
      item.addEventListener("mousedown", (e) => { e.preventDefault(); pickCanned(i); });
      list.append(item);
    });
    list.hidden = canned.length === 0;
  }

  async function searchCanned() {
    const query = cannedQuery();
    if (query === null || !current) { hideCanned(); return; }
    const seq = ++cannedSeq;
    let data;
    try {
      data = await api("GET", conversationPath(current, "/canned-responses?q=" + encodeURIComponent(query)));
    } catch (error) {
      hideCanned();
      return;
    }
    if (seq !== cannedSeq || cannedQuery() !== query) return;
    canned = data.canned_responses;
    cannedIndex = 0;
    drawCanned();
  }

  function onReplyInput() {
    if (cannedTimer) clearTimeout(cannedTimer);
    if (cannedQuery() === null) { cannedSeq++; hideCanned(); return; }
    cannedTimer = setTimeout(searchCanned, 120);
  }

  function pickCanned(i) {
    const chosen = canned[i];
    if (!chosen) return;
    cannedSeq++;
    $("reply-text").value = chosen.text;
    hideCanned();
    $("reply-text").focus();
  }

  function onReplyKey(event) {
    if ($("canned").hidden || !canned.length) return;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      cannedIndex = (cannedIndex + (event.key === "ArrowDown" ? 1 : canned.length - 1)) % canned.length;
      drawCanned();
    } else if ((event.key === "Enter" && !event.shiftKey) || event.key === "Tab") {
      event.preventDefault();
      pickCanned(cannedIndex);
    } else if (event.key === "Escape") {
      event.preventDefault();
      hideCanned();
    }
  }

  async function act(method, suffix, body, headers) {
    if (!current) return null;
    $("action-error").textContent = "";
    try {
      const result = await api(method, conversationPath(current, suffix), body, headers);
      await openConversation(current, false);
      scheduleList();
      return result;
    } catch (error) {
      $("action-error").textContent = error.message;
      return null;
    }
  }

  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return String(Date.now()) + "-" + Math.random().toString(16).slice(2);
  }

  async function sendReply(event) {
    event.preventDefault();
    const text = $("reply-text").value.trim();
    if (!text) return;
    const body = { text: text };
    if (!$("reply-template").hidden && $("reply-template").value) body.template = $("reply-template").value;
    const result = await act("POST", "/reply", body, { "Idempotency-Key": newKey() });
    if (result) $("reply-text").value = "";
  }

  async function addNote(event) {
    event.preventDefault();
    const text = $("note-text").value.trim();
    if (!text) return;
    const result = await act("POST", "/notes", { text: text }, { "Idempotency-Key": newKey() });
    if (result) $("note-text").value = "";
  }

  // -- the desk: presence, assignment, SLA countdowns --------------------------------

  let desk = null;             // GET …/desk: policy, operators, queue, me
  let deskTimer = null;

  function alertText(ruleId) {
    if (ruleId === "claim_expired") return "claim expired";
    if (ruleId.startsWith("sla_")) return "SLA breached: " + ruleId.slice(4).replace("_", " ");
    return "alert: " + ruleId;
  }

  function clock(seconds) {
    const s = Math.abs(Math.round(seconds));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    const two = (n) => String(n).padStart(2, "0");
    return (h ? h + ":" + two(m) : String(m)) + ":" + two(r);
  }

  // The nearest SLA clock of a row; tickSla() counts it down every second from its due_at.
  function slaMark(sla) {
    const mark = el("span", null, "sla");
    mark.dataset.due = sla.due_at;
    mark.dataset.kind = sla.kind;
    renderSla(mark);
    return mark;
  }

  function renderSla(mark) {
    const left = (Date.parse(mark.dataset.due) - Date.now()) / 1000;
    const kind = mark.dataset.kind.replace("_", " ");
    mark.classList.toggle("breached", left <= 0);
    mark.dataset.breached = String(left <= 0);
    mark.textContent = left > 0 ? kind + " " + clock(left) + " left" : kind + " SLA breached " + clock(left) + " ago";
  }

  function tickSla() {
    document.querySelectorAll(".sla[data-due]").forEach(renderSla);
  }

  function scheduleDesk() {
    if (deskTimer) return;
    deskTimer = setTimeout(() => { deskTimer = null; refreshDesk(); }, 300);
  }

  async function refreshDesk() {
    if (!session) return;
    try {
      desk = await api("GET", base() + "/desk");
    } catch (error) {
      return;
    }
    const button = $("presence-btn");
    button.hidden = false;
    button.dataset.status = desk.me.status;
    button.textContent = desk.me.status === "online" ? "You: online" : "You: away";
    const others = desk.operators.filter((o) => o.status === "online" && o.operator_id !== session.operator);
    const select = $("assign-to");
    const chosen = select.value;
    select.replaceChildren(el("option", "assign to…"));
    select.firstChild.value = "";
    for (const o of others) {
      const option = el("option", o.operator_id + " (" + o.load + ")");
      option.value = o.operator_id;
      select.append(option);
    }
    select.value = others.some((o) => o.operator_id === chosen) ? chosen : "";
    $("desk-summary").textContent = desk.policy === "manual" ? "" :
      desk.queue.length + " waiting · " + desk.operators.filter((o) => o.status === "online").length + " online";
  }

  async function togglePresence() {
    const next = $("presence-btn").dataset.status === "online" ? "away" : "online";
    try {
      await api("PUT", base() + "/desk/presence", { status: next });
    } catch (error) {
      $("action-error").textContent = error.message;
    }
    refreshDesk();
  }

  async function assignTo() {
    const operator = $("assign-to").value;
    if (!operator) return;
    await act("POST", "/assign", { operator_id: operator });
    refreshDesk();
  }

  function closeView() {
    current = null;
    hideCanned();
    document.body.classList.remove("viewing");
    $("conversation").hidden = true;
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("signin-form").addEventListener("submit", signIn);
    $("signout").addEventListener("click", signOut);
    $("filter-status").addEventListener("change", refreshList);
    $("filter-attention").addEventListener("change", refreshList);
    $("claim-btn").addEventListener("click", () => act("POST", "/claim"));
    $("release-btn").addEventListener("click", () => act("DELETE", "/claim"));
    $("escalate-btn").addEventListener("click", () => act("POST", "/escalate"));
    $("handback-btn").addEventListener("click", handBack);
    $("close-btn").addEventListener("click", () => act("POST", "/close"));
    $("call-btn").addEventListener("click", () => act("POST", "/call", {}));  // service/outbound_call.py
    $("reply-form").addEventListener("submit", sendReply);
    $("reply-text").addEventListener("input", onReplyInput);
    $("reply-text").addEventListener("keydown", onReplyKey);
    $("reply-text").addEventListener("blur", () => setTimeout(hideCanned, 150));
    $("note-form").addEventListener("submit", addNote);
    $("back").addEventListener("click", closeView);
    $("presence-btn").addEventListener("click", togglePresence);
    $("assign-btn").addEventListener("click", assignTo);
    setInterval(tickSla, 1000);
    setInterval(() => { if (session) scheduleList(); }, 30000); // "x min ago" and stalled marks age without feed events
    loadSession();
    if (session) start();
  });
})();
