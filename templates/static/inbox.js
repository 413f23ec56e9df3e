/* The agent's inbox (/): conversation list, thread, AI ⇄ HUMAN toggle, reply box, live updates.
   Needs i18n.js (window.App). Message text reaches the page as text nodes only. */
"use strict";
(function () {
const {t, el, api} = App;
const $ = (id) => document.getElementById(id);
const enc = encodeURIComponent;
const PAGE = 30;
const coarse = window.matchMedia && matchMedia("(pointer: coarse)").matches;

const state = {
  filter: "all", q: "",
  items: [], next: null, more: false, listCtl: null, listLoaded: false,
  openId: null, seq: 0, renderedSeq: -1, threadBusy: false, threadAgain: false, last: null,
  mode: null, modeBusy: false, sending: false,
  drafts: new Map(),      // conversation id → {value, cid, cidText}
  actionIds: new Map(),   // "draft:12" / "resend:12" → client_id, reused when the same action is retried
};
const listNodes = new Map();
let msgNodes = new Map();
let es = null, esRetry = 1000, esHadError = false, hiddenAt = 0;
const sig = (o) => App.lang + (App.arabicDigits ? "1" : "0") + JSON.stringify(o);
const same = (a, b) => a !== null && a !== undefined && b !== null && b !== undefined && String(a) === String(b);

const MEDIA_ICON = {image: "📷", video: "🎥", audio: "🎤", document: "📄", file: "📎", sticker: "🏷️", location: "📍", contact: "👤", reaction: "💬", call: "📞"};
const S_HAS = App.has;
const mediaLabel = (type) => (S_HAS("media." + type) ? t("media." + type) : type);
const authorLabel = (a) => (S_HAS("author." + a) ? t("author." + a) : a || "");
const modeLabel = (m) => (S_HAS("mode." + m) ? t("mode." + m) : m || "");
const pretty = (s) => String(s || "").replace(/_/g, " ");
const category = (c) => (S_HAS("cat." + c) ? t("cat." + c) : pretty(c));
const RULE_CAT = {price_negotiation: "negotiation", asks_for_a_person: "human_request",
  legal_or_contract: "legal", outside_the_listings: "out_of_scope"};
/** "phone_reply" → "replied from the phone"; "escalation:price_negotiation" → its category, translated. */
function reasonLabel(r) {
  const [head, rest] = String(r || "").split(/:(.*)/s);
  const known = S_HAS("reason." + head) ? t("reason." + head) : pretty(head);
  const rule = (rest || "").replace(/^examples:/, "");
  return rest ? known + ": " + category(RULE_CAT[rule] || rule) : known;
}
function actorLabel(actor) {
  const a = String(actor || "").split(":")[0];
  return S_HAS("actor." + a) ? t("actor." + a) : pretty(a);
}
function initial(title) {
  const m = /\p{L}/u.exec(title || "");
  return m ? m[0].toUpperCase() : "#";
}
function asList(v) {
  if (v === undefined || v === null || v === "") return [];
  return (Array.isArray(v) ? v : [v]).map((x) => (typeof x === "object" && x ? x.name || x.label || JSON.stringify(x) : String(x))).filter(Boolean);
}
const isNum = (v) => typeof v === "number" && isFinite(v);
function range(min, max, cur) {
  if (isNum(min) && isNum(max)) return min === max ? App.money(min, cur) : App.money(min, cur) + " – " + App.num(max, {notation: "compact", maximumFractionDigits: 1});
  if (isNum(max)) return "≤ " + App.money(max, cur);
  if (isNum(min)) return "≥ " + App.money(min, cur);
  return "";
}

function listParams(before) {
  const p = new URLSearchParams({filter: state.filter, limit: String(PAGE)});
  if (state.q) p.set("q", state.q);
  if (before) p.set("before", before);
  return p.toString();
}
const when = (c) => { const d = Date.parse(c.last_message_at || ""); return isNaN(d) ? -Infinity : d; };
const newer = (a, b) => when(a) > when(b) || (when(a) === when(b) && Number(a.id) > Number(b.id));

async function loadList(opt) {
  opt = opt || {};
  if (state.listCtl) state.listCtl.abort();
  const ctl = state.listCtl = new AbortController();
  const list = $("conv-list");
  if (opt.reset) {
    state.items = []; state.next = null; state.more = false; state.listLoaded = false;
    renderList();
    $("list-skeleton").hidden = false;
    $("list-note").hidden = true;
    list.setAttribute("aria-busy", "true");
  }
  try {
    const data = await api("GET", "/api/conversations?" + listParams(), undefined, {signal: ctl.signal, quiet: opt.quiet});
    if (ctl !== state.listCtl) return;
    const fresh = data.conversations || [];
    if (!state.more) {
      state.items = fresh;
      state.next = data.next || null;
    } else {
      // Older pages stay; moved items come from the fresh page; non-matches go.
      const ids = new Set(fresh.map((c) => String(c.id)));
      const oldest = fresh[fresh.length - 1];
      const rest = state.items.filter((c) => !ids.has(String(c.id)) && (!oldest || newer(oldest, c)));
      state.items = fresh.concat(rest);
    }
    state.listLoaded = true;
    renderList();
  } catch (e) {
    if (ctl !== state.listCtl || (e && e.name === "AbortError")) return;
    if (!state.listLoaded) showListNote(e.message, true);
  } finally {
    if (ctl === state.listCtl) {
      state.listCtl = null;
      $("list-skeleton").hidden = true;
      list.setAttribute("aria-busy", "false");
    }
  }
}

async function loadMore() {
  if (!state.next) return;
  const btn = $("load-more"), key = state.filter + "\n" + state.q;
  btn.disabled = true;
  btn.setAttribute("aria-busy", "true");
  try {
    const data = await api("GET", "/api/conversations?" + listParams(state.next));
    if (key !== state.filter + "\n" + state.q) return;
    const ids = new Set(state.items.map((c) => String(c.id)));
    for (const c of data.conversations || []) if (!ids.has(String(c.id))) state.items.push(c);
    state.next = data.next || null;
    state.more = true;
    renderList();
  } catch (e) { /* toast shown */ } finally {
    btn.disabled = false;
    btn.removeAttribute("aria-busy");
  }
}

function showListNote(text, retry) {
  const note = $("list-note");
  note.textContent = text;
  if (retry) {
    note.append(" ", el("button", {type: "button", class: "link-btn", onclick: () => loadList({reset: true}), text: t("retry")}));
  }
  note.hidden = false;
}

function renderList() {
  const ul = $("conv-list"), seen = new Set();
  let prev = null;
  for (const c of state.items) {
    const id = String(c.id);
    const s = sig(c) + (same(id, state.openId) ? "*" : "");
    let node = listNodes.get(id);
    if (!node || node._sig !== s) {
      const fresh = buildItem(c);
      fresh._sig = s;
      if (node) node.replaceWith(fresh);
      node = fresh;
      listNodes.set(id, node);
    }
    const want = prev ? prev.nextSibling : ul.firstChild;
    if (want !== node) ul.insertBefore(node, want);
    prev = node;
    seen.add(id);
  }
  for (const [id, node] of listNodes) if (!seen.has(id)) { node.remove(); listNodes.delete(id); }
  const note = $("list-note");
  if (state.listLoaded && !state.items.length) {
    note.textContent = t(state.q || state.filter !== "all" ? "list.noResults" : "list.empty");
    note.hidden = false;
  } else if (state.items.length) note.hidden = true;
  $("load-more").parentElement.hidden = !state.next;
  const unread = state.items.reduce((n, c) => n + (c.unread > 0 ? 1 : 0), 0);
  const base = t("inbox.title") + " · " + t("app.name");
  document.title = unread ? "(" + App.num(unread) + ") " + base : base;
}

function buildItem(c) {
  const id = String(c.id), title = c.title || c.phone || "—";
  const li = el("li", {class: "conv" + (c.unread > 0 ? " unread" : ""), "data-testid": "conversation-item", "data-id": id, "data-mode": c.mode});
  const a = el("a", {class: "conv-link", href: "#/c/" + enc(id), "aria-current": same(id, state.openId) ? "true" : null});
  const top = el("span", {class: "conv-top"},
    el("span", {class: "conv-title", dir: "auto", "data-testid": "conversation-title", text: title}),
    el("time", {class: "conv-time", datetime: c.last_message_at || null, title: App.fullTime(c.last_message_at) || null, text: App.relTime(c.last_message_at)}));
  const mid = el("span", {class: "conv-mid"});
  const lm = c.last_message;
  const prevBox = el("span", {class: "conv-prev", "data-testid": "last-message"});
  if (lm) {
    prevBox.append(el("span", {class: "prev-author", "data-author": lm.author, text: authorLabel(lm.author) + ":"}));
    const type = lm.message_type || "text";
    let body = lm.body || "";
    if (type !== "text" && MEDIA_ICON[type]) body = MEDIA_ICON[type] + " " + (body || mediaLabel(type));
    prevBox.append(el("span", {class: "prev-text", dir: "auto", text: body}));
  }
  mid.append(prevBox);
  if (c.unread > 0) {
    mid.append(el("span", {class: "unread-badge", "data-testid": "unread-count"},
      el("span", {"aria-hidden": "true", text: App.num(c.unread)}), App.srOnly(t("list.unreadN", {n: c.unread}))));
  }
  const tags = el("span", {class: "conv-tags"},
    el("span", {class: "badge badge-" + c.mode, "data-testid": "mode-badge", "data-mode": c.mode, text: modeLabel(c.mode)}));
  if (c.escalation) {
    const why = c.escalation.reason || category(c.escalation.category || c.escalation.rule);
    tags.append(el("span", {class: "esc-flag", "data-testid": "escalation-flag", "data-category": c.escalation.category || null},
      el("span", {"aria-hidden": "true", text: "⚠"}), App.srOnly(t("esc.title") + ": "), el("span", {dir: "auto", text: why})));
  } else if (c.needs_attention) {
    tags.append(el("span", {class: "attention", "data-testid": "needs-attention", text: t("esc.title")}));
  }
  a.append(el("span", {class: "avatar", "aria-hidden": "true", text: initial(title)}),
    el("span", {class: "conv-main"}, top, mid, tags));
  li.append(a);
  return li;
}

function tickTimes() {
  document.querySelectorAll(".conv-time[datetime]").forEach((e) => { e.textContent = App.relTime(e.getAttribute("datetime")); });
}

function findItem(id) { return state.items.find((c) => same(c.id, id)); }

function route() {
  const m = /^#\/c\/([^/?#]+)$/.exec(location.hash);
  const id = m ? decodeURIComponent(m[1]) : null;
  $("main").dataset.view = id ? "thread" : "list";
  if (!same(id, state.openId) && !(id === null && state.openId === null)) openThread(id);
}

function goBack() {
  if (history.state && history.state.fromList) history.back();
  else location.hash = "";
}

function saveDraft() {
  if (state.openId === null) return;
  const d = state.drafts.get(state.openId) || {};
  d.value = $("reply-input").value;
  state.drafts.set(state.openId, d);
}
function draft() {
  let d = state.drafts.get(state.openId);
  if (!d) { d = {value: "", cid: null, cidText: null}; state.drafts.set(state.openId, d); }
  return d;
}

function openThread(id) {
  saveDraft();
  state.openId = id;
  state.seq++;
  state.last = null;
  state.mode = null;
  msgNodes = new Map();
  $("messages").textContent = "";
  $("new-below").hidden = true;
  renderList();
  const pane = $("thread-pane");
  if (id === null) {
    pane.dataset.state = "empty";
    return;
  }
  pane.dataset.state = "loading";
  const c = findItem(id);
  renderHead(c || {id: id, title: "", phone: ""});
  applyMode(c ? c.mode : null);
  $("esc-banner").hidden = true;
  $("lead-card").open = false;
  $("listing-cards").open = false;
  $("lead-sum").textContent = "";
  $("lead-dl").textContent = "";
  $("listing-cards").hidden = true;
  $("thread-loading").textContent = t("loading");
  $("thread-loading").hidden = false;
  const input = $("reply-input");
  input.value = draft().value || "";
  autosize();
  updateSend();
  $("thread-title").focus({preventScroll: true});
  loadThread();
}

async function loadThread() {
  if (state.openId === null) return;
  if (state.threadBusy) { state.threadAgain = true; return; }
  state.threadBusy = true;
  const id = state.openId, seq = state.seq, first = state.renderedSeq !== seq;
  try {
    const data = await api("GET", "/api/conversations/" + enc(id), undefined, {quiet: !first});
    if (seq !== state.seq) return;
    renderThread(data, first);
    state.renderedSeq = seq;
    const c = data.conversation || {};
    if (first || (c.unread > 0 && !document.hidden)) markRead(id);
  } catch (e) {
    if (seq === state.seq && first) {
      const p = $("thread-loading");
      p.textContent = e.message + " ";
      p.append(el("button", {type: "button", class: "link-btn", onclick: () => { p.textContent = t("loading"); loadThread(); }, text: t("retry")}));
      p.hidden = false;
    }
  } finally {
    state.threadBusy = false;
    if (state.threadAgain) { state.threadAgain = false; loadThread(); }
  }
}

function markRead(id) {
  api("POST", "/api/conversations/" + enc(id) + "/read", {}, {quiet: true}).catch(() => {});
  const c = findItem(id);
  if (c && c.unread) { c.unread = 0; renderList(); }
}

function renderThread(data, first) {
  const c = data.conversation || {};
  state.last = data;
  $("thread-pane").dataset.state = "ready";
  $("thread-loading").hidden = true;
  const sc = $("messages-scroll");
  // Decided before the banner and cards above change height.
  const follow = first || sc.scrollHeight - sc.scrollTop - sc.clientHeight < 80;
  renderHead(c);
  applyMode(c.mode);
  renderEscalations(data.escalations || []);
  renderLead(c);
  renderListings(data.listings || []);
  renderViewings(data.viewings || []);
  renderTasks(data.tasks || [], c.id);
  renderMessages(data.messages || [], follow);
  // Keep the list in step with what the thread says.
  const item = findItem(c.id);
  if (item && item.mode !== c.mode) { item.mode = c.mode; renderList(); }
}

function renderHead(c) {
  $("thread-title").textContent = c.title || c.phone || "";
  const sub = $("thread-sub");
  sub.textContent = "";
  if (c.phone) sub.append(el("a", {href: "tel:" + String(c.phone).replace(/[^\d+]/g, ""), dir: "ltr", text: c.phone}));
  if (c.mode === "HUMAN" && c.mode_reason) sub.append(c.phone ? " · " : "", el("bdi", {text: reasonLabel(c.mode_reason)}));
}

function applyMode(mode) {
  state.mode = mode || null;
  const b = $("mode-toggle");
  b.hidden = !mode;
  if (!mode) return;
  b.dataset.mode = mode;
  b.setAttribute("aria-pressed", String(mode === "HUMAN"));
  b.title = t("toggle." + mode + ".hint");
  $("mt-mode").textContent = modeLabel(mode);
  $("mt-hint").textContent = t("toggle." + mode);
  $("handback").hidden = mode !== "HUMAN";
  const input = $("reply-input");
  input.dataset.i18nPh = "reply.ph" + (mode === "HUMAN" ? "HUMAN" : "AI");
  input.placeholder = t(input.dataset.i18nPh);
}

function renderEscalations(list) {
  const open = list.filter((e) => e.status === "open");
  const banner = $("esc-banner");
  banner.hidden = !open.length;
  if (!open.length) return;
  const e = open[0];
  banner.dataset.escalationId = e.id;
  const cat = $("esc-cat");
  cat.textContent = t("esc.title") + " · ";
  cat.append(el("bdi", {text: category(e.category || e.rule)}), ":");
  $("esc-reason").textContent = e.reason || pretty(e.rule) || "";
  $("esc-more").textContent = open.length > 1 ? t("esc.more", {n: open.length - 1}) : "";
}

function renderLead(c) {
  const L = c.lead || {}, P = c.preferences || {};
  const pick = (a, b) => (a !== undefined && a !== null && a !== "" ? a : b);
  const areas = asList(pick(L.areas, P.areas));
  const beds = pick(L.bedrooms_min, P.bedrooms_min);
  const intentRaw = pick(L.intent, P.listing_type);
  const intent = intentRaw ? (S_HAS("intent." + intentRaw) ? t("intent." + intentRaw) : pretty(intentRaw)) : "";
  const currency = pick(L.currency, P.currency);
  const budget = range(pick(L.budget_min, P.price_min), pick(L.budget_max, P.price_max), currency);
  const types = asList(P.property_types).map(pretty);
  const sep = App.lang === "ar" ? "، " : ", ";
  const rows = [
    ["lead.name", L.name || ""],
    ["lead.intent", intent],
    ["lead.area", areas.join(sep)],
    ["lead.bedrooms", isNum(beds) ? t("lead.beds", {n: beds}) : beds ? String(beds) : ""],
    ["lead.budget", budget],
    ["lead.types", types.join(sep)],
    ["lead.timeline", L.timeline ? pretty(L.timeline) : ""],
    ["lead.financing", L.financing ? pretty(L.financing) : ""],
  ].filter((r) => r[1]);
  const dl = $("lead-dl");
  dl.textContent = "";
  for (const [k, v] of rows) dl.append(el("dt", {text: t(k)}), el("dd", {dir: "auto", "data-field": k.slice(5), text: v}));
  const sum = $("lead-sum");
  sum.textContent = "";
  const short = [areas.join(sep), rows.find((r) => r[0] === "lead.bedrooms"), intent, budget, L.name]
    .map((x) => (Array.isArray(x) ? x[1] : x)).filter(Boolean);
  if (!short.length) sum.textContent = t("lead.none");
  short.forEach((s, i) => { if (i) sum.append(" · "); sum.append(el("bdi", {text: s})); });
}

function renderListings(ls) {
  const box = $("listing-cards"), cards = $("lcards");
  box.hidden = !ls.length;
  $("listing-count").textContent = App.num(ls.length);
  cards.textContent = "";
  for (const l of ls) {
    const facts = el("span", {class: "facts"});
    [pretty(l.property_type), l.listing_type ? (S_HAS("ltype." + l.listing_type) ? t("ltype." + l.listing_type) : pretty(l.listing_type)) : "", l.district]
      .filter(Boolean).forEach((f, i) => { if (i) facts.append(" · "); facts.append(el("bdi", {text: f})); });
    const st = l.status || "";
    cards.append(el("article", {class: "lcard", "data-testid": "listing-card", "data-reference": l.reference},
      el("span", {class: "ref", text: l.reference}),
      el("span", {class: "name", dir: "auto", text: l.project_name || ""}),
      facts,
      el("span", {class: "price", text: App.digits(l.price_text)}),
      st ? el("span", {class: "st st-" + st, text: S_HAS("lstatus." + st) ? t("lstatus." + st) : st}) : null));
  }
}

function renderViewings(vs) {
  const box = $("viewing-cards"), list = $("vlist");
  box.hidden = !vs.length;
  $("viewing-count").textContent = App.num(vs.length);
  list.textContent = "";
  for (const v of vs) {
    const when = new Date(v.starts_at).toLocaleString(App.locale(),
      {weekday: "short", day: "numeric", month: "short", hour: "numeric", minute: "2-digit"});
    const act = (what) => el("button", {type: "button", class: "btn", "data-testid": "viewing-" + what,
      text: t("viewing." + what), onclick: async (e) => {
        if (what === "cancel" && !confirm(t("viewing.sure"))) return;
        e.target.disabled = true;
        try { await api("POST", "/api/viewings/" + enc(v.id) + "/" + what, {}); loadThread(); }
        catch (err) { e.target.disabled = false; }
      }});
    const live = v.status === "booked" || v.status === "confirmed";
    const at = el("input", {type: "datetime-local", "aria-label": t("viewing.newtime"), "data-testid": "viewing-at"});
    const move = el("button", {type: "button", class: "btn", "data-testid": "viewing-move", text: t("viewing.move"),
      onclick: async () => {
        if (!at.value) { at.focus(); return; }
        move.disabled = true;
        try {
          const r = await api("POST", "/api/viewings/" + enc(v.id) + "/move", {starts_at: at.value});
          if (r.outcome === "moved") loadThread();
          else App.toast(t("viewing.notfree", {times: (r.alternatives || []).slice(0, 3)
            .map((x) => new Date(x).toLocaleString(App.locale(), {weekday: "short", hour: "numeric", minute: "2-digit"})).join(", ")}));
        } catch (err) { /* toast shown */ } finally { move.disabled = false; }
      }});
    list.append(el("li", {class: "vitem", "data-testid": "viewing", "data-status": v.status},
      el("span", {class: "ref", text: v.reference}), " ", el("span", {text: when}), " ",
      el("span", {class: "st st-" + v.status, text: t("vstatus." + v.status)}),
      v.feedback ? el("q", {dir: "auto", text: v.feedback}) : null,
      v.status === "booked" ? act("confirm") : null, live ? act("cancel") : null,
      live ? at : null, live ? move : null));
  }
}

function renderTasks(ts, id) {
  const list = $("tlist");
  $("task-cards").hidden = !ts.length;
  $("task-count").textContent = App.num(ts.length);
  list.textContent = "";
  for (const k of ts) list.append(el("li", {class: "vitem", "data-testid": "task"}, el("span", {text: pretty(k.kind)}),
    el("button", {type: "button", class: "btn", "data-testid": "task-done", text: t("task.done"), onclick: async (e) => {
      e.target.disabled = true;
      try { await api("POST", "/api/conversations/" + enc(id) + "/tasks/" + enc(k.id) + "/done", {}); loadThread(); }
      catch (err) { e.target.disabled = false; }
    }})));
}

function renderMessages(msgs, first) {
  const box = $("messages"), sc = $("messages-scroll");
  const atBottom = first || sc.scrollHeight - sc.scrollTop - sc.clientHeight < 80;
  const keep = new Set(), added = [];
  let prev = null, lastDay = null;
  const place = (key, s, build, m) => {
    let node = msgNodes.get(key);
    if (!node || node._sig !== s) {
      const fresh = build();
      fresh._sig = s;
      if (node) node.replaceWith(fresh); else if (m) added.push(m);
      node = fresh;
      msgNodes.set(key, node);
    }
    const want = prev ? prev.nextSibling : box.firstChild;
    if (want !== node) box.insertBefore(node, want);
    prev = node;
    keep.add(key);
  };
  for (const m of msgs) {
    const dk = App.dayKey(m.created_at);
    if (dk && dk !== lastDay) {
      lastDay = dk;
      const label = App.dayLabel(m.created_at);
      place("day:" + dk, sig(label), () => el("div", {class: "day", role: "separator", "aria-label": label}, el("span", {"aria-hidden": "true", text: label})));
    }
    place("m:" + m.id, sig(m), () => buildMessage(m), m);
  }
  for (const [key, node] of msgNodes) if (!keep.has(key)) { node.remove(); msgNodes.delete(key); }
  // Bubbles of a send in flight stay last; when it ends, the server's copy replaces them.
  box.querySelectorAll(".pending-local").forEach((n) => (state.sending ? box.append(n) : n.remove()));
  let none = box.querySelector(".thread-none");
  if (!msgs.length && !none) box.append(el("p", {class: "thread-loading thread-none", text: t("thread.none")}));
  else if (msgs.length && none) none.remove();

  if (!first) announce(added);
  if (atBottom) {
    sc.scrollTop = sc.scrollHeight;
    $("new-below").hidden = true;
  } else if (added.length) $("new-below").hidden = false;
}

/** The polite live region reads out what arrived, not the whole thread. */
function announce(added) {
  const said = added.filter((m) => m.message_type !== "mode_change" && m.author !== "agent")
    .map((m) => authorLabel(m.author) + ": " + (m.body || mediaLabel(m.message_type || "text")));
  if (said.length) $("announce").textContent = said.slice(-3).join("\n");
}

function buildMessage(m) {
  if (m.message_type === "mode_change") return buildModeNote(m);
  const author = m.author || "system";
  const out = m.direction === "outbound" || author === "ai" || author === "agent";
  const st = m.delivery_status || null;
  const node = el("div", {class: "msg " + (out ? "out" : "in") + " a-" + author + (st === "suppressed" ? " draft" : ""),
    "data-testid": "message", "data-id": m.id, "data-author": author, "data-type": m.message_type || "text", "data-status": st});
  node.append(el("span", {class: "msg-author", text: authorLabel(author)}));
  appendContent(node, m);

  const foot = el("span", {class: "msg-foot"},
    el("time", {datetime: m.created_at || null, title: App.fullTime(m.created_at) || null, text: App.clock(m.created_at)}));
  if (out && st && st !== "suppressed") foot.append(ticks(st, m.status_detail));
  node.append(foot);

  if (st === "failed" || st === "no_account") {
    node.append(el("p", {class: "msg-problem", "data-testid": "delivery-failed"},
      el("span", {text: t("status." + st) + (m.status_detail ? ":" : "")}),
      m.status_detail ? el("span", {dir: "auto", text: m.status_detail}) : null));
  } else if (st === "unknown" && out) {
    const p = el("p", {class: "msg-problem warn", "data-testid": "delivery-unknown"},
      el("span", {"aria-hidden": "true", text: "⚠"}), el("span", {text: t("status.unknown") + (m.resendable ? " —" : "")}));
    if (m.resendable) {
      p.append(el("button", {type: "button", class: "btn", "data-testid": "resend", "data-id": m.id, text: t("msg.resend"),
        onclick: (ev) => messageAction(ev.currentTarget, "resend:" + m.id, "/messages/" + enc(m.id) + "/resend")}));
    }
    node.append(p);
  } else if (st === "suppressed") {
    const p = el("p", {class: "msg-problem", "data-testid": "draft-note"}, el("span", {text: t("msg.draftNote") + " —"}));
    p.append(el("button", {type: "button", class: "btn btn-primary", "data-testid": "send-draft", "data-id": m.id, text: t("msg.sendDraft"),
      onclick: (ev) => messageAction(ev.currentTarget, "draft:" + m.id, "/drafts/" + enc(m.id) + "/send")}));
    node.append(p);
  }
  if (m.generation) node.append(...aiMeta(m.generation));
  return node;
}

function ticks(st, detail) {
  const glyph = {pending: "○", sent: "✓", delivered: "✓✓", read: "✓✓", failed: "✕", unknown: "⚠", no_account: "✕"}[st] || "";
  const label = S_HAS("status." + st) ? t("status." + st) : st;
  return el("span", {class: "ticks s-" + st, "data-testid": "delivery-status", "data-status": st, title: detail ? label + ": " + detail : label},
    el("span", {"aria-hidden": "true", text: glyph}), App.srOnly(label));
}

function appendContent(node, m) {
  const type = m.message_type || "text", md = m.media || {};
  const textEl = (body) => App.richText(el("p", {class: "msg-text", dir: "auto", "data-testid": "message-text"}), body);
  if (type === "location") {
    const name = md.nameLocation || md.name || "", addr = md.address || "";
    const lat = Number(md.latitude), lng = Number(md.longitude);
    const coords = isFinite(lat) && isFinite(lng) && md.latitude !== undefined && md.latitude !== null;
    const lines = [name, addr !== name ? addr : ""].filter(Boolean);
    if (!lines.length && m.body) lines.push(m.body);
    if (!lines.length && coords) lines.push(lat.toFixed(5) + ", " + lng.toFixed(5));
    node.append(el("p", {class: "msg-text", dir: "auto", "data-testid": "message-text"}, "📍 " + lines.join("\n")));
    if (coords) {
      node.append(el("a", {href: "https://www.google.com/maps?q=" + lat + "," + lng, target: "_blank", rel: "noopener noreferrer", text: t("media.map")}));
    }
    return;
  }
  if (type !== "text" && type !== "choice" && MEDIA_ICON[type]) {
    const url = App.safeUrl(md.url || md.link);
    const line = el("p", {class: "msg-media"}, el("span", {"aria-hidden": "true", text: MEDIA_ICON[type]}),
      el("span", {dir: "auto", text: md.file_name || mediaLabel(type)}));
    if (url) line.append(el("a", {href: url, target: "_blank", rel: "noopener noreferrer", text: t("media.open")}));
    node.append(line);
    if (m.body) node.append(textEl(m.body));
    return;
  }
  node.append(textEl(m.body || (type !== "text" ? mediaLabel(type) : "")));
}

function aiMeta(g) {
  const reasons = asList(g.guard_reasons);
  const meta = el("p", {class: "ai-meta", "data-testid": "ai-meta"}, t("msg.aiMeta", {backend: g.backend || "—", guard: g.guard || "—"}));
  if (reasons.length) meta.append(" ", el("span", {class: "reasons", dir: "auto", text: "(" + reasons.join(", ") + ")"}));
  const dl = el("dl");
  const row = (k, v) => { if (v !== undefined && v !== null && v !== "") dl.append(el("dt", {text: t(k)}), el("dd", {dir: "auto", text: v})); };
  row("msg.model", g.model);
  if (isNum(g.input_tokens) || isNum(g.output_tokens)) row("msg.tokens", App.num(g.input_tokens || 0) + " / " + App.num(g.output_tokens || 0));
  if (isNum(g.latency_ms)) row("msg.latency", t("msg.ms", {n: g.latency_ms}));
  const tools = asList((g.tool_calls || []).map((c) => (c && typeof c === "object" ? c.name || c.tool || JSON.stringify(c) : c)));
  row("msg.tools", tools.join(", "));
  if (!dl.childNodes.length) return [meta];
  return [meta, el("details", {class: "ai-more"}, el("summary", {text: t("msg.details")}), dl)];
}

function buildModeNote(m) {
  const md = m.media || {};
  const mode = md.mode || "";
  const node = el("div", {class: "note", "data-testid": "mode-change", "data-id": m.id, "data-mode": mode});
  const line = el("span", {}, t("note.switched", {mode: modeLabel(mode), actor: actorLabel(md.actor)}));
  if (md.reason) line.append(" — ", el("bdi", {text: reasonLabel(md.reason)}));
  if (m.created_at) line.append(" · ", el("time", {datetime: m.created_at, text: App.clock(m.created_at)}));
  node.append(line);
  if (!md.mode && m.body) node.append(el("span", {class: "brief", dir: "auto", text: m.body}));
  if (md.brief) {
    node.append(el("span", {class: "brief"}, el("span", {text: t("note.brief") + " "}), el("span", {dir: "auto", text: md.brief})));
  }
  return node;
}

/** Send a suppressed draft / resend an unconfirmed one: one client_id per message, kept on retry. */
async function messageAction(btn, key, suffix) {
  const id = state.openId;
  if (id === null || btn.getAttribute("aria-busy") === "true") return;
  let cid = state.actionIds.get(key);
  if (!cid) { cid = App.uuid(); state.actionIds.set(key, cid); }
  btn.disabled = true;
  btn.setAttribute("aria-busy", "true");
  try {
    const r = await api("POST", "/api/conversations/" + enc(id) + suffix, {client_id: cid});
    reportOutcome(r);
    if (r.mode && same(id, state.openId)) applyMode(r.mode);
    loadThread();
    refreshListSoon();
  } catch (e) {
    btn.disabled = false;
    btn.removeAttribute("aria-busy");
  }
}

function reportOutcome(r) {
  const o = r && r.outcome;
  if (!o || o === "sent") return;
  if (o === "queued") App.toast(t("outcome.queued"), "info");
  else if (o === "duplicate") App.toast(t("outcome.duplicate"), "info");
  else App.toast(t("outcome.other", {outcome: pretty(o)}));
}

async function changeMode(target, brief) {
  const id = state.openId, before = state.mode;
  if (id === null || state.modeBusy) return;
  state.modeBusy = true;
  const b = $("mode-toggle");
  b.setAttribute("aria-busy", "true");
  applyMode(target);
  try {
    const r = await api("POST", "/api/conversations/" + enc(id) + "/mode", {mode: target, brief: brief || null});
    const now = r.mode || target;
    if (same(id, state.openId)) applyMode(now);
    const item = findItem(id);
    if (item) { item.mode = now; renderList(); }
    App.toast(t(now === "AI" ? "mode.nowAI" : "mode.nowHUMAN"), "info");
    refreshThreadSoon();
    refreshListSoon();
  } catch (e) {
    if (same(id, state.openId)) applyMode(before);
  } finally {
    state.modeBusy = false;
    b.removeAttribute("aria-busy");
  }
}

function autosize() {
  const i = $("reply-input");
  i.style.height = "auto";
  i.style.height = Math.min(i.scrollHeight + 2, 160) + "px";
}
function updateSend() {
  $("reply-send").disabled = state.sending || !$("reply-input").value.trim();
}

async function send() {
  const input = $("reply-input"), id = state.openId;
  const text = input.value.trim();
  if (state.sending || !text || id === null) return;
  const d = draft();
  if (!d.cid || d.cidText !== text) { d.cid = App.uuid(); d.cidText = text; }   // the same text retried keeps its id
  const before = state.mode;
  state.sending = true;
  const btn = $("reply-send");
  btn.setAttribute("aria-busy", "true");
  updateSend();
  const bubble = el("div", {class: "msg out a-agent pending-local", "data-testid": "message", "data-client-id": d.cid, "data-status": "pending"},
    el("span", {class: "msg-author", text: authorLabel("agent")}),
    App.richText(el("p", {class: "msg-text", dir: "auto", "data-testid": "message-text"}), text),
    el("span", {class: "msg-foot"}, ticks("pending")));
  $("messages").append(bubble);
  const sc = $("messages-scroll");
  sc.scrollTop = sc.scrollHeight;
  try {
    const r = await api("POST", "/api/conversations/" + enc(id) + "/messages", {text: text, client_id: d.cid});
    d.cid = null; d.cidText = null; d.value = "";
    if (same(id, state.openId) && input.value.trim() === text) { input.value = ""; autosize(); }
    reportOutcome(r);
    if (r.mode && same(id, state.openId)) {
      applyMode(r.mode);
      if (before === "AI" && r.mode === "HUMAN") App.toast(t("mode.nowHUMAN"), "info");
    }
    const item = findItem(id);
    if (item && r.mode) item.mode = r.mode;
  } catch (e) {
    bubble.remove();        // the text stays in the box, and a retry reuses its client_id
  } finally {
    state.sending = false;
    btn.removeAttribute("aria-busy");
    updateSend();
  }
  if (same(id, state.openId)) loadThread();
  refreshListSoon();
}

const refreshListSoon = App.debounce(() => loadList({quiet: true}), 250);
const refreshThreadSoon = App.debounce(() => loadThread(), 250);

function setLive(s) {
  const e = $("live-status");
  if (e.dataset.state === s) return;
  e.dataset.state = s;
  e.dataset.i18n = "live." + s;
  e.textContent = t("live." + s);
}

function onEvent(ev) {
  let d = {};
  try { d = JSON.parse(ev.data || "{}") || {}; } catch (e) { d = {}; }
  refreshListSoon();
  if (state.openId !== null && (d.conversation_id === undefined || same(d.conversation_id, state.openId))) refreshThreadSoon();
}

function connectEvents() {
  if (es) es.close();
  if (!window.EventSource) return;
  es = new EventSource("/api/events");
  setLive(esHadError ? "reconnecting" : "connecting");
  es.onopen = () => {
    setLive("live");
    esRetry = 1000;
    if (esHadError) { esHadError = false; refreshListSoon(); refreshThreadSoon(); }
  };
  es.onerror = () => {
    esHadError = true;
    if (es.readyState === EventSource.CLOSED) {
      // The browser gave up (e.g. a 401): check the session, retry later.
      setLive(navigator.onLine === false ? "offline" : "reconnecting");
      App.api("GET", "/api/me", undefined, {quiet: true}).catch(() => {});
      const wait = esRetry;
      esRetry = Math.min(esRetry * 2, 30000);
      setTimeout(() => { if (!document.hidden) connectEvents(); }, wait);
    } else setLive(navigator.onLine === false ? "offline" : "reconnecting");
  };
  for (const type of ["message", "delivery", "mode", "escalation"]) es.addEventListener(type, onEvent);
}

function wire() {
  window.addEventListener("hashchange", route);
  window.addEventListener("popstate", route);
  document.addEventListener("click", (ev) => {
    const a = ev.target.closest && ev.target.closest("a.conv-link");
    if (!a || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.button !== 0) return;
    ev.preventDefault();
    const hash = a.getAttribute("href");
    if (location.hash === hash) return;
    if (state.openId === null) history.pushState({fromList: true}, "", hash);
    else history.replaceState({fromList: history.state && history.state.fromList}, "", hash);
    route();
  });
  $("back").addEventListener("click", goBack);
  // Lead and listings fold over the thread, one at a time; Escape or a tap outside folds them.
  const folds = [$("lead-card"), $("listing-cards")];
  folds.forEach((d) => d.addEventListener("toggle", () => { if (d.open) folds.forEach((o) => { if (o !== d) o.open = false; }); }));
  document.addEventListener("click", (ev) => { folds.forEach((d) => { if (d.open && !d.contains(ev.target)) d.open = false; }); });
  document.addEventListener("keydown", (ev) => {
    const open = folds.find((d) => d.open);
    if (ev.key === "Escape" && open) { open.open = false; open.querySelector("summary").focus(); }
  });

  const search = $("search");
  const runSearch = () => {
    const q = search.value.trim();
    if (q === state.q) return;
    state.q = q;
    loadList({reset: true});
  };
  const doSearch = App.debounce(runSearch, 300);
  search.addEventListener("input", doSearch);
  search.addEventListener("keydown", (ev) => {
    if (ev.key !== "Enter") return;
    ev.preventDefault();
    doSearch.cancel();
    runSearch();
    if (coarse) search.blur();
  });

  document.querySelectorAll(".filters .chip").forEach((b) => b.addEventListener("click", () => {
    if (state.filter === b.dataset.filter) return;
    state.filter = b.dataset.filter;
    document.querySelectorAll(".filters .chip").forEach((x) => x.setAttribute("aria-pressed", String(x === b)));
    $("list-scroll").scrollTop = 0;
    loadList({reset: true});
  }));
  $("load-more").addEventListener("click", loadMore);

  $("mode-toggle").addEventListener("click", () => {
    if (state.mode) changeMode(state.mode === "AI" ? "HUMAN" : "AI", null);
  });
  const dlg = $("handback-dialog");
  $("handback").addEventListener("click", () => {
    $("handback-brief").value = "";
    $("handback-unread").hidden = App.readsNotes !== false;
    if (dlg.showModal) dlg.showModal(); else dlg.setAttribute("open", "");
    $("handback-brief").focus();
  });
  $("handback-cancel").addEventListener("click", () => dlg.close ? dlg.close() : dlg.removeAttribute("open"));
  $("handback-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const brief = $("handback-brief").value.trim();
    if (dlg.close) dlg.close(); else dlg.removeAttribute("open");
    changeMode("AI", brief || null);
  });
  $("resolve").addEventListener("click", async (ev) => {
    const btn = ev.currentTarget, id = state.openId;
    if (id === null) return;
    btn.disabled = true;
    try {
      await api("POST", "/api/conversations/" + enc(id) + "/escalations/resolve", {});
      if (same(id, state.openId)) $("esc-banner").hidden = true;
      const item = findItem(id);
      if (item) { item.escalation = null; item.needs_attention = false; renderList(); }
      App.toast(t("esc.resolved"), "info");
      refreshThreadSoon();
      refreshListSoon();
    } catch (e) { /* toast shown */ } finally { btn.disabled = false; }
  });

  const input = $("reply-input");
  input.addEventListener("input", () => { autosize(); updateSend(); });
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing && !coarse) { ev.preventDefault(); send(); }
  });
  $("composer").addEventListener("submit", (ev) => { ev.preventDefault(); send(); });

  const sc = $("messages-scroll");
  sc.addEventListener("scroll", () => {
    if (sc.scrollHeight - sc.scrollTop - sc.clientHeight < 80) $("new-below").hidden = true;
  }, {passive: true});
  $("new-below").addEventListener("click", () => { sc.scrollTop = sc.scrollHeight; $("new-below").hidden = true; });

  document.addEventListener("visibilitychange", () => {
    if (document.hidden) { hiddenAt = Date.now(); return; }
    if (!es || es.readyState === EventSource.CLOSED) connectEvents();
    if (Date.now() - hiddenAt > 15000) { refreshListSoon(); refreshThreadSoon(); }
    else if (state.last && state.last.conversation && state.last.conversation.unread > 0) markRead(state.openId);
  });
  window.addEventListener("offline", () => setLive("offline"));
  window.addEventListener("online", () => { connectEvents(); refreshListSoon(); refreshThreadSoon(); });
  setInterval(tickTimes, 30000);
}

function rerender() {
  renderList();
  if (state.mode) applyMode(state.mode);
  if (state.last) renderThread(state.last, false);
}

function boot() {
  App.applyI18n(document);
  wire();
  route();
  loadList({reset: true});
  App.loadMe().then(rerender, () => {}).finally(() => App.initHeader());
  connectEvents();
}

boot();
})();
