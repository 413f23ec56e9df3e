/* The listings page (/listings): search, status filter, status and price changes, CSV/XLSX import.
   Needs i18n.js (window.App). */
"use strict";
(function () {
const {t, el, api} = App;
const $ = (id) => document.getElementById(id);
const enc = encodeURIComponent;
const LIMIT = 50;
const STATUSES = ["available", "reserved", "sold"];
const state = {q: "", status: "", items: [], total: 0, ctl: null, loaded: false, file: null, checked: false, busy: false};
let uid = 0;
const has = App.has;
const label = (prefix, v) => (v ? (has(prefix + v) ? t(prefix + v) : String(v).replace(/_/g, " ")) : "");
const isNum = (v) => typeof v === "number" && isFinite(v);

// ---- the list
async function load(more) {
  if (state.ctl) state.ctl.abort();
  const ctl = state.ctl = new AbortController();
  const p = new URLSearchParams({limit: String(LIMIT), offset: String(more ? state.items.length : 0)});
  if (state.q) p.set("q", state.q);
  if (state.status) p.set("status", state.status);
  const btn = $("l-more");
  if (more) { btn.disabled = true; btn.setAttribute("aria-busy", "true"); }
  else $("l-list").setAttribute("aria-busy", "true");
  try {
    const data = await api("GET", "/api/listings?" + p, undefined, {signal: ctl.signal});
    if (ctl !== state.ctl) return;
    const got = data.listings || [];
    state.items = more ? state.items.concat(got) : got;
    state.total = isNum(data.total) ? data.total : state.items.length;
    state.loaded = true;
    render(more ? got : null);
  } catch (e) {
    if (ctl !== state.ctl || (e && e.name === "AbortError")) return;
    if (!state.loaded) { $("l-note").textContent = e.message; $("l-note").hidden = false; }
  } finally {
    if (ctl === state.ctl) {
      state.ctl = null;
      $("l-list").setAttribute("aria-busy", "false");
      btn.disabled = false;
      btn.removeAttribute("aria-busy");
    }
  }
}

function render(appended) {
  const ul = $("l-list");
  if (!appended) ul.textContent = "";
  for (const l of appended || state.items) ul.append(card(l));
  $("l-count").textContent = state.loaded ? t("listings.total", {n: state.total}) : "";
  const note = $("l-note");
  note.hidden = !!state.items.length || !state.loaded;
  if (!state.items.length) note.textContent = t("listings.empty");
  $("l-more").parentElement.hidden = state.items.length >= state.total;
}

/** Parts joined by " · ", each isolated: English data reads right in an Arabic line. */
function line(parts, attrs) {
  const p = el("p", attrs || {class: "l-facts"});
  parts.filter(Boolean).forEach((x, i) => { if (i) p.append(" · "); p.append(el("bdi", {text: x})); });
  return p;
}
function facts(l) {
  const district = App.lang === "ar" && l.district_ar ? l.district_ar : l.district;
  return line([
    label("", l.property_type),
    label("ltype.", l.listing_type),
    isNum(l.bedrooms) ? t("listings.beds", {n: l.bedrooms}) : "",
    isNum(l.bathrooms) ? t("listings.baths", {n: l.bathrooms}) : "",
    isNum(l.area_sqm) ? t("listings.sqm", {n: l.area_sqm}) : "",
    [district, l.city].filter(Boolean).join(App.lang === "ar" ? "، " : ", "),
  ], {class: "l-facts", "data-part": "facts"});
}

function card(l) {
  const n = ++uid, ref = String(l.reference);
  const li = el("li", {class: "card listing", "data-testid": "listing-card", "data-reference": ref});
  const badge = el("span", {class: "st st-" + l.status, "data-testid": "listing-status-badge", text: label("lstatus.", l.status)});
  const price = el("p", {class: "l-price", "data-testid": "listing-price-text", dir: "auto", text: App.digits(l.price_text)});
  li.append(
    el("div", {class: "l-top"}, el("span", {class: "ref", text: ref}), badge),
    el("h2", {class: "l-title", dir: "auto", text: l.project_name || ref}),
    facts(l),
    price);
  if (l.delivery_date || (typeof l.payment_plan === "string" && l.payment_plan)) {
    const p = el("p", {class: "l-facts"});
    if (l.delivery_date) p.append(t("listings.delivery", {date: ""}), el("bdi", {text: App.digits(l.delivery_date)}));
    if (typeof l.payment_plan === "string" && l.payment_plan) {
      p.append(l.delivery_date ? " · " : "", t("listings.plan") + ": ", el("bdi", {text: l.payment_plan}));
    }
    li.append(p);
  }

  // Status: one select per listing.
  const sel = el("select", {id: "st-" + n, "data-testid": "listing-status", "data-reference": ref});
  for (const s of STATUSES) sel.append(el("option", {value: s, text: label("lstatus.", s)}));
  if (!STATUSES.includes(l.status)) sel.append(el("option", {value: l.status || "", text: label("lstatus.", l.status)}));
  sel.value = l.status || "";
  sel.addEventListener("change", async () => {
    const before = l.status, want = sel.value;
    try {
      const r = await api("PATCH", "/api/listings/" + enc(ref), {status: want});
      Object.assign(l, r.listing || r);
      update();
      App.toast(t("saved"), "info");
    } catch (e) { sel.value = before; }
  });
  li.append(el("div", {class: "l-row"}, el("label", {for: "st-" + n, class: "label", text: t("listings.status")}), sel));

  // Price: optional, folded away.
  const input = el("input", {type: "number", id: "pr-" + n, inputmode: "decimal", min: "0", step: "any", dir: "ltr",
    "data-testid": "listing-price", "data-reference": ref, value: isNum(l.price) ? String(l.price) : null});
  const save = el("button", {type: "submit", class: "btn btn-primary", "data-testid": "listing-price-save", text: t("save")});
  const priceLabel = el("label", {for: "pr-" + n, text: t("listings.newPrice", {currency: l.currency || ""})});
  const form = el("form", {}, el("div", {class: "field"}, priceLabel, input), save);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const v = Number(input.value);
    if (!input.value || !isFinite(v) || v <= 0) { App.toast(t("listings.badPrice")); input.focus(); return; }
    save.disabled = true;
    try {
      const r = await api("PATCH", "/api/listings/" + enc(ref), {price: v});
      Object.assign(l, r.listing || r);
      update();
      App.toast(t("saved"), "info");
    } catch (e) { /* toast shown */ } finally { save.disabled = false; }
  });
  li.append(el("details", {class: "price-edit"}, el("summary", {text: t("listings.editPrice")}), form));

  function update() {
    badge.className = "st st-" + l.status;
    badge.textContent = label("lstatus.", l.status);
    sel.value = l.status || "";
    price.textContent = App.digits(l.price_text);
    if (isNum(l.price)) input.value = String(l.price);
    li.querySelector("[data-part=facts]").replaceWith(facts(l));
  }
  return li;
}

