/* Every page: UI strings (en, ar), number/time formats, the API helper (CSRF, 401 → /login, alert
   toasts), the header menu. In <head>, no defer: language and direction before paint. No innerHTML. */
"use strict";
(function () {
// Every UI string: [English, Arabic].
const S = {
  "app.name": ["Agent Inbox", "صندوق رسائل الوكيل"],
  "skip": ["Skip to content", "انتقل إلى المحتوى"],
  "nav.label": ["Main menu", "القائمة الرئيسية"],
  "nav.menu": ["Menu", "القائمة"],
  "nav.inbox": ["Inbox", "الرسائل"],
  "nav.listings": ["Listings", "العقارات"],
  "nav.simulator": ["Customer simulator", "محاكي العميل"],
  "nav.logout": ["Log out", "تسجيل الخروج"],
  "nav.logoutAll": ["Log out everywhere", "الخروج من كل الأجهزة"],
  "live.live": ["Live", "مباشر"],
  "live.connecting": ["Connecting…", "جارٍ الاتصال…"],
  "live.reconnecting": ["Reconnecting…", "جارٍ إعادة الاتصال…"],
  "live.offline": ["Offline", "غير متصل"],
  "err.network": ["No connection. Check your internet and try again.", "لا يوجد اتصال. تأكد من الإنترنت وحاول مرة أخرى."],
  "err.timeout": ["The server is taking too long. Try again.", "الخادم يتأخر في الرد. حاول مرة أخرى."],
  "err.http": ["Something went wrong ({status}).", "حدث خطأ ({status})."],
  "toast.dismiss": ["Dismiss", "إغلاق"],
  "loading": ["Loading…", "جارٍ التحميل…"],
  "retry": ["Try again", "حاول مرة أخرى"],
  "cancel": ["Cancel", "إلغاء"],
  "save": ["Save", "حفظ"],
  "saved": ["Saved.", "تم الحفظ."],
  "time.now": ["now", "الآن"],
  "day.today": ["Today", "اليوم"],
  "day.yesterday": ["Yesterday", "أمس"],
  "inbox.title": ["Inbox", "الرسائل"],
  "list.heading": ["Conversations", "المحادثات"],
  "search.label": ["Search conversations", "ابحث في المحادثات"],
  "search.ph": ["Search name, phone or message", "ابحث بالاسم أو الرقم أو نص الرسالة"],
  "filter.label": ["Show", "عرض"],
  "filter.all": ["All", "الكل"],
  "filter.ai": ["AI", "المساعد"],
  "filter.human": ["Human", "يدوي"],
  "filter.needs_reply": ["Needs reply", "بانتظار ردك"],
  "filter.escalated": ["Escalated", "محالة إليك"],
  "list.empty": ["No conversations yet. New WhatsApp leads appear here.", "لا توجد محادثات بعد. ستظهر هنا رسائل العملاء الجدد على واتساب."],
  "list.noResults": ["No conversations match.", "لا توجد محادثات مطابقة."],
  "list.loadMore": ["Load more", "تحميل المزيد"],
  "list.unreadN": ["{n} unread", "{n} غير مقروءة"],
  "author.customer": ["Customer", "العميل"],
  "author.ai": ["Assistant", "المساعد"],
  "author.agent": ["You", "أنت"],
  "author.system": ["System", "النظام"],
  "mode.AI": ["AI", "آلي"],
  "mode.HUMAN": ["HUMAN", "يدوي"],
  "toggle.AI": ["Assistant replying", "المساعد يرد"],
  "toggle.AI.hint": ["Tap to take over", "اضغط لتتولى الرد"],
  "toggle.HUMAN": ["You're replying", "أنت ترد"],
  "toggle.HUMAN.hint": ["Tap to let AI reply", "اضغط ليرد المساعد"],
  "mode.nowAI": ["The assistant is replying again.", "المساعد يرد مرة أخرى."],
  "mode.nowHUMAN": ["You took over: the assistant is paused in this chat.", "توليت الرد: المساعد متوقف في هذه المحادثة."],
  "handback.open": ["Hand back to AI…", "أعِدها للمساعد…"],
  "handback.title": ["Hand back to the assistant", "إعادة المحادثة للمساعد"],
  "handback.text": ["The assistant will answer this customer again. Leave it a note if there is something it should know.", "سيرد المساعد على هذا العميل مرة أخرى. اترك له ملاحظة إن كان هناك ما يجب أن يعرفه."],
  "handback.label": ["Note for the assistant (optional)", "ملاحظة للمساعد (اختياري)"],
  "handback.unread": ["Template replies don't read notes: answer open questions first.", "الردود الجاهزة مش بتقرا الملاحظات: جاوب الأسئلة المفتوحة الأول."],
  "handback.ph": ["e.g. Offered a viewing on Saturday at 4 pm", "مثال: عرضت عليه معاينة يوم السبت الساعة ٤ العصر"],
  "handback.confirm": ["Hand back", "أعِدها للمساعد"],
  "thread.back": ["Back to conversations", "العودة إلى المحادثات"],
  "thread.empty": ["Choose a conversation", "اختر محادثة"],
  "thread.none": ["No messages yet.", "لا توجد رسائل بعد."],
  "thread.newBelow": ["New messages", "رسائل جديدة"],
  "reply.label": ["Reply", "الرد"],
  "reply.phHUMAN": ["Write a reply", "اكتب ردك"],
  "reply.phAI": ["Write a reply (you take over)", "اكتب ردك (ستتولى الرد)"],
  "reply.send": ["Send", "إرسال"],
  "outcome.queued": ["Queued: it goes out in a moment.", "في الانتظار: ستُرسل خلال لحظات."],
  "outcome.duplicate": ["Already sent.", "أُرسلت بالفعل."],
  "outcome.other": ["Not sent: {outcome}", "لم تُرسل: {outcome}"],
  "status.pending": ["Sending", "جارٍ الإرسال"],
  "status.sent": ["Sent", "أُرسلت"],
  "status.delivered": ["Delivered", "وصلت"],
  "status.read": ["Read", "قُرئت"],
  "status.failed": ["Not delivered", "لم تصل"],
  "status.unknown": ["Not confirmed", "غير مؤكدة"],
  "status.suppressed": ["Not sent", "لم تُرسل"],
  "status.no_account": ["Not on WhatsApp", "ليس على واتساب"],
  "msg.resend": ["Resend", "أعد الإرسال"],
  "msg.draftNote": ["Not sent (you took over)", "لم تُرسل (توليت الرد)"],
  "msg.sendDraft": ["Send it", "أرسلها"],
  "msg.aiMeta": ["assistant · {backend} · guard {guard}", "المساعد · {backend} · الفحص {guard}"],
  "msg.details": ["Details", "التفاصيل"],
  "msg.model": ["Model", "النموذج"],
  "msg.tokens": ["Tokens in / out", "الرموز (داخل / خارج)"],
  "msg.latency": ["Time", "الوقت"],
  "msg.tools": ["Tools", "الأدوات"],
  "msg.ms": ["{n} ms", "{n} ملّي ث"],
  "note.switched": ["Switched to {mode} by {actor}", "تم التحويل إلى {mode} بواسطة {actor}"],
  "actor.inbox": ["inbox", "صندوق الرسائل"],
  "actor.phone": ["phone", "الهاتف"],
  "actor.assistant": ["assistant", "المساعد"],
  "actor.cli": ["admin", "الإدارة"],
  "actor.system": ["system", "النظام"],
  "actor.auto_resume": ["auto resume", "الاستئناف التلقائي"],
  "reason.phone_reply": ["replied from the phone", "رد من الهاتف"],
  "reason.agent_replied": ["you replied", "رددت أنت"],
  "reason.inbox": ["from the inbox", "من صندوق الرسائل"],
  "reason.handback": ["handed back", "أُعيدت للمساعد"],
  "reason.auto_resume": ["resumed automatically", "استئناف تلقائي"],
  "reason.escalation": ["escalation", "تصعيد"],
  "reason.agent_alerts": ["agent alerts", "تنبيهات الوكيل"],
  "note.brief": ["Note for the assistant:", "ملاحظة للمساعد:"],
  "media.image": ["Photo", "صورة"],
  "media.video": ["Video", "فيديو"],
  "media.audio": ["Voice message", "رسالة صوتية"],
  "media.document": ["Document", "مستند"],
  "media.file": ["File", "ملف"],
  "media.sticker": ["Sticker", "ملصق"],
  "media.location": ["Location", "موقع"],
  "media.contact": ["Contact", "جهة اتصال"],
  "media.reaction": ["Reaction", "تفاعل"],
  "media.choice": ["Choice", "اختيار"],
  "media.call": ["Call", "مكالمة"],
  "media.open": ["Open", "فتح"],
  "media.map": ["Open map", "افتح الخريطة"],
  "lead.title": ["Lead", "العميل"],
  "lead.none": ["No details yet", "لا توجد تفاصيل بعد"],
  "lead.name": ["Name", "الاسم"],
  "lead.area": ["Areas", "المناطق"],
  "lead.budget": ["Budget", "الميزانية"],
  "lead.bedrooms": ["Bedrooms", "غرف النوم"],
  "lead.intent": ["Buy or rent", "شراء أو إيجار"],
  "lead.types": ["Property type", "نوع العقار"],
  "lead.timeline": ["Timeline", "الموعد"],
  "lead.financing": ["Financing", "التمويل"],
  "lead.beds": ["{n}+ bedrooms", "غرف: {n} أو أكثر"],
  "intent.buy": ["Buy", "شراء"],
  "intent.sale": ["Buy", "شراء"],
  "intent.rent": ["Rent", "إيجار"],
  "intent.invest": ["Invest", "استثمار"],
  "listings.shown": ["Listings", "العقارات"],
  "viewings.title": ["Viewings", "المعاينات"],
  "viewing.confirm": ["Confirm", "تأكيد"],
  "viewing.cancel": ["Cancel", "إلغاء"],
  "task.title": ["To do", "مطلوب منك"],
  "task.done": ["Done", "تم"],
  "viewing.move": ["Move", "نقل"],
  "viewing.newtime": ["New time", "الميعاد الجديد"],
  "viewing.notfree": ["Not a free time. Free: {times}", "الميعاد ده مش متاح. المتاح: {times}"],
  "viewing.sure": ["Cancel this viewing? The customer is told.", "إلغاء المعاينة؟ هيتبعت للعميل."],
  "vstatus.booked": ["booked", "محجوزة"],
  "vstatus.confirmed": ["confirmed", "مؤكدة"],
  "vstatus.moved": ["moved", "اتنقلت"],
  "vstatus.cancelled": ["cancelled", "ملغية"],
  "vstatus.done": ["done", "تمت"],
  "esc.label": ["Escalation", "تصعيد"],
  "esc.title": ["Needs you", "تحتاجك"],
  "esc.resolve": ["Resolve", "تم الحل"],
  "esc.more": ["+{n} more", "+{n} أخرى"],
  "cat.negotiation": ["price negotiation", "تفاوض على السعر"],
  "cat.human_request": ["asked for a person", "طلب التحدث مع شخص"],
  "cat.legal": ["legal question", "سؤال قانوني"],
  "cat.complaint": ["complaint", "شكوى"],
  "cat.out_of_scope": ["out of scope", "خارج نطاق المساعد"],
  "esc.resolved": ["Resolved.", "تم الحل."],
  "login.title": ["Sign in", "تسجيل الدخول"],
  "login.heading": ["Sign in to your inbox", "سجّل الدخول إلى صندوق رسائلك"],
  "login.tagline": ["Your WhatsApp leads, answered in seconds.", "رد على عملاء واتساب في ثوانٍ."],
  "login.email": ["Email", "البريد الإلكتروني"],
  "login.password": ["Password", "كلمة المرور"],
  "login.show": ["Show password", "إظهار كلمة المرور"],
  "login.submit": ["Sign in", "دخول"],
  "login.busy": ["Signing in…", "جارٍ الدخول…"],
  "login.wrong": ["Wrong email or password.", "البريد الإلكتروني أو كلمة المرور غير صحيحة."],
  "login.tooMany": ["Too many attempts. Try again in {n} minutes.", "محاولات كثيرة. حاول مرة أخرى بعد {n} دقيقة."],
  "login.switch": ["العربية", "English"],
  "listings.title": ["Listings", "العقارات"],
  "listings.search": ["Search listings", "ابحث في العقارات"],
  "listings.ph": ["Reference, project or area", "الكود أو المشروع أو المنطقة"],
  "listings.status": ["Status", "الحالة"],
  "listings.allStatuses": ["All statuses", "كل الحالات"],
  "listings.total": ["{n} listings", "{n} عقار"],
  "listings.empty": ["No listings match.", "لا توجد عقارات مطابقة."],
  "listings.editPrice": ["Edit price", "تعديل السعر"],
  "listings.newPrice": ["New price ({currency})", "السعر الجديد ({currency})"],
  "listings.badPrice": ["Enter a price above zero.", "أدخل سعرًا أكبر من صفر."],
  "listings.beds": ["{n} bed", "غرف: {n}"],
  "listings.baths": ["{n} bath", "حمام: {n}"],
  "listings.sqm": ["{n} m²", "{n} م²"],
  "listings.delivery": ["Delivery {date}", "الاستلام {date}"],
  "listings.plan": ["Payment plan", "نظام السداد"],
  "listings.more": ["Load more", "تحميل المزيد"],
  "lstatus.available": ["Available", "متاح"],
  "lstatus.reserved": ["Reserved", "محجوز"],
  "lstatus.sold": ["Sold", "مُباع"],
  "ltype.sale": ["For sale", "للبيع"],
  "ltype.rent": ["For rent", "للإيجار"],
  "import.title": ["Import listings", "استيراد العقارات"],
  "import.hint": ["A CSV or Excel (.xlsx) file. Check it first: Import unlocks when it has no errors.", "ملف CSV أو Excel (.xlsx). افحصه أولًا: يُتاح الاستيراد عندما يخلو من الأخطاء."],
  "import.file": ["File (.csv or .xlsx)", "الملف (.csv أو .xlsx)"],
  "import.check": ["Check", "فحص"],
  "import.checking": ["Checking…", "جارٍ الفحص…"],
  "import.run": ["Import", "استيراد"],
  "import.running": ["Importing…", "جارٍ الاستيراد…"],
  "import.summary": ["{rows} rows · {created} new · {updated} updated · {errors} errors", "{rows} صف · {created} جديد · {updated} محدّث · {errors} أخطاء"],
  "import.ok": ["No errors: ready to import.", "لا توجد أخطاء: جاهز للاستيراد."],
  "import.fix": ["Fix these lines in the file and check again.", "صحّح هذه السطور في الملف ثم افحصه مرة أخرى."],
  "import.done": ["Imported: {created} new, {updated} updated.", "تم الاستيراد: {created} جديد، {updated} محدّث."],
  "import.line": ["Line {line}", "السطر {line}"],
  "import.errors": ["Errors in the file", "أخطاء في الملف"],
};

const AR_DIGITS = "٠١٢٣٤٥٦٧٨٩";
const store = (k, v) => { try { if (v === undefined) return localStorage.getItem(k); localStorage.setItem(k, v); } catch (e) { /* private mode */ } return null; };

const App = window.App = {
  lang: "en",
  arabicDigits: false,
  me: null,
  csrf: null,
};

App.has = (key) => Object.prototype.hasOwnProperty.call(S, key);
App.t = function (key, vars) {
  let s = App.has(key) ? S[key][App.lang === "ar" ? 1 : 0] || S[key][0] : key;
  if (vars) {
    s = s.replace(/\{(\w+)\}/g, (m, k) => {
      const v = vars[k];
      if (v === undefined || v === null) return "";
      return typeof v === "number" ? App.num(v) : String(v);
    });
  }
  return s;
};

App.locale = function () {
  return (App.lang === "ar" ? "ar-EG" : "en-GB") + "-u-nu-" + (App.arabicDigits ? "arab" : "latn");
};

App.num = function (n, opts) {
  if (typeof n !== "number" || !isFinite(n)) return n === undefined || n === null ? "" : App.digits(String(n));
  try { return new Intl.NumberFormat(App.locale(), opts).format(n); } catch (e) { return App.digits(String(n)); }
};

/** Western digits in a server-made string (a price text, a reference) → Arabic-Indic when asked. */
App.digits = function (s) {
  s = s === undefined || s === null ? "" : String(s);
  if (!App.arabicDigits) return s;
  return s.replace(/(\d),(?=\d{3})/g, "$1\u066C").replace(/(\d)\.(?=\d)/g, "$1\u066B").replace(/[0-9]/g, (d) => AR_DIGITS[d]);
};

App.setLang = function (lang, arabicDigits) {
  App.lang = lang === "ar" ? "ar" : "en";
  App.arabicDigits = !!arabicDigits;
  const root = document.documentElement;
  root.lang = App.lang;
  root.dir = App.lang === "ar" ? "rtl" : "ltr";
  store("inbox.lang", App.lang);
  store("inbox.digits", App.arabicDigits ? "1" : "0");
  if (document.body) App.applyI18n(document);
};

/** data-i18n (text), data-i18n-ph (placeholder), data-i18n-aria (aria-label) on static markup. */
App.applyI18n = function (root) {
  root = root || document;
  root.querySelectorAll("[data-i18n]").forEach((e) => { e.textContent = App.t(e.dataset.i18n); });
  root.querySelectorAll("[data-i18n-ph]").forEach((e) => { e.placeholder = App.t(e.dataset.i18nPh); });
  root.querySelectorAll("[data-i18n-aria]").forEach((e) => { e.setAttribute("aria-label", App.t(e.dataset.i18nAria)); });
  const title = document.querySelector("meta[name=page-title]");
  if (title) document.title = App.t(title.content) + " · " + App.t("app.name");
};

function parseTime(iso) {
  if (!iso) return null;
  const d = new Date(iso);
  return isNaN(d) ? null : d;
}
const dayStart = (d) => new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();

App.clock = function (iso) {
  const d = parseTime(iso);
  return d ? new Intl.DateTimeFormat(App.locale(), {hour: "2-digit", minute: "2-digit"}).format(d) : "";
};

App.fullTime = function (iso) {
  const d = parseTime(iso);
  return d ? new Intl.DateTimeFormat(App.locale(), {dateStyle: "medium", timeStyle: "short"}).format(d) : "";
};

/** Short, relative where it helps: "now", "5 min ago", "14:05" today, "Yesterday", "Tue", "24 Nov". */
App.relTime = function (iso) {
  const d = parseTime(iso);
  if (!d) return "";
  const now = new Date(), s = (now - d) / 1000, loc = App.locale();
  if (s < 45) return App.t("time.now");
  if (s < 3600) return new Intl.RelativeTimeFormat(loc, {numeric: "auto", style: "narrow"}).format(-Math.max(1, Math.round(s / 60)), "minute");
  const days = Math.round((dayStart(now) - dayStart(d)) / 86400000);
  if (days <= 0) return App.clock(iso);
  if (days === 1) return App.t("day.yesterday");
  if (days < 7) return new Intl.DateTimeFormat(loc, {weekday: "short"}).format(d);
  const opts = {day: "numeric", month: "short"};
  if (d.getFullYear() !== now.getFullYear()) opts.year = "numeric";
  return new Intl.DateTimeFormat(loc, opts).format(d);
};

/** "Today", "Yesterday" or a date: the separators between days of a thread. */
App.dayLabel = function (iso) {
  const d = parseTime(iso);
  if (!d) return "";
  const days = Math.round((dayStart(new Date()) - dayStart(d)) / 86400000);
  if (days === 0) return App.t("day.today");
  if (days === 1) return App.t("day.yesterday");
  return new Intl.DateTimeFormat(App.locale(), {weekday: "long", day: "numeric", month: "long", year: "numeric"}).format(d);
};
App.dayKey = function (iso) {
  const d = parseTime(iso);
  return d ? d.getFullYear() + "-" + (d.getMonth() + 1) + "-" + d.getDate() : "";
};

/** Money, compact: "EGP 3.5M". */
App.money = function (amount, currency) {
  if (typeof amount !== "number") return "";
  const n = App.num(amount, {notation: "compact", maximumFractionDigits: 1});
  return currency ? currency + " " + n : n;
};

/** el("p", {class: "x", dir: "auto", text: "..."}, child, "text", ...): text only, never HTML. */
App.el = function (tag, attrs) {
  const e = document.createElement(tag);
  if (attrs) {
    for (const k in attrs) {
      const v = attrs[k];
      if (v === undefined || v === null || v === false) continue;
      if (k === "text") e.textContent = v;
      else if (k === "class") e.className = v;
      else if (k.startsWith("on") && typeof v === "function") e.addEventListener(k.slice(2), v);
      else if (v === true) e.setAttribute(k, "");
      else e.setAttribute(k, v);
    }
  }
  for (let i = 2; i < arguments.length; i++) {
    const c = arguments[i];
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
};

App.srOnly = (text) => App.el("span", {class: "sr-only", text: text});

const SAFE_URL = /^https?:\/\//i;
App.safeUrl = (u) => (typeof u === "string" && SAFE_URL.test(u) ? u : null);

/** WhatsApp markup (*bold*, _italic_, ~strike~, ```mono```) and http(s) links, built as nodes. */
const MARK = /(https?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]])|```([\s\S]+?)```|\*([^*\n]+)\*|(^|[\s(])_([^_\n]+)_|~([^~\n]+)~/g;
App.richText = function (target, text) {
  text = text === undefined || text === null ? "" : String(text);
  let last = 0, m;
  MARK.lastIndex = 0;
  while ((m = MARK.exec(text))) {
    let start = m.index;
    if (m[4] !== undefined) start += m[4].length;
    if (start > last) target.append(text.slice(last, start));
    if (m[1]) target.append(App.el("a", {href: m[1], target: "_blank", rel: "noopener noreferrer nofollow", text: m[1]}));
    else if (m[2] !== undefined) target.append(App.el("code", {text: m[2]}));
    else if (m[3] !== undefined) target.append(App.el("strong", {text: m[3]}));
    else if (m[5] !== undefined) target.append(App.el("em", {text: m[5]}));
    else if (m[6] !== undefined) target.append(App.el("s", {text: m[6]}));
    last = MARK.lastIndex;
  }
  if (last < text.length) target.append(text.slice(last));
  return target;
};

App.debounce = function (fn, ms) {
  let timer = null;
  const d = function () {
    const args = arguments;
    clearTimeout(timer);
    timer = setTimeout(() => { timer = null; fn.apply(null, args); }, ms);
  };
  d.cancel = () => clearTimeout(timer);
  return d;
};

/** crypto.randomUUID needs a secure context; a phone on plain http over the LAN has none. */
App.uuid = function () {
  if (window.crypto && crypto.randomUUID) { try { return crypto.randomUUID(); } catch (e) { /* fall through */ } }
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
};

/** An error (role="alert") or a note (role="status"), gone by itself or when dismissed. */
App.toast = function (message, kind) {
  let box = document.getElementById("toasts");
  if (!box) {
    box = App.el("div", {id: "toasts", class: "toasts"});
    document.body.append(box);
  }
  const error = kind !== "info";
  const node = App.el("div", {class: "toast" + (error ? " toast-error" : ""), role: error ? "alert" : "status", "data-testid": "toast"});
  const text = App.el("span", {class: "toast-text", dir: "auto", text: message});
  const close = App.el("button", {type: "button", class: "toast-close", "aria-label": App.t("toast.dismiss"), text: "×"});
  close.addEventListener("click", () => node.remove());
  node.append(text, close);
  // The same message twice in a row shows once.
  for (const old of box.querySelectorAll(".toast")) if (old.firstChild.textContent === message) old.remove();
  box.append(node);
  while (box.children.length > 3) box.firstChild.remove();
  setTimeout(() => node.remove(), error ? 8000 : 4000);
  return node;
};

let leaving = false;
App.toLogin = function () {
  if (leaving || location.pathname === "/login") return;
  leaving = true;
  const here = location.pathname + location.search + location.hash;
  location.replace(here === "/" ? "/login" : "/login?next=" + encodeURIComponent(here));
};

/**
 * api("POST", "/api/x", {a: 1}, {quiet, no401, signal, timeout}) → the parsed JSON body.
 * Errors throw an Error whose message is the server's reason, already shown in a toast unless quiet.
 */
App.api = async function (method, path, body, opt) {
  opt = opt || {};
  const headers = {"Accept": "application/json"};
  let payload;
  const writing = method !== "GET" && method !== "HEAD";
  if (typeof FormData !== "undefined" && body instanceof FormData) {
    payload = body;               // the browser sets the multipart Content-Type with its boundary
  } else if (writing) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body === undefined ? {} : body);
  }
  // The token comes with /api/me; a write that races the page's first /api/me waits for it.
  if (writing && !App.csrf && !opt.noCsrf) { try { await App.loadMe({quiet: true}); } catch (e) { /* reported below */ } }
  if (writing && App.csrf) headers["X-CSRF-Token"] = App.csrf;

  const ctl = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => { timedOut = true; ctl.abort(); }, opt.timeout || 30000);
  if (opt.signal) {
    if (opt.signal.aborted) ctl.abort();
    else opt.signal.addEventListener("abort", () => ctl.abort());
  }
  let res;
  try {
    res = await fetch(path, {method, headers, body: payload, credentials: "same-origin", cache: "no-store", signal: ctl.signal});
  } catch (e) {
    clearTimeout(timer);
    if (opt.signal && opt.signal.aborted) throw e;     // replaced by a newer request: say nothing
    const err = new Error(App.t(timedOut ? "err.timeout" : "err.network"));
    err.network = true;
    if (!opt.quiet) App.toast(err.message);
    throw err;
  }
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  clearTimeout(timer);
  if (res.status === 401 && !opt.no401) {
    App.toLogin();
    const err = new Error("unauthorized");
    err.status = 401;
    throw err;
  }
  // A session refreshed elsewhere may carry a new CSRF token: fetch it once and try again.
  if (res.status === 403 && writing && !opt.retried && data && /csrf/i.test(String(data.error || ""))) {
    try { await App.loadMe(); } catch (e) { /* the retry reports */ }
    return App.api(method, path, body, Object.assign({}, opt, {retried: true}));
  }
  if (!res.ok || (data && data.ok === false)) {
    const reason = data && typeof data.error === "string" && data.error ? data.error
      : data && typeof data.detail === "string" ? data.detail : App.t("err.http", {status: res.status});
    const err = new Error(reason);
    err.status = res.status;
    err.data = data;
    if (!opt.quiet) App.toast(reason);
    throw err;
  }
  return data || {};
};

