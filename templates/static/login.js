/* The sign-in page (/login). Needs i18n.js (window.App). */
"use strict";
(function () {
const {t} = App;
const $ = (id) => document.getElementById(id);

/** Only a path on this site: "/x", never "//host" or "/\host" or an absolute URL. */
function nextPath() {
  const raw = new URLSearchParams(location.search).get("next");
  if (!raw || raw[0] !== "/" || raw[1] === "/" || raw[1] === "\\" || /[\u0000-\u001f]/.test(raw)) return "/";
  try {
    const u = new URL(raw, location.origin);
    if (u.origin !== location.origin || u.pathname === "/login") return "/";
    return u.pathname + u.search + u.hash;
  } catch (e) { return "/"; }
}

function showError(text) {
  const box = $("login-error");
  box.textContent = "";
  // A fresh text node, so a screen reader announces the same message again on a second failure.
  setTimeout(() => { box.textContent = text; }, 30);
}

async function submit(ev) {
  ev.preventDefault();
  const email = $("login-email").value.trim(), password = $("login-password").value;
  const btn = $("login-submit");
  if (btn.getAttribute("aria-busy") === "true") return;
  if (!email || !password) {
    showError(t("login.wrong"));
    (email ? $("login-password") : $("login-email")).focus();
    return;
  }
  btn.setAttribute("aria-busy", "true");
  btn.disabled = true;
  btn.textContent = t("login.busy");
  $("login-error").textContent = "";
  try {
    await App.api("POST", "/api/auth/login", {email: email, password: password}, {no401: true, noCsrf: true, quiet: true});
    location.replace(nextPath());
    return;
  } catch (e) {
    let text = e.message;
    if (e.status === 401) text = t("login.wrong");
    else if (e.status === 429) {
      const m = /(\d+)\s*minute/i.exec(e.message || "");
      text = m ? t("login.tooMany", {n: Number(m[1])}) : e.message;
    }
    showError(text);
    if (e.status === 401) { $("login-password").select(); $("login-password").focus(); }
  }
  btn.removeAttribute("aria-busy");
  btn.disabled = false;
  btn.textContent = t("login.submit");
}

function boot() {
  App.applyI18n(document);
  $("login-form").addEventListener("submit", submit);
  const pw = $("login-password"), toggle = $("pw-toggle");
  toggle.addEventListener("click", () => {
    const show = pw.type === "password";
    pw.type = show ? "text" : "password";
    toggle.setAttribute("aria-pressed", String(show));
  });
  $("lang-switch").addEventListener("click", () => App.setLang(App.lang === "ar" ? "en" : "ar", App.arabicDigits));
  if (!$("login-email").value) $("login-email").focus({preventScroll: true});
}

boot();
})();