// ---- import
function setImportBusy(busy) {
  state.busy = busy;
  $("import-check").disabled = busy || !state.file;
  $("import-run").disabled = busy || !state.file || !state.checked;
}

function showErrors(errors) {
  const ul = $("import-errors");
  ul.textContent = "";
  for (const e of errors) {
    const where = [isNum(e.line) || e.line ? t("import.line", {line: isNum(e.line) ? e.line : String(e.line)}) : "", e.field || ""]
      .filter(Boolean).join(" · ");
    ul.append(el("li", {dir: "auto", text: (where ? where + ": " : "") + (e.reason || e.error || "")}));
  }
  ul.hidden = !errors.length;
}

async function runImport(dry) {
  if (!state.file || state.busy) return;
  const btn = dry ? $("import-check") : $("import-run");
  const summary = $("import-summary");
  const fd = new FormData();
  fd.append("file", state.file, state.file.name);
  state.checked = false;
  setImportBusy(true);
  btn.setAttribute("aria-busy", "true");
  summary.className = "import-summary";
  summary.textContent = t(dry ? "import.checking" : "import.running");
  try {
    const r = await api("POST", "/api/listings/import?dry_run=" + (dry ? "true" : "false"), fd, {timeout: 180000, quiet: true});
    const errors = Array.isArray(r.errors) ? r.errors : [];
    const counts = {rows: r.rows || 0, created: r.created || 0, updated: r.updated || 0, errors: errors.length};
    showErrors(errors);
    if (dry) {
      summary.textContent = t("import.summary", counts) + " — " + t(errors.length ? "import.fix" : "import.ok");
      summary.className = "import-summary" + (errors.length ? "" : " import-ok");
      state.checked = !errors.length;
    } else {
      summary.textContent = errors.length ? t("import.summary", counts) : t("import.done", counts);
      summary.className = "import-summary" + (errors.length ? "" : " import-ok");
      load(false);
    }
  } catch (e) {
    summary.textContent = e.message;
    showErrors(e.data && Array.isArray(e.data.errors) ? e.data.errors : []);
  } finally {
    btn.removeAttribute("aria-busy");
    setImportBusy(false);
  }
}

// ---- wiring
function boot() {
  App.applyI18n(document);
  const search = $("l-search");
  const run = () => {
    const q = search.value.trim();
    if (q === state.q) return;
    state.q = q;
    load(false);
  };
  const soon = App.debounce(run, 300);
  search.addEventListener("input", soon);
  search.addEventListener("keydown", (ev) => { if (ev.key === "Enter") { ev.preventDefault(); soon.cancel(); run(); } });
  $("l-status").addEventListener("change", (ev) => { state.status = ev.target.value; load(false); });
  $("l-more").addEventListener("click", () => load(true));

  $("import-file").addEventListener("change", (ev) => {
    state.file = (ev.target.files && ev.target.files[0]) || null;
    state.checked = false;
    $("import-summary").textContent = "";
    showErrors([]);
    setImportBusy(false);
  });
  $("import-check").addEventListener("click", () => runImport(true));
  $("import-run").addEventListener("click", () => { if (state.checked) runImport(false); });

  load(false);
  App.loadMe().then(() => { if (state.loaded) render(null); }, () => {}).finally(() => App.initHeader());
}

boot();
})();