/** GET /api/me: the agent, their language and digits, the CSRF token. */
App.loadMe = async function (opt) {
  const data = await App.api("GET", "/api/me", undefined, opt);
  App.me = data.agent || {};
  App.csrf = data.csrf_token || null;
  App.simulator = !!data.simulator;
  App.readsNotes = data.assistant_reads_notes !== false;
  App.setLang(App.me.language, App.me.arabic_digits);
  return data;
};

App.initHeader = function () {
  const me = App.me || {};
  const q = (s) => document.querySelector(s);
  const agency = q("[data-testid=agency-name]"), agent = q("[data-testid=agent-name]");
  if (agency) agency.textContent = me.agency || App.t("app.name");
  if (agent) agent.textContent = me.name || me.email || "";
  const sim = q("[data-testid=nav-simulator]");
  if (sim) sim.closest("li").hidden = !App.simulator;

  const btn = q("#menu-button"), list = q("#menu-list");
  if (!btn || !list || btn.dataset.bound) return;
  btn.dataset.bound = "1";
  const setOpen = (open) => {
    list.hidden = !open;
    btn.setAttribute("aria-expanded", String(open));
  };
  btn.addEventListener("click", () => setOpen(list.hidden));
  document.addEventListener("click", (ev) => {
    if (!list.hidden && !list.contains(ev.target) && !btn.contains(ev.target)) setOpen(false);
  });
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && !list.hidden) { setOpen(false); btn.focus(); }
  });
  const out = async (path, button) => {
    button.disabled = true;
    try { await App.api("POST", path, {}, {no401: true}); } catch (e) { if (!e.status || e.status >= 500) { button.disabled = false; return; } }
    location.replace("/login");
  };
  const lo = q("[data-testid=logout]"), la = q("[data-testid=logout-everywhere]");
  if (lo) lo.addEventListener("click", () => out("/api/auth/logout", lo));
  if (la) la.addEventListener("click", () => out("/api/auth/logout-everywhere", la));
};

// First paint: language and digits from the last /api/me, else the browser's.
const saved = store("inbox.lang");
const guess = saved || ((navigator.languages && navigator.languages[0]) || navigator.language || "en").slice(0, 2);
App.setLang(guess === "ar" ? "ar" : "en", store("inbox.digits") === "1");
})();
