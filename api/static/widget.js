/*
 * Aiguillage — chat widget for collectivities' websites (and the full page at /).
 *
 * Embed:  <script src="https://SERVER/widget.js" data-api="https://SERVER" data-insee="15187" defer></script>
 * adds a floating button that opens the chat panel. A page can also place
 * <aiguillage-chat mode="page" api="https://SERVER" insee="15187"></aiguillage-chat> itself.
 *
 * Plain JavaScript, no build step, no dependency: a custom element with an open shadow root.
 * Untrusted text (questions, answers, offer fields) only ever reaches the DOM through textContent
 * or attributes set one by one; links are restricted to http(s).
 */
(() => {
  "use strict";
  if (customElements.get("aiguillage-chat")) return;
  const SCRIPT = document.currentScript;

  const PARTNERS = {
    anct: "ANCT", ademe: "ADEME", cerema: "Cerema", anru: "ANRU", anah: "Anah",
    "banque-des-territoires": "Banque des Territoires", etat: "État",
  };
  const REASONS = [
    ["offre-expiree", "Offre expirée"],
    ["mauvais-territoire", "Mauvais territoire"],
    ["mauvais-theme", "Mauvais thème"],
    ["mauvais-partenaire", "Mauvais partenaire"],
    ["autre", "Autre"],
  ];
  const ELIGIBILITY = {
    eligible: ["Éligible", "ok"],
    unknown: ["Éligibilité à vérifier", "warn"],
    ineligible: ["Non éligible", "ko"],
  };
  const EXAMPLES = [
    "Notre commune de 800 habitants veut rénover l'école : qui peut nous aider ?",
    "Quelle aide pour moderniser l'éclairage public ?",
    "Nous voulons revitaliser notre centre-bourg, par où commencer ?",
  ];
  const MESSAGES = {
    network: "Connexion au service impossible. Vérifiez votre connexion internet, puis réessayez.",
    server: "Le service rencontre un problème momentané. Réessayez dans un instant.",
    interrupted: "La réponse a été interrompue avant la fin. Réessayez.",
    busy: "Trop de demandes en peu de temps. Patientez un instant puis réessayez.",
    restore: "Impossible de récupérer votre conversation précédente pour le moment.",
    feedback: "Votre avis n'a pas pu être envoyé. Réessayez.",
  };

  const SVG_NS = "http://www.w3.org/2000/svg";
  const ICONS = {
    chat: "M4 3h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zm2 5v2h12V8H6zm0 4v2h8v-2H6z",
    up: "M2 10h4v11H2V10zm6 11V10l5.6-7.2a1.5 1.5 0 0 1 2.7 1.2L15 9h5.5a2 2 0 0 1 2 2.4l-1.6 8A2 2 0 0 1 19 21H8z",
    down: "M22 14h-4V3h4v11zm-6-11v11l-5.6 7.2a1.5 1.5 0 0 1-2.7-1.2L9 15H3.5a2 2 0 0 1-2-2.4l1.6-8A2 2 0 0 1 5 3h11z",
    send: "M3 20.5V14l9-2-9-2V3.5L22 12 3 20.5z",
  };

  function icon(name) {
    const svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", "1em");
    svg.setAttribute("height", "1em");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    svg.setAttribute("class", "icon");
    const path = document.createElementNS(SVG_NS, "path");
    path.setAttribute("d", ICONS[name]);
    path.setAttribute("fill", "currentColor");
    svg.append(path);
    return svg;
  }

  const CSS = `
:host { all: initial; --blue: #000091; --blue-hover: #1212ff; --text: #161616; --muted: #3a3a3a;
  --line: #dddddd; --alt: #f6f6f6; --info: #0063cb; --ok: #18753c; --warn: #b34000; --ko: #ce0500;
  --focus: #0a76f6; font-family: Marianne, Arial, "Helvetica Neue", system-ui, sans-serif; color: var(--text);
  font-size: 16px; line-height: 1.5; }
:host([mode="page"]) { display: block; height: 100%; }
*, *::before, *::after { box-sizing: border-box; }
[hidden] { display: none !important; }
.icon { flex: none; vertical-align: -0.125em; }
.sr-only { position: absolute; width: 1px; height: 1px; padding: 0; margin: -1px; overflow: hidden;
  clip: rect(0 0 0 0); white-space: nowrap; border: 0; }
button, textarea, input { font: inherit; color: inherit; }
:focus-visible { outline: 2px solid var(--focus); outline-offset: 2px; }
a { color: var(--blue); text-underline-offset: 2px; }
a:hover { text-decoration-thickness: 2px; }
.btn { display: inline-flex; align-items: center; gap: .4rem; min-height: 2.5rem; padding: .5rem 1rem;
  border: 0; background: var(--blue); color: #fff; font-weight: 500; cursor: pointer; }
.btn:hover { background: var(--blue-hover); }
.btn[disabled] { background: #e5e5e5; color: #666; cursor: not-allowed; }
.btn-secondary { background: #fff; color: var(--blue); box-shadow: inset 0 0 0 1px var(--blue); }
.btn-secondary:hover { background: #f5f5fe; }
.btn-sm { min-height: 2rem; padding: .25rem .75rem; font-size: .875rem; }
.launcher { position: fixed; right: 1.5rem; bottom: 1.5rem; z-index: 2147483000; border-radius: 2rem;
  min-height: 3.25rem; padding: .75rem 1.25rem; box-shadow: 0 6px 18px rgba(0,0,18,.28); }
.panel { display: flex; flex-direction: column; background: #fff; min-width: 0; }
:host(:not([mode="page"])) .panel { position: fixed; right: 1.5rem; bottom: 5.5rem; z-index: 2147483001;
  width: min(26rem, calc(100vw - 3rem)); height: min(40rem, calc(100vh - 7rem));
  border: 1px solid var(--line); box-shadow: 0 8px 28px rgba(0,0,18,.22); }
:host([mode="page"]) .panel { height: 100%; border: 1px solid var(--line); }
@media (max-width: 30rem) {
  :host(:not([mode="page"])) .panel { inset: 0; width: 100vw; height: 100%; border: 0; }
  .launcher { right: 1rem; bottom: 1rem; }
}
header { display: flex; align-items: flex-start; gap: .5rem; padding: .75rem 1rem;
  border-bottom: 1px solid var(--line); border-top: 4px solid var(--blue); }
.brand { flex: 1; min-width: 0; }
.brand h2 { margin: 0; font-size: 1.125rem; line-height: 1.4; color: var(--blue); }
.brand p { margin: 0; font-size: .8125rem; color: var(--muted); }
.icon-btn { background: transparent; border: 0; min-width: 2.5rem; min-height: 2.5rem; cursor: pointer;
  color: var(--blue); font-size: 1.5rem; line-height: 1; }
.icon-btn:hover { background: #f5f5fe; }
.log { position: relative; flex: 1; overflow-y: auto; padding: 1rem; display: flex; flex-direction: column; gap: 1rem;
  background: var(--alt); overscroll-behavior: contain; }
.msg { max-width: 100%; min-width: 0; }
.user { align-self: flex-end; max-width: 88%; }
.user .bubble { background: var(--blue); color: #fff; padding: .5rem .875rem; white-space: pre-wrap;
  overflow-wrap: anywhere; }
.bot .bubble { background: #fff; border: 1px solid var(--line); border-left: 4px solid var(--blue);
  padding: .75rem 1rem; overflow-wrap: anywhere; }
.bot[aria-busy="true"] .bubble::after { content: "▍"; color: var(--blue); animation: blink 1s steps(2) infinite; }
@keyframes blink { 50% { opacity: 0; } }
@media (prefers-reduced-motion: reduce) { .bot[aria-busy="true"] .bubble::after { animation: none; } }
.md > :first-child { margin-top: 0; } .md > :last-child { margin-bottom: 0; }
.md p { margin: .5rem 0; } .md ul, .md ol { margin: .5rem 0; padding-left: 1.25rem; }
.md li { margin: .25rem 0; }
.md h3 { font-size: 1rem; margin: 1rem 0 .25rem; color: var(--blue); }
.md .cite { font-size: .75rem; color: var(--muted); background: var(--alt); padding: 0 .25rem; }
.thinking { color: var(--muted); font-style: italic; margin: 0; }
.cards-title { font-size: .875rem; font-weight: 700; margin: .75rem 0 .5rem; }
.more { margin-top: .5rem; }
.more > summary { cursor: pointer; color: var(--blue); font-weight: 700; font-size: .875rem; }
.more > summary:focus-visible { outline: 2px solid var(--blue); outline-offset: 2px; }
.cards { list-style: none; margin: 0; padding: 0; display: grid; gap: .75rem; }
.card { background: #fff; border: 1px solid var(--line); border-bottom: 3px solid var(--blue); padding: .875rem 1rem; }
.card-partner { margin: 0; font-size: .75rem; font-weight: 700; text-transform: uppercase; letter-spacing: .03em;
  color: var(--muted); }
.card h3 { margin: .125rem 0 .5rem; font-size: 1rem; line-height: 1.4; }
.badges { display: flex; flex-wrap: wrap; gap: .375rem; margin: 0 0 .5rem; padding: 0; list-style: none; }
.badge { display: inline-block; font-size: .75rem; font-weight: 700; text-transform: uppercase; padding: .125rem .5rem;
  border-radius: .25rem; }
.badge-ok { background: #b8fec9; color: #18753c; } .badge-warn { background: #ffe9e6; color: #b34000; }
.badge-ko { background: #ffe9e9; color: #ce0500; } .badge-info { background: #e8edff; color: #0063cb; }
.card dl { margin: 0; font-size: .875rem; }
.card dt { font-weight: 700; margin-top: .375rem; } .card dd { margin: 0; }
.card dd ol { margin: 0; padding-left: 1.25rem; }
.card .official { display: inline-block; margin-top: .625rem; font-size: .875rem; font-weight: 500; }
.quick { display: flex; flex-wrap: wrap; gap: .5rem; margin-top: .75rem; }
.quick .btn { text-align: left; }
.feedback { margin-top: .5rem; font-size: .875rem; color: var(--muted); }
.feedback .row { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem; }
.feedback .vote { background: #fff; border: 1px solid var(--line); min-height: 2rem; padding: .125rem .625rem;
  cursor: pointer; color: var(--text); }
.feedback .vote:hover { border-color: var(--blue); }
.feedback .vote[aria-pressed="true"] { background: var(--blue); color: #fff; border-color: var(--blue); }
.feedback fieldset { border: 1px solid var(--line); background: #fff; margin: .5rem 0 0; padding: .5rem .75rem .75rem; }
.feedback legend { font-weight: 700; color: var(--text); padding: 0 .25rem; }
.feedback label { display: flex; align-items: center; gap: .5rem; padding: .125rem 0; color: var(--text); }
.feedback input[type=radio] { width: 1.125rem; height: 1.125rem; accent-color: var(--blue); margin: 0; }
.feedback textarea { width: 100%; margin: .375rem 0 .5rem; padding: .375rem .5rem; border: 0;
  border-bottom: 2px solid var(--text); background: #eee; resize: vertical; }
.feedback .done { color: var(--ok); font-weight: 500; }
.welcome { background: #fff; border: 1px solid var(--line); padding: 1rem; }
.welcome p { margin: 0 0 .75rem; }
.welcome .examples { display: flex; flex-direction: column; gap: .5rem; }
.welcome .examples .btn { justify-content: flex-start; text-align: left; font-weight: 400; font-size: .875rem; }
.alert { margin: 0 1rem; padding: .625rem .75rem; border: 1px solid var(--ko); border-left-width: 4px;
  background: #fff4f4; color: var(--text); display: flex; flex-wrap: wrap; gap: .5rem; align-items: center;
  font-size: .875rem; }
.alert p { margin: 0; flex: 1 1 12rem; }
form.composer { display: flex; gap: .5rem; align-items: flex-end; padding: .75rem 1rem .25rem; }
.field { flex: 1; min-width: 0; }
.field label { display: block; font-size: .875rem; margin-bottom: .25rem; }
.field textarea { display: block; width: 100%; min-height: 2.75rem; max-height: 9rem; padding: .5rem .75rem;
  border: 0; border-bottom: 2px solid var(--text); border-radius: .25rem .25rem 0 0; background: #eee;
  resize: none; }
.legal { margin: 0; padding: .25rem 1rem .625rem; font-size: .75rem; color: var(--muted); }
@media (max-width: 30rem) {
  header { padding: .5rem .5rem .5rem .75rem; align-items: center; gap: .25rem; }
  .brand h2 { font-size: 1rem; }
  header .btn-sm { font-size: .8125rem; padding: .25rem .5rem; }
  .brand p, .wide-only { display: none; }
  .log { padding: .75rem .5rem; }
  form.composer { padding: .5rem .5rem .25rem; }
  .field label { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
  .send-label { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
  .legal { padding: .125rem .5rem .5rem; }
  .user { max-width: 94%; }
  .bot .bubble { padding: .625rem .75rem; }
  .card { padding: .75rem; }
}
`;

  // ---- small DOM helpers ---------------------------------------------------------------------
  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function safeUrl(url) {
    try {
      const parsed = new URL(url, location.href);
      return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : null;
    } catch (_) {
      return null;
    }
  }

  function link(url, label) {
    const href = safeUrl(url);
    if (!href) return document.createTextNode(label);
    return h("a", { href, target: "_blank", rel: "noopener noreferrer" }, label);
  }

  // ---- the markdown subset of the grounded answer: ### headings, **bold**, - lists, links -------
  const INLINE = /\*\*(.+?)\*\*|\[([^\]\n]+)\]\((https?:\/\/[^\s)]+)\)|\[([a-z0-9]+(?:-[a-z0-9]+)+)\]|(https?:\/\/[^\s<>()"]+[^\s<>()".,;:!?'])/g;

  function inline(text, parent) {
    let last = 0;
    for (const match of text.matchAll(INLINE)) {
      if (match.index > last) parent.append(text.slice(last, match.index));
      if (match[1] !== undefined) {
        const strong = h("strong");
        inline(match[1], strong);
        parent.append(strong);
      } else if (match[2] !== undefined) parent.append(link(match[3], match[2]));
      else if (match[4] !== undefined) parent.append(h("span", { class: "cite", title: "Fiche citée" }, match[4]));
      else parent.append(link(match[5], match[5]));
      last = match.index + match[0].length;
    }
    if (last < text.length) parent.append(text.slice(last));
    return parent;
  }

  // The offer cards already say who, why, how to start and whom to contact: keep the answer's
  // opening in view and fold the per-offer detail (headings "### ") under a disclosure.
  function renderAnswer(text, into) {
    const source = String(text);
    const split = source.search(/^### /m);
    const wasOpen = Boolean(into.querySelector("details.more[open]"));
    if (split <= 0) {
      renderMarkdown(source, into);
      return;
    }
    renderMarkdown(source.slice(0, split), into);
    const body = h("div");
    renderMarkdown(source.slice(split), body);
    into.append(h("details", { class: "more", open: wasOpen }, h("summary", {}, "Détail des offres, contacts et sources"), body));
  }

  function renderMarkdown(text, into) {
    into.replaceChildren();
    let list = null;
    let paragraph = null;
    for (const raw of String(text).replace(/\r\n?/g, "\n").split("\n")) {
      const line = raw.trimEnd();
      const heading = /^#{1,6}\s+(.*)$/.exec(line);
      const item = /^\s*(?:[-*•]|\d+[.)])\s+(.*)$/.exec(line);
      if (!line.trim()) {
        list = paragraph = null;
      } else if (heading) {
        list = paragraph = null;
        into.append(inline(heading[1], h("h3")));
      } else if (item) {
        paragraph = null;
        if (!list) into.append((list = h("ul")));
        list.append(inline(item[1], h("li")));
      } else if (paragraph) {
        paragraph.append(h("br"));
        inline(line, paragraph);
      } else {
        list = null;
        into.append((paragraph = inline(line, h("p"))));
      }
    }
    return into;
  }

  // ---- Server-Sent Events over fetch (EventSource cannot POST) ----------------------------------
  async function* readEvents(response) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      buffer += decoder.decode(value || new Uint8Array(), { stream: !done });
      const blocks = buffer.split(/\r\n\r\n|\n\n|\r\r/);
      buffer = done ? "" : blocks.pop();
      for (const block of blocks) {
        let name = "message";
        const data = [];
        for (const line of block.split(/\r\n|\n|\r/)) {
          if (line.startsWith(":")) continue;
          const colon = line.indexOf(":");
          const field = colon === -1 ? line : line.slice(0, colon);
          const content = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "event") name = content;
          else if (field === "data") data.push(content);
        }
        if (data.length) yield { event: name, data: JSON.parse(data.join("\n")) };
      }
      if (done) return;
    }
  }

  class HttpError extends Error {
    constructor(status, detail, retryAfter) {
      super(detail || `HTTP ${status}`);
      this.status = status;
      this.detail = detail;
      this.retryAfter = retryAfter;
    }
  }

  async function failure(response) {
    let detail = null;
    try {
      detail = (await response.json()).detail;
    } catch (_) { /* not JSON */ }
    return new HttpError(response.status, typeof detail === "string" ? detail : null, response.headers.get("Retry-After"));
  }

  function errorText(error) {
    if (error instanceof HttpError) {
      if (error.status === 429) {
        if (error.detail) return error.detail;
        return error.retryAfter ? `Trop de demandes en peu de temps. Patientez ${error.retryAfter} s puis réessayez.` : MESSAGES.busy;
      }
      if (error.status >= 500) return MESSAGES.server;
      return error.detail || MESSAGES.server;
    }
    if (error && error.sseDetail) return error.sseDetail;
    if (error && error.interrupted) return MESSAGES.interrupted;
    return MESSAGES.network;
  }

  let counter = 0;

  class AiguillageChat extends HTMLElement {
    connectedCallback() {
      if (this.shadowRoot) return;
      this.uid = `aig${++counter}`;
      this.page = this.getAttribute("mode") === "page";
      this.api = (this.getAttribute("api") || "").replace(/\/+$/, "");
      const insee = (this.getAttribute("insee") || "").trim().toUpperCase();
      this.insee = /^(\d{5}|2[AB]\d{3})$/.test(insee) ? insee : null;
      this.storageKey = `aiguillage:${this.api || location.origin}:conversation`;
      this.conversation = this.load(this.storageKey);
      this.busy = false;
      this.controller = null;
      this.build();
      if (this.conversation) this.restore();
      else this.welcome();
    }

    disconnectedCallback() {
      if (this.controller) this.controller.abort();
    }

    // ---- storage (private browsing may refuse it: the chat still works for the page's lifetime) --
    load(key) {
      try { return localStorage.getItem(key); } catch (_) { return null; }
    }
    save(key, value) {
      try {
        if (value === null) localStorage.removeItem(key);
        else localStorage.setItem(key, value);
      } catch (_) { /* ignore */ }
    }

    // ---- layout ------------------------------------------------------------------------------
    build() {
      const root = this.attachShadow({ mode: "open" });
      const id = (name) => `${this.uid}-${name}`;
      root.append(h("style", { text: CSS }));
      this.input = h("textarea", {
        id: id("q"), rows: 2, maxlength: 2000, autocomplete: "off",
        placeholder: "Décrivez le projet de votre collectivité…",
        "aria-describedby": id("help"),
        onkeydown: (event) => {
          if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
            event.preventDefault();
            this.form.requestSubmit();
          }
        },
        oninput: () => this.autosize(),
      });
      this.sendLabel = h("span", { class: "send-label" }, "Envoyer");
      this.sendButton = h("button", { class: "btn", type: "submit" }, icon("send"), this.sendLabel);
      this.form = h("form", { class: "composer", onsubmit: (event) => { event.preventDefault(); this.submit(); } },
        h("div", { class: "field" },
          h("label", { for: id("q") }, "Votre question"),
          this.input),
        this.sendButton);
      this.log = h("div", { class: "log", role: "log", "aria-live": "polite", "aria-label": "Conversation", tabindex: "0" });
      for (const type of ["wheel", "touchmove", "keydown"]) {
        this.log.addEventListener(type, () => { if (this.busy) this.userScrolled = true; }, { passive: true });
      }
      this.alertText = h("p");
      this.retryButton = h("button", { class: "btn btn-sm", type: "button", onclick: () => this.retry() }, "Réessayer");
      this.alert = h("div", { class: "alert", role: "alert", hidden: true }, this.alertText, this.retryButton);
      const newButton = h("button", { class: "btn btn-secondary btn-sm", type: "button", onclick: () => this.reset() },
        "Nouvelle conversation");
      const headerChildren = [
        h("div", { class: "brand" },
          // On the full page the site header already names the service.
          h("h2", { id: id("title") }, this.page ? "Conversation" : "Aiguillage"),
          this.page ? null : h("p", {}, "Le bon partenaire pour le projet de votre collectivité")),
        newButton,
      ];
      if (!this.page) {
        headerChildren.push(h("button", { class: "icon-btn", type: "button", "aria-label": "Fermer l'assistant",
          title: "Fermer", onclick: () => this.close() }, "×"));
      }
      this.panel = h("section", {
        class: "panel", id: id("panel"), "aria-labelledby": id("title"),
        role: this.page ? "region" : "dialog", hidden: !this.page,
        onkeydown: (event) => { if (event.key === "Escape" && !this.page) { event.stopPropagation(); this.close(); } },
      },
      h("header", {}, ...headerChildren),
      this.log,
      this.alert,
      this.form,
      h("p", { class: "legal", id: id("help") },
        "Réponses tirées des fiches officielles des offres : faites confirmer montants et conditions. ",
        "N'indiquez pas de données personnelles.",
        h("span", { class: "wide-only" }, " Entrée pour envoyer, Maj+Entrée pour aller à la ligne.")));
      if (!this.page) {
        this.launcher = h("button", {
          class: "btn launcher", type: "button", "aria-expanded": "false", "aria-controls": id("panel"),
          onclick: () => (this.panel.hidden ? this.open() : this.close()),
        }, icon("chat"), "Trouver une aide");
        root.append(this.launcher);
      }
      root.append(this.panel);
    }

    open() {
      this.panel.hidden = false;
      this.launcher.setAttribute("aria-expanded", "true");
      this.scrollDown();
      this.input.focus();
    }

    close() {
      this.panel.hidden = true;
      this.launcher.setAttribute("aria-expanded", "false");
      this.launcher.focus();
    }

    autosize() {
      this.input.style.height = "auto";
      this.input.style.height = `${Math.min(this.input.scrollHeight + 2, 144)}px`;
    }

    scrollDown() {
      this.log.scrollTop = this.log.scrollHeight;
    }

    url(path) {
      return `${this.api}${path}`;
    }

    // ---- conversation lifecycle ---------------------------------------------------------------
    welcome() {
      const examples = EXAMPLES.map((text) =>
        h("button", { class: "btn btn-secondary", type: "button", onclick: () => { this.input.value = text; this.submit(); } }, text));
      this.log.append(h("div", { class: "welcome" },
        h("p", {}, "Bonjour ! Décrivez le projet de votre collectivité (sujet, taille, commune) : je vous indique ",
          "l'offre de l'ANCT ou de ses partenaires qui peut vous aider, et qui contacter."),
        h("p", {}, h("strong", {}, "Par exemple :")),
        h("div", { class: "examples" }, examples)));
    }

    reset() {
      if (this.controller) this.controller.abort();
      this.conversation = null;
      this.save(this.storageKey, null);
      this.log.replaceChildren();
      this.hideAlert();
      this.setBusy(false);
      this.welcome();
      this.input.value = "";
      this.input.focus();
    }

    async restore() {
      const id = this.conversation;
      this.log.replaceChildren(h("p", { class: "thinking" }, "Reprise de votre conversation…"));
      let body;
      try {
        const response = await fetch(this.url(`/v1/conversations/${encodeURIComponent(id)}/public`));
        if (response.status === 404) {
          this.conversation = null;
          this.save(this.storageKey, null);
          this.log.replaceChildren();
          this.welcome();
          return;
        }
        if (!response.ok) throw await failure(response);
        body = await response.json();
      } catch (error) {
        this.log.replaceChildren();
        this.welcome();
        this.showAlert(`${MESSAGES.restore} ${errorText(error)}`, () => this.restore());
        return;
      }
      this.log.replaceChildren();
      body.messages.forEach((message, index) => {
        this.addUser(message.message);
        const bot = this.addBot();
        renderAnswer(message.answer, bot.content);
        const last = index === body.messages.length - 1;
        // Quick replies are stored with the turn: offer them again only if still unanswered.
        const clarification = last && message.kind === "clarification" ? message.clarification : null;
        this.finish(bot, { ...message, conversation_id: id, clarification }, message.feedback);
      });
      if (!body.messages.length) this.welcome();
      this.scrollDown();
    }

    addUser(text) {
      const node = h("div", { class: "msg user" }, h("span", { class: "sr-only" }, "Vous : "), h("div", { class: "bubble" }, text));
      this.log.append(node);
      return node;
    }

    addBot() {
      const content = h("div", { class: "md" });
      const node = h("article", { class: "msg bot", "aria-label": "Réponse de l'assistant" },
        h("div", { class: "bubble" }, content));
      this.log.append(node);
      return { node, content };
    }

    setBusy(busy) {
      this.busy = busy;
      this.sendButton.disabled = busy;
      this.sendButton.setAttribute("aria-busy", String(busy));
      this.sendLabel.textContent = busy ? "Envoi…" : "Envoyer";
    }

    showAlert(text, retry) {
      this.alertText.textContent = text;
      this.retryAction = retry;
      this.retryButton.hidden = !retry;
      this.alert.hidden = false;
    }

    hideAlert() {
      this.alert.hidden = true;
      this.retryAction = null;
    }

    retry() {
      const action = this.retryAction;
      this.hideAlert();
      if (action) action();
    }

    submit(text) {
      if (this.busy) return;
      const message = (text === undefined ? this.input.value : text).trim();
      if (!message) {
        this.input.focus();
        return;
      }
      this.send(message, text === undefined);
    }

    async send(message, typed) {
      this.hideAlert();
      this.setBusy(true);
      const welcome = this.log.querySelector(".welcome");
      if (welcome) welcome.remove();
      const userNode = this.addUser(message);
      const bot = this.addBot();
      bot.node.setAttribute("aria-busy", "true");
      bot.content.append(h("p", { class: "thinking" }, "Recherche des offres adaptées…"));
      if (typed) this.input.value = "";
      this.autosize();
      this.scrollDown();

      const controller = (this.controller = new AbortController());
      const body = { message };
      if (this.conversation) body.conversation_id = this.conversation;
      if (this.insee) body.insee = this.insee;
      let text = "";
      let meta = null;
      let final = null;
      let frame = 0;
      this.userScrolled = false;
      const paint = () => {
        frame = 0;
        renderAnswer(text, bot.content);
        this.reveal(userNode);
      };
      try {
        let response;
        try {
          response = await fetch(this.url("/v1/chat/stream"), {
            method: "POST",
            headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
            body: JSON.stringify(body),
            signal: controller.signal,
          });
        } catch (error) {
          if (controller.signal.aborted) return;
          throw error;
        }
        if (!response.ok) throw await failure(response);
        for await (const { event, data } of readEvents(response)) {
          if (event === "meta") {
            meta = data;
            this.adopt(data.conversation_id);
            if (meta.referrals.length) this.renderCards(bot.node, meta.referrals);
          } else if (event === "delta") {
            text += data.text;
            if (!frame) frame = requestAnimationFrame(paint);
          } else if (event === "done") {
            final = data;
          } else if (event === "error") {
            throw Object.assign(new Error(data.detail), { sseDetail: data.detail });
          }
        }
        if (!final) throw Object.assign(new Error("interrupted"), { interrupted: true });
      } catch (error) {
        if (controller.signal.aborted) return;
        if (frame) cancelAnimationFrame(frame);
        userNode.remove();
        bot.node.remove();
        if (!this.log.children.length) this.welcome();
        if (!this.input.value.trim()) this.input.value = message; // the typed text is never lost
        this.autosize();
        this.showAlert(errorText(error), () => this.submit());
        return;
      } finally {
        if (this.controller === controller) {
          this.controller = null;
          this.setBusy(false);
        }
      }
      if (frame) cancelAnimationFrame(frame);
      renderAnswer(final.answer, bot.content);
      bot.node.removeAttribute("aria-busy");
      this.finish(bot, final, null);
      this.reveal(userNode);
    }

    reveal(node) {
      // Keep the question and the beginning of its answer in view while the answer grows.
      if (!this.userScrolled) this.log.scrollTop = Math.max(0, node.offsetTop - 8);
    }

    adopt(conversationId) {
      if (conversationId && conversationId !== this.conversation) {
        this.conversation = conversationId;
        this.save(this.storageKey, conversationId);
      }
    }

    // ---- what comes under an answer ------------------------------------------------------------
    finish(bot, turn, rating) {
      if (turn.referrals && turn.referrals.length) this.renderCards(bot.node, turn.referrals);
      if (turn.clarification && turn.clarification.options && turn.clarification.options.length) {
        const group = h("div", { class: "quick", role: "group", "aria-label": "Réponses proposées" });
        for (const option of turn.clarification.options) {
          group.append(h("button", {
            class: "btn btn-secondary btn-sm", type: "button",
            onclick: () => {
              if (this.busy) return;
              group.remove();
              this.input.focus(); // the clicked button is gone: keep focus somewhere useful
              this.submit(option.value);
            },
          }, option.label));
        }
        bot.node.append(group);
      }
      if (turn.kind !== "clarification") this.renderFeedback(bot.node, turn, rating);
    }

    renderCards(node, referrals) {
      const old = node.querySelector(".offers");
      if (old) old.remove();
      const titleId = `${this.uid}-cards-${++counter}`;
      const list = h("ul", { class: "cards", "aria-labelledby": titleId });
      for (const referral of referrals) list.append(h("li", {}, this.card(referral)));
      const section = h("section", { class: "offers" },
        h("p", { class: "cards-title", id: titleId }, referrals.length > 1 ? "Les offres proposées" : "L'offre proposée"),
        list);
      const anchor = node.querySelector(".quick, .feedback");
      node.insertBefore(section, anchor);
    }

    card(referral) {
      const [label, tone] = ELIGIBILITY[referral.eligibility.status] || ELIGIBILITY.unknown;
      const badges = h("ul", { class: "badges", "aria-label": "Statut" }, h("li", { class: `badge badge-${tone}` }, label));
      if (referral.eligibility.free === true) badges.append(h("li", { class: "badge badge-info" }, "Gratuit pour vous"));
      if (referral.status === "closed") badges.append(h("li", { class: "badge badge-ko" }, "Offre close"));
      if (referral.status === "historic") badges.append(h("li", { class: "badge badge-ko" }, "Programme terminé"));
      const details = h("dl");
      const add = (term, ...value) => details.append(h("dt", {}, term), h("dd", {}, ...value));
      if (referral.reasons && referral.reasons.length) add("Pourquoi elle vous correspond", referral.reasons.join(" ; "));
      const eligibility = referral.eligibility;
      const eligibilityText = eligibility.status === "ineligible" ? eligibility.failed.join(" ; ")
        : [...eligibility.met, ...(eligibility.missing.length ? [`à vérifier : ${eligibility.missing.join(", ")}`] : [])].join(" ; ");
      if (eligibilityText) add("Éligibilité", eligibilityText);
      if (referral.how_to_start && referral.how_to_start.length) {
        add("Pour démarrer", referral.how_to_start.length > 1
          ? h("ol", {}, referral.how_to_start.map((step) => h("li", {}, step)))
          : referral.how_to_start[0]);
      }
      const contact = referral.contact || {};
      if (contact.name) {
        add("Contact", contact.url ? link(contact.url, contact.name) : contact.name,
          contact.phone ? ` — tél. ${contact.phone}` : "");
      }
      const official = safeUrl(referral.url);
      return h("article", { class: "card" },
        h("p", { class: "card-partner" }, PARTNERS[referral.partner] || referral.partner),
        h("h3", {}, referral.title),
        badges,
        details,
        official ? h("a", { class: "official", href: official, target: "_blank", rel: "noopener noreferrer" },
          "Page officielle", h("span", { class: "sr-only" }, ` de l'offre ${referral.title} (nouvelle fenêtre)`), " ↗") : null);
    }

    renderFeedback(node, turn, rating) {
      const box = h("div", { class: "feedback" });
      const status = h("p", { class: "done", role: "status" });
      const up = h("button", { class: "vote vote-up", type: "button", "aria-pressed": String(rating === "up") },
        icon("up"), " Oui");
      const down = h("button", { class: "vote vote-down", type: "button", "aria-pressed": String(rating === "down"),
        "aria-expanded": "false" }, icon("down"), " Non");
      const question = h("span", { id: `${this.uid}-fb-${++counter}` }, "Cette réponse vous aide-t-elle ?");
      const row = h("div", { class: "row", role: "group", "aria-labelledby": question.id }, question, up, down);
      const name = `${this.uid}-reason-${counter}`;
      const comment = h("textarea", { rows: 2, maxlength: 1000, id: `${name}-comment` });
      const form = h("form", { hidden: true },
        h("fieldset", {},
          h("legend", {}, "Qu'est-ce qui ne va pas ?"),
          REASONS.map(([value, label], i) => h("label", {},
            h("input", { type: "radio", name, value, required: i === 0 }), label)),
          h("label", { for: `${name}-comment`, style: "display:block;margin-top:.375rem" }, "Précisez (facultatif)"),
          comment,
          h("button", { class: "btn btn-sm", type: "submit" }, "Envoyer mon avis")));
      const post = async (value, reason, text) => {
        try {
          const response = await fetch(this.url("/v1/feedback"), {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify({
              conversation_id: turn.conversation_id, message_id: turn.message_id, rating: value,
              reason: reason || null, comment: text || null,
            }),
          });
          if (!response.ok) throw await failure(response);
          up.setAttribute("aria-pressed", String(value === "up"));
          down.setAttribute("aria-pressed", String(value === "down"));
          if (!form.hidden && form.contains(this.shadowRoot.activeElement)) down.focus();
          form.hidden = true;
          down.setAttribute("aria-expanded", "false");
          status.textContent = "Merci pour votre retour.";
          return true;
        } catch (error) {
          status.textContent = "";
          this.showAlert(error instanceof HttpError && error.status === 429 ? errorText(error) : MESSAGES.feedback,
            () => post(value, reason, text));
          return false;
        }
      };
      up.addEventListener("click", () => post("up"));
      down.addEventListener("click", () => {
        form.hidden = !form.hidden;
        down.setAttribute("aria-expanded", String(!form.hidden));
        if (!form.hidden) form.querySelector("input").focus();
      });
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        const chosen = form.querySelector("input:checked");
        post("down", chosen ? chosen.value : "autre", comment.value.trim());
      });
      if (rating) status.textContent = "Merci pour votre retour.";
      box.append(row, form, status);
      node.append(box);
    }
  }

  customElements.define("aiguillage-chat", AiguillageChat);

  // One <script> tag on a host page: add the floating widget unless the page placed one itself.
  if (SCRIPT) {
    const mount = () => {
      if (document.querySelector("aiguillage-chat")) return;
      const element = document.createElement("aiguillage-chat");
      const origin = SCRIPT.src ? new URL(SCRIPT.src, location.href).origin : "";
      element.setAttribute("api", SCRIPT.dataset.api || origin);
      if (SCRIPT.dataset.insee) element.setAttribute("insee", SCRIPT.dataset.insee);
      document.body.append(element);
    };
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mount);
    else mount();
  }
})();
