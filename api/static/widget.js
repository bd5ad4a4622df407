/*
 * Aiguillage — chat widget for collectivities' websites (and the full page at /).
 *
 * Embed:  <script src="https://SERVER/widget.js" data-api="https://SERVER" data-insee="15187" defer></script>
 * adds a floating button that opens the chat panel. A page can also place
 * <aiguillage-chat mode="page" api="https://SERVER" insee="15187"></aiguillage-chat> itself;
 * mode="view" shows a shared conversation read-only (the page /conversation/<id>).
 *
 * Plain JavaScript, no build step, no dependency: a custom element with an open shadow root.
 * Isolation from the host page: sizes in px (a host's `html { font-size: 62.5% }` changes nothing),
 * every inherited property set on the inner root (a host's `* { … }` rules stop at the shadow
 * boundary), styles attached as a constructable stylesheet (works under `style-src 'self'`; no
 * style attribute is ever set from markup). Untrusted text (questions, answers, offer fields) only
 * reaches the DOM through textContent or attributes set one by one; links are restricted to http(s).
 */
(() => {
  "use strict";
  if (customElements.get("aiguillage-chat")) return;
  const SCRIPT = document.currentScript;
  // Filled in by the server that serves this file (AIGUILLAGE_CONVERSATION_RETENTION_DAYS).
  const RETENTION_DAYS = Number("__RETENTION_DAYS__") || 180;

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
    unknown: ["À vérifier", "warn"],
    ineligible: ["Non éligible", "ko"],
  };
  const EXAMPLES = [
    "Notre commune de 800 habitants veut rénover l'école : qui peut nous aider ?",
    "Quelle aide pour moderniser l'éclairage public ?",
    "Nous voulons revitaliser notre centre-bourg, par où commencer ?",
  ];
  const MESSAGES = {
    network: "Connexion au service impossible. Vérifiez votre connexion internet, puis réessayez.",
    cors: "Ce site n'est pas autorisé à utiliser l'assistant Aiguillage. Le gestionnaire du site doit demander "
      + "l'ajout de son adresse à la liste des sites autorisés. Vous pouvez poser votre question sur le site de l'assistant.",
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
    svg.setAttribute("width", "16");
    svg.setAttribute("height", "16");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    svg.setAttribute("class", "icon");
    const path = document.createElementNS(SVG_NS, "path");
    path.setAttribute("d", ICONS[name]);
    path.setAttribute("fill", "currentColor");
    svg.append(path);
    return svg;
  }

  // Colours of the State design system (DSFR); a dark palette when the visitor's system asks for it.
  const CSS = `
:host { all: initial !important; display: contents !important; }
/* In a page, the element fills its container and may shrink in it: "all: initial" above also resets
   the min-height a page gives it, and a flex item's automatic minimum is then its whole conversation,
   so a long answer pushed the question box under what follows (the page footer, at 1280×900). */
:host([mode="page"]), :host([mode="view"]) { display: block !important; height: 100% !important; min-height: 0 !important; }
.root { --blue: #000091; --blue-hover: #1212ff; --text: #161616; --muted: #3a3a3a; --bg: #ffffff;
  --line: #dddddd; --alt: #f6f6f6; --hover: #f5f5fe; --field: #eeeeee; --ok: #18753c; --warn: #b34000;
  --ko: #ce0500; --info: #0063cb; --focus: #0a76f6; --on-blue: #ffffff; --soft-blue: #e3e3fd;
  color-scheme: light; font-family: Marianne, Arial, "Helvetica Neue", system-ui, sans-serif; font-size: 16px;
  font-weight: 400; font-style: normal; line-height: 24px; color: var(--text); text-align: left;
  letter-spacing: normal; word-spacing: normal; text-transform: none; text-indent: 0; text-shadow: none;
  white-space: normal; direction: ltr; visibility: visible; cursor: auto; font-variant: normal;
  -webkit-font-smoothing: antialiased; height: 100%; }
@media (prefers-color-scheme: dark) {
  .root { --blue: #8585f6; --blue-hover: #b1b1f9; --text: #eeeeee; --muted: #cecece; --bg: #161616;
    --line: #353535; --alt: #1e1e1e; --hover: #242431; --field: #2a2a2a; --ok: #27a658; --warn: #fc5d00;
    --ko: #ff5655; --info: #518fff; --focus: #8585f6; --on-blue: #161616; --soft-blue: #26264a; color-scheme: dark; }
}
*, *::before, *::after { box-sizing: border-box; }
[hidden] { display: none !important; }
.icon { flex: none; vertical-align: -2px; }
.sr-only { position: absolute; width: 1px; height: 1px; padding: 0; margin: -1px; overflow: hidden;
  clip: rect(0 0 0 0); white-space: nowrap; border: 0; }
button, textarea, input { font: inherit; color: inherit; letter-spacing: inherit; text-transform: none; margin: 0; }
:focus-visible { outline: 2px solid var(--focus); outline-offset: 2px; }
a { color: var(--blue); text-underline-offset: 2px; }
a:hover { text-decoration-thickness: 2px; }
p, ul, ol, dl, h2, h3, h4 { margin: 0; }
.btn { display: inline-flex; align-items: center; gap: 6px; min-height: 40px; padding: 8px 16px; border: 0;
  background: var(--blue); color: var(--on-blue); font-weight: 500; font-size: 16px; line-height: 24px; cursor: pointer;
  text-align: left; border-radius: 0; }
.btn:hover { background: var(--blue-hover); }
.btn[disabled] { background: var(--field); color: var(--muted); cursor: not-allowed; }
.btn-secondary { background: var(--bg); color: var(--blue); box-shadow: inset 0 0 0 1px var(--blue); }
.btn-secondary:hover { background: var(--hover); }
.btn-sm { min-height: 32px; padding: 4px 12px; font-size: 14px; line-height: 20px; }
.btn-link { background: transparent; color: var(--blue); min-height: 32px; padding: 4px 8px; font-size: 14px;
  line-height: 20px; text-decoration: underline; text-underline-offset: 2px; }
.btn-link:hover { background: var(--hover); }
.launcher { position: fixed; right: 24px; bottom: 24px; z-index: 2147483000; border-radius: 32px;
  min-height: 52px; padding: 12px 20px; box-shadow: 0 6px 18px rgba(0,0,18,.28); }
.panel { display: flex; flex-direction: column; background: var(--bg); min-width: 0; color: var(--text); }
.floating .panel { position: fixed; right: 24px; bottom: 88px; z-index: 2147483001;
  width: min(448px, calc(100vw - 48px)); height: min(680px, calc(100vh - 112px));
  border: 1px solid var(--line); box-shadow: 0 8px 28px rgba(0,0,18,.22); }
/* Small screens, and big zoom (200 % of 1280×800 is 640×400 CSS px): the panel takes the whole
   viewport and its chrome shrinks so that the conversation keeps at least half of it. */
.floating.full .panel { inset: 0; width: 100%; height: 100%; border: 0; box-shadow: none; }
.embedded .panel { height: 100%; border: 1px solid var(--line); }
header.bar { display: flex; align-items: center; gap: 8px; padding: 8px 12px 8px 16px;
  border-bottom: 1px solid var(--line); border-top: 4px solid var(--blue); }
.brand { flex: 1; min-width: 0; }
.brand h2 { font-size: 18px; line-height: 24px; color: var(--blue); font-weight: 700; }
.brand p { font-size: 13px; line-height: 18px; color: var(--muted); }
.tools { display: flex; flex-wrap: wrap; gap: 4px; justify-content: flex-end; }
.icon-btn { background: transparent; border: 0; min-width: 40px; min-height: 40px; cursor: pointer;
  color: var(--blue); font-size: 24px; line-height: 24px; }
.icon-btn:hover { background: var(--hover); }
.log { position: relative; flex: 1; min-height: 0; overflow-y: auto; padding: 16px; display: flex; flex-direction: column;
  gap: 16px; background: var(--alt); overscroll-behavior: contain; }
.msg { max-width: 100%; min-width: 0; }
.user { align-self: flex-end; max-width: 88%; }
.user .bubble { background: var(--blue); color: var(--on-blue); padding: 8px 14px; white-space: pre-wrap;
  overflow-wrap: anywhere; }
.bot .bubble { background: var(--bg); border: 1px solid var(--line); border-left: 4px solid var(--blue);
  padding: 12px 16px; overflow-wrap: anywhere; }
.bot[aria-busy="true"] .md::after { content: "▍"; color: var(--blue); animation: blink 1s steps(2) infinite; }
@keyframes blink { 50% { opacity: 0; } }
@media (prefers-reduced-motion: reduce) {
  .bot[aria-busy="true"] .md::after { animation: none; }
  * { scroll-behavior: auto !important; transition: none !important; animation: none !important; }
}
.md > :first-child { margin-top: 0; } .md > :last-child { margin-bottom: 0; }
.md p { margin: 8px 0; } .md ul, .md ol { margin: 8px 0; padding-left: 20px; }
.md li { margin: 4px 0; }
.md h3 { font-size: 16px; line-height: 24px; margin: 16px 0 4px; color: var(--blue); }
.thinking { color: var(--muted); font-style: italic; }
.offers { margin-top: 12px; }
.catalogue { margin-top: 12px; background: var(--bg); border: 1px solid var(--line); padding: 12px 14px; overflow-wrap: anywhere; }
.catalogue h3 { font-size: 14px; font-weight: 700; margin: 0 0 4px; }
.catalogue p { margin: 4px 0; color: var(--muted); } .catalogue ul { margin: 8px 0 0; padding-left: 20px; }
.catalogue li { margin: 6px 0; }
.cards-title { font-size: 14px; font-weight: 700; margin: 0 0 8px; }
.cards { list-style: none; margin: 0; padding: 0; display: grid; gap: 12px; }
.card { background: var(--bg); border: 1px solid var(--line); border-bottom: 3px solid var(--blue); padding: 12px 14px; }
.card-partner { font-size: 12px; line-height: 16px; font-weight: 700; text-transform: uppercase; letter-spacing: .4px;
  color: var(--muted); }
.card h3 { margin: 2px 0 6px; font-size: 16px; line-height: 22px; font-weight: 700; }
.card .fit { font-size: 14px; line-height: 20px; margin: 0 0 8px; }
.badges { display: flex; flex-wrap: wrap; gap: 6px; margin: 0 0 6px; padding: 0; list-style: none; }
.badge { display: inline-block; font-size: 12px; line-height: 18px; font-weight: 700; text-transform: uppercase;
  padding: 1px 8px; border-radius: 4px; }
.badge-ok { background: #b8fec9; color: #18753c; } .badge-warn { background: #ffe9e6; color: #b34000; }
.badge-ko { background: #ffe9e9; color: #ce0500; } .badge-info { background: #e8edff; color: #0063cb; }
.next { background: var(--soft-blue); padding: 8px 12px; font-size: 14px; line-height: 20px; }
.next h4 { font-size: 14px; line-height: 20px; font-weight: 700; margin: 0 0 4px; color: var(--blue); }
.next dl { display: grid; grid-template-columns: auto 1fr; gap: 2px 8px; }
.next dt { font-weight: 700; } .next dd { margin: 0; min-width: 0; }
.card details { margin-top: 8px; font-size: 14px; line-height: 20px; }
.card summary, .more > summary { cursor: pointer; color: var(--blue); font-weight: 700; font-size: 14px; min-height: 24px; }
.card details dl { margin-top: 4px; }
.card details dt { font-weight: 700; margin-top: 6px; } .card details dd { margin: 0; }
.card details dd ol, .card details dd ul { margin: 0; padding-left: 20px; }
.more { margin-top: 8px; font-size: 14px; line-height: 20px; }
.quick { display: flex; flex-wrap: wrap; gap: 8px; margin-top: 12px; }
.actions { display: flex; flex-wrap: wrap; gap: 4px; margin-top: 8px; align-items: center; }
.actions .status { font-size: 14px; color: var(--ok); font-weight: 500; }
.feedback { margin-top: 4px; font-size: 14px; line-height: 20px; color: var(--muted); }
.feedback .row { display: flex; flex-wrap: wrap; align-items: center; gap: 8px; }
.feedback .vote { background: var(--bg); border: 1px solid var(--line); min-height: 32px; padding: 2px 10px;
  cursor: pointer; color: var(--text); font-size: 14px; }
.feedback .vote:hover { border-color: var(--blue); }
.feedback .vote[aria-pressed="true"] { background: var(--blue); color: var(--on-blue); border-color: var(--blue); }
.feedback fieldset { border: 1px solid var(--line); background: var(--bg); margin: 8px 0 0; padding: 8px 12px 12px; }
.feedback legend { font-weight: 700; color: var(--text); padding: 0 4px; }
.feedback label { display: flex; align-items: center; gap: 8px; padding: 2px 0; color: var(--text); }
.feedback label.block { display: block; margin-top: 6px; }
.feedback input[type=radio] { width: 18px; height: 18px; accent-color: var(--blue); margin: 0; }
.feedback textarea { width: 100%; margin: 6px 0 8px; padding: 6px 8px; border: 0;
  border-bottom: 2px solid var(--text); background: var(--field); resize: vertical; font-size: 14px; }
.feedback .done { color: var(--ok); font-weight: 500; }
.welcome { background: var(--bg); border: 1px solid var(--line); padding: 16px; }
.welcome p { margin: 0 0 12px; }
.welcome .examples { display: flex; flex-direction: column; gap: 8px; }
.welcome .examples .btn { justify-content: flex-start; font-weight: 400; font-size: 14px; line-height: 20px; }
.privacy { font-size: 13px; line-height: 18px; color: var(--muted); border-left: 3px solid var(--info);
  padding: 4px 0 4px 10px; margin: 12px 0 0 !important; }
.alert, .confirm { margin: 0 16px 8px; padding: 10px 12px; border: 1px solid var(--ko); border-left-width: 4px;
  background: var(--bg); color: var(--text); display: flex; flex-wrap: wrap; gap: 8px; align-items: center;
  font-size: 14px; line-height: 20px; }
.confirm { border-color: var(--blue); margin-top: 8px; }
.alert p, .confirm p { margin: 0; flex: 1 1 192px; }
form.composer { display: flex; gap: 8px; align-items: flex-end; padding: 12px 16px 4px; }
.field { flex: 1; min-width: 0; }
.field label { display: block; font-size: 14px; line-height: 20px; margin-bottom: 4px; }
.field textarea { display: block; width: 100%; min-height: 44px; max-height: 144px; padding: 8px 12px;
  border: 0; border-bottom: 2px solid var(--text); border-radius: 4px 4px 0 0; background: var(--field);
  resize: none; font-size: 16px; line-height: 24px; }
.legal { padding: 4px 16px 10px; font-size: 12px; line-height: 16px; color: var(--muted); }
.compact header.bar { padding: 4px 4px 4px 12px; border-top-width: 3px; }
.compact .brand h2 { font-size: 16px; }
.compact .brand p, .compact .wide-only, .compact .field label, .compact .send-label { display: none; }
.compact .log { padding: 10px 8px; gap: 12px; }
.compact form.composer { padding: 6px 8px 4px; }
.compact .legal { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
.compact form.composer { padding-bottom: 8px; }
.compact .field textarea { min-height: 40px; }
.compact .user { max-width: 94%; }
.compact .bot .bubble { padding: 10px 12px; }
.compact .card { padding: 10px 12px; }
.compact .alert, .compact .confirm { margin: 0 8px 6px; }
.view-only form.composer, .view-only .legal, .view-only .feedback { display: none; }
@media print {
  .root { height: auto; color: #000; }
  .launcher, form.composer, .legal, .tools, .alert, .confirm, .feedback, .quick, .actions, .welcome,
  .icon-btn { display: none !important; }
  .panel, .floating .panel, .floating.full .panel, .embedded .panel { position: static !important; height: auto !important;
    width: auto !important; border: 0 !important; box-shadow: none !important; background: #fff; }
  .log { overflow: visible !important; background: #fff; padding: 0; }
  .user .bubble { background: #fff !important; color: #000 !important; border: 1px solid #000; font-weight: 700; }
  .card, .bot .bubble { break-inside: avoid; }
  a { color: #000; }
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

  function link(url, label, hint) {
    const href = safeUrl(url);
    if (!href) return document.createTextNode(label);
    return h("a", { href, target: "_blank", rel: "noopener noreferrer" }, label,
      h("span", { class: "sr-only" }, hint || " (nouvelle fenêtre)"));
  }

  function stylesheet(root) {
    // A constructable stylesheet is not an inline style: a host's CSP `style-src 'self'` allows it.
    if ("adoptedStyleSheets" in Document.prototype && "replaceSync" in CSSStyleSheet.prototype) {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      root.adoptedStyleSheets = [sheet];
    } else {
      root.append(h("style", { text: CSS }));
    }
  }

  // ---- the markdown subset of the answers: ### headings, **bold**, - lists, [label](url) links ---
  // Text typed by the user comes back escaped (README, « Contrat du champ answer ») : « \X » is the
  // character X, never markup, and « \:// » is « :// », never a link.
  const INLINE = /\\([\\`*_[\]<>])|\\(:\/\/)|\*\*(.+?)\*\*|\[([^\]\n]+)\]\((https?:\/\/[^\s)]+)\)|(https?:\/\/[^\s<>()"\\]+[^\s<>()".,;:!?'\\])/g;

  function inline(text, parent) {
    let last = 0;
    for (const match of text.matchAll(INLINE)) {
      if (match.index > last) parent.append(text.slice(last, match.index));
      if (match[1] !== undefined || match[2] !== undefined) parent.append(match[1] || match[2]);
      else if (match[3] !== undefined) {
        const strong = h("strong");
        inline(match[3], strong);
        parent.append(strong);
      } else if (match[4] !== undefined) parent.append(link(match[5], match[4]));
      else parent.append(link(match[6], match[6]));
      last = match.index + match[0].length;
    }
    if (last < text.length) parent.append(text.slice(last));
    return parent;
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

  // The answer's first lines say what to do; the per-offer sections ("### ") repeat what the cards
  // show, so they are folded one tap away (and unfolded for printing).
  // The catalogue's aids (« Autres aides recensées sur votre territoire ») come after the offers' cards.
  const CATALOGUE_HEADING = /^### Autres aides recensées sur votre territoire$/m;
  function splitCatalogue(text) {
    const source = String(text);
    const at = source.search(CATALOGUE_HEADING);
    return at < 0 ? [source, ""] : [source.slice(0, at).trimEnd(), source.slice(at)];
  }

  function renderAnswer(text, into) {
    const source = splitCatalogue(text)[0];
    const split = source.search(/^### /m);
    const wasOpen = Boolean(into.querySelector("details.more[open]"));
    if (split <= 0) {
      renderMarkdown(source, into);
      return;
    }
    renderMarkdown(source.slice(0, split), into);
    const body = h("div");
    renderMarkdown(source.slice(split), body);
    into.append(h("details", { class: "more", open: wasOpen }, h("summary", {}, "Texte complet de la réponse"), body));
  }

  function leadText(text) {
    const source = String(text);
    const split = source.search(/^### /m);
    const lead = split > 0 ? source.slice(0, split) : source;
    return lead.replace(/\[([^\]\n]+)\]\((https?:\/\/[^\s)]+)\)/g, "$1").replace(/\*\*|^#+\s*/gm, "")
      .replace(/\\([\\`*_[\]<>]|:\/\/)/g, "$1").replace(/\s+/g, " ").trim();
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
    if (error && error.cors) return MESSAGES.cors;
    return MESSAGES.network;
  }

  const FOCUSABLE = "a[href], button:not([disabled]), textarea:not([disabled]), input:not([disabled]), select, summary, [tabindex='0']";
  let counter = 0;

  class AiguillageChat extends HTMLElement {
    connectedCallback() {
      if (this.shadowRoot) return;
      this.uid = `aig${++counter}`;
      this.mode = ["page", "view"].includes(this.getAttribute("mode")) ? this.getAttribute("mode") : "floating";
      this.page = this.mode !== "floating";
      this.api = (this.getAttribute("api") || "").replace(/\/+$/, "");
      // Sent as the host page writes it (the API's 20-character bound): a code naming no commune gets the
      // server's notice in the answer instead of being dropped here without a word.
      this.insee = (this.getAttribute("insee") || "").trim().toUpperCase().slice(0, 20) || null;
      this.storageKey = `aiguillage:${this.api || location.origin}:conversation`;
      if (this.mode === "view") {
        const shared = this.getAttribute("conversation") || location.pathname.split("/").filter(Boolean).pop() || "";
        this.conversation = /^[A-Za-z0-9_-]{8,64}$/.test(shared) ? shared : null;
      } else {
        this.conversation = this.load(this.storageKey);
      }
      this.busy = false;
      this.controller = null;
      this.shownOffers = null; // offer ids of the last cards shown: a follow-up does not repeat them
      this.build();
      if (this.conversation) this.restore();
      else if (this.mode === "view") this.log.append(h("p", { class: "thinking" }, "Lien de conversation invalide."));
      else this.welcome();
    }

    disconnectedCallback() {
      if (this.controller) this.controller.abort();
      if (this.media) this.media.forEach(([query, listener]) => query.removeEventListener("change", listener));
      window.removeEventListener("beforeprint", this.beforePrint);
      window.removeEventListener("afterprint", this.afterPrint);
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
      stylesheet(root);
      const id = (name) => `${this.uid}-${name}`;
      this.input = h("textarea", {
        id: id("q"), rows: 1, maxlength: 2000, autocomplete: "off",
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
      this.sendButton = h("button", { class: "btn", type: "submit", "aria-label": "Envoyer la question" },
        icon("send"), this.sendLabel);
      this.form = h("form", { class: "composer", onsubmit: (event) => { event.preventDefault(); this.submit(); } },
        h("div", { class: "field" },
          h("label", { for: id("q") }, "Votre question"),
          this.input),
        this.sendButton);
      // The conversation is not a live region: only the finished answer is announced, once (this.live).
      this.log = h("div", { class: "log", role: "region", "aria-label": "Conversation", tabindex: "0" });
      this.live = h("div", { class: "sr-only", role: "status", "aria-live": "polite", "aria-atomic": "true" });
      for (const type of ["wheel", "touchmove", "keydown"]) {
        this.log.addEventListener(type, () => { if (this.busy) this.userScrolled = true; }, { passive: true });
      }
      this.alertText = h("p");
      this.retryButton = h("button", { class: "btn btn-sm", type: "button", onclick: () => this.retry() }, "Réessayer");
      this.alert = h("div", { class: "alert", role: "alert", hidden: true }, this.alertText, this.retryButton);
      this.confirmBox = h("div", { class: "confirm", role: "alertdialog", "aria-labelledby": id("confirm"), hidden: true },
        h("p", { id: id("confirm") }, "Effacer cette conversation ? Elle ne sera plus affichée ici."),
        h("button", { class: "btn btn-sm", type: "button", onclick: () => this.reset() }, "Effacer"),
        h("button", { class: "btn btn-secondary btn-sm", type: "button", onclick: () => this.cancelReset() }, "Annuler"));
      this.newButton = h("button", { class: "btn btn-secondary btn-sm", type: "button", onclick: () => this.askReset() },
        "Nouvelle conversation");
      const tools = h("div", { class: "tools" });
      if (this.mode !== "view") tools.append(this.newButton);
      if (this.mode === "floating") {
        tools.append(h("button", { class: "icon-btn", type: "button", "aria-label": "Fermer l'assistant",
          title: "Fermer", onclick: () => this.close() }, "×"));
      }
      const title = this.mode === "floating" ? "Aiguillage" : this.mode === "view" ? "Conversation partagée" : "Conversation";
      this.panel = h("section", {
        class: "panel", id: id("panel"), "aria-labelledby": id("title"),
        role: this.mode === "floating" ? "dialog" : "region", hidden: this.mode === "floating",
        onkeydown: (event) => this.panelKey(event),
      },
      h("header", { class: "bar" },
        h("div", { class: "brand" },
          h("h2", { id: id("title") }, title),
          this.mode === "floating" ? h("p", {}, "Le bon partenaire pour le projet de votre collectivité") : null),
        tools),
      this.log,
      this.confirmBox,
      this.alert,
      this.form,
      h("p", { class: "legal", id: id("help") },
        "Réponses tirées des fiches officielles des offres : faites confirmer montants et conditions. ",
        h("span", { class: "wide-only" }, "Entrée pour envoyer, Maj+Entrée pour aller à la ligne.")));
      this.rootNode = h("div", { class: `root ${this.mode === "floating" ? "floating" : "embedded"}${this.mode === "view" ? " view-only" : ""}` });
      if (this.mode === "floating") {
        this.launcher = h("button", {
          class: "btn launcher", type: "button", "aria-expanded": "false", "aria-controls": id("panel"),
          onclick: () => (this.panel.hidden ? this.open() : this.close()),
        }, icon("chat"), "Trouver une aide");
        this.rootNode.append(this.launcher);
      }
      this.rootNode.append(this.panel, this.live);
      root.append(this.rootNode);
      this.watchViewport();
      this.beforePrint = () => {
        this.printOpened = [...root.querySelectorAll("details:not([open])")];
        this.printOpened.forEach((d) => { d.open = true; });
      };
      this.afterPrint = () => { (this.printOpened || []).forEach((d) => { d.open = false; }); };
      window.addEventListener("beforeprint", this.beforePrint);
      window.addEventListener("afterprint", this.afterPrint);
    }

    // Full screen (floating panel) and compact chrome follow the viewport in CSS px, so page zoom counts.
    watchViewport() {
      const full = window.matchMedia("(max-width: 480px), (max-height: 560px)");
      const compact = window.matchMedia("(max-width: 480px), (max-height: 720px)");
      const apply = () => {
        this.rootNode.classList.toggle("full", full.matches);
        this.rootNode.classList.toggle("compact", compact.matches);
        if (this.mode === "floating") this.panel.setAttribute("aria-modal", String(full.matches));
      };
      apply();
      this.media = [[full, apply], [compact, apply]];
      this.media.forEach(([query, listener]) => query.addEventListener("change", listener));
    }

    isModal() {
      return this.mode === "floating" && !this.panel.hidden && this.rootNode.classList.contains("full");
    }

    panelKey(event) {
      if (event.key === "Escape" && this.mode === "floating") {
        event.stopPropagation();
        this.close();
        return;
      }
      // Full screen hides the host page: Tab cycles inside the panel (RGAA 12.8).
      if (event.key !== "Tab" || !this.isModal()) return;
      const items = [...this.panel.querySelectorAll(FOCUSABLE)].filter((node) => node.getClientRects().length);
      if (!items.length) return;
      const first = items[0];
      const last = items[items.length - 1];
      const active = this.shadowRoot.activeElement;
      if (event.shiftKey && (active === first || !this.panel.contains(active))) {
        event.preventDefault();
        last.focus();
      } else if (!event.shiftKey && active === last) {
        event.preventDefault();
        first.focus();
      }
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
        h("div", { class: "examples" }, examples),
        h("p", { class: "privacy" },
          `Vos questions et les réponses sont conservées ${RETENTION_DAYS} jours et peuvent être lues par des agents `,
          "de l'ANCT pour améliorer le service. N'y indiquez pas de données personnelles. ",
          link(this.url("/donnees-personnelles"), "Données personnelles"))));
    }

    askReset() {
      if (!this.log.querySelector(".bot")) {
        this.reset();
        return;
      }
      this.confirmBox.hidden = false;
      this.confirmBox.querySelector(".btn-secondary").focus();
    }

    cancelReset() {
      this.confirmBox.hidden = true;
      this.newButton.focus();
    }

    reset() {
      if (this.controller) this.controller.abort();
      this.confirmBox.hidden = true;
      this.conversation = null;
      this.shownOffers = null;
      this.save(this.storageKey, null);
      this.log.replaceChildren();
      this.live.textContent = "";
      this.hideAlert();
      this.setBusy(false);
      this.welcome();
      this.input.value = "";
      this.input.focus();
    }

    async restore() {
      const id = this.conversation;
      this.log.replaceChildren(h("p", { class: "thinking" }, "Reprise de la conversation…"));
      let body;
      try {
        const response = await fetch(this.url(`/v1/conversations/${encodeURIComponent(id)}/public`));
        if (response.status === 404) {
          this.log.replaceChildren();
          if (this.mode === "view") {
            this.log.append(h("p", {}, "Cette conversation n'existe plus (elle a pu être effacée après le délai de conservation)."));
            return;
          }
          this.conversation = null;
          this.save(this.storageKey, null);
          this.welcome();
          return;
        }
        if (!response.ok) throw await failure(response);
        body = await response.json();
      } catch (error) {
        this.log.replaceChildren();
        if (this.mode !== "view") this.welcome();
        this.showAlert(`${MESSAGES.restore} ${errorText(await this.diagnose(error))}`, () => this.restore());
        return;
      }
      this.log.replaceChildren();
      body.messages.forEach((message, index) => {
        this.addUser(message.message);
        const bot = this.addBot();
        renderAnswer(message.answer, bot.content);
        const last = index === body.messages.length - 1;
        // Quick replies are stored with the turn: offer them again only if still unanswered.
        const clarification = last && this.mode !== "view" ? message.clarification : null;
        this.finish(bot, { ...message, conversation_id: id, clarification }, message.feedback);
      });
      if (!body.messages.length && this.mode !== "view") this.welcome();
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
      // The accessible name must contain the visible text (WCAG 2.5.3, axe label-content-name-mismatch).
      this.sendButton.setAttribute("aria-label", busy ? "Envoi… de la question en cours" : "Envoyer la question");
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

    // A failed fetch says nothing about why. If the server answers a no-cors request, it is up and
    // the browser refused to give this page its answer: the site is not in AIGUILLAGE_CORS_ORIGINS.
    async diagnose(error) {
      if (!(error instanceof TypeError) || !this.api || new URL(this.url("/"), location.href).origin === location.origin) return error;
      try {
        await fetch(this.url("/healthz"), { mode: "no-cors", cache: "no-store" });
        return Object.assign(error, { cors: true });
      } catch (_) {
        return error;
      }
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
      this.confirmBox.hidden = true;
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
      const body = { message, format: "markdown" };
      if (this.conversation) body.conversation_id = this.conversation;
      if (this.insee) body.insee = this.insee;
      let text = "";
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
          throw await this.diagnose(error);
        }
        if (response.status === 404 && body.conversation_id) {
          // The server no longer knows this conversation (retention period, purge): start a new one.
          this.conversation = null;
          this.save(this.storageKey, null);
          delete body.conversation_id;
          response = await fetch(this.url("/v1/chat/stream"), {
            method: "POST",
            headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
            body: JSON.stringify(body),
            signal: controller.signal,
          });
        }
        if (!response.ok) throw await failure(response);
        for await (const { event, data } of readEvents(response)) {
          if (event === "meta") {
            this.adopt(data.conversation_id);
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
        this.showAlert(errorText(error), error.cors ? null : () => this.submit());
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
      const cards = this.finish(bot, final, null);
      this.announce(final, cards);
      this.reveal(userNode);
    }

    // One polite announcement per answer, when it is complete: its first lines, not the whole log.
    announce(turn, cards) {
      let text = leadText(turn.answer);
      if (text.length > 400) text = `${text.slice(0, 397).replace(/\s+\S*$/, "")}…`;
      if (cards) text += ` ${cards} ${cards > 1 ? "fiches d'offres suivent" : "fiche d'offre suit"}.`;
      this.live.textContent = "";
      setTimeout(() => { this.live.textContent = `Réponse de l'assistant : ${text}`; }, 50);
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
      let cards = 0;
      const referrals = turn.referrals || [];
      const ids = referrals.map((r) => r.offer_id).join(" ");
      // A follow-up about the same offers refers to them (links in the text) instead of repeating the cards.
      if (referrals.length && !turn.follow_up && ids !== this.shownOffers) {
        this.renderCards(bot.node, referrals);
        cards = referrals.length;
      }
      if (referrals.length) this.shownOffers = ids;
      const catalogue = splitCatalogue(turn.answer || "")[1];
      if (catalogue) bot.node.append(renderMarkdown(catalogue, h("section", { class: "catalogue" })));
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
      if (turn.kind !== "clarification" && this.mode !== "view") {
        this.renderActions(bot.node, turn);
        this.renderFeedback(bot.node, turn, rating);
      }
      return cards;
    }

    renderCards(node, referrals) {
      const titleId = `${this.uid}-cards-${++counter}`;
      const list = h("ul", { class: "cards", "aria-labelledby": titleId });
      for (const referral of referrals) list.append(h("li", {}, this.card(referral)));
      const section = h("section", { class: "offers", "aria-labelledby": titleId },
        h("h3", { class: "cards-title", id: titleId }, referrals.length > 1 ? `Les ${referrals.length} offres proposées` : "L'offre proposée"),
        list);
      node.append(section);
    }

    card(referral) {
      const eligibility = referral.eligibility || { status: "unknown", met: [], failed: [], missing: [] };
      const [label, tone] = ELIGIBILITY[eligibility.status] || ELIGIBILITY.unknown;
      const badges = h("ul", { class: "badges", "aria-label": "Statut" }, h("li", { class: `badge badge-${tone}` }, label));
      if (eligibility.free === true) badges.append(h("li", { class: "badge badge-info" }, "Gratuit pour vous"));
      if (referral.status === "closed") badges.append(h("li", { class: "badge badge-ko" }, "Offre close"));
      if (referral.status === "historic") badges.append(h("li", { class: "badge badge-ko" }, "Programme terminé"));
      const missing = (eligibility.missing || []).length ? `À vérifier : ${eligibility.missing.join(", ")}.` : null;
      const fit = eligibility.status === "ineligible" ? `${eligibility.failed.join(" ; ")}.` : missing;

      // « Prochaine étape »: who, how, the official page — the one block a mayor needs.
      const contact = referral.contact || {};
      const who = [contact.name || referral.entry_point || "Interlocuteur indiqué sur la page officielle"];
      if (contact.phone) who.push(" — tél. ", h("a", { href: `tel:${String(contact.phone).replace(/[^\d+]/g, "")}` }, contact.phone));
      if (contact.email) who.push(" — ", h("a", { href: `mailto:${contact.email}` }, contact.email));
      if (contact.url) who.push(" — ", link(contact.url, "site de l'interlocuteur", ` : ${contact.name || ""} (nouvelle fenêtre)`));
      if (contact.note) who.push(h("br"), contact.note);
      const steps = referral.how_to_start || [];
      const next = h("div", { class: "next" },
        h("h4", {}, "Prochaine étape"),
        h("dl", {},
          h("dt", {}, "Qui"), h("dd", {}, ...who),
          steps.length ? [h("dt", {}, "Comment"), h("dd", {}, steps[0])] : null,
          safeUrl(referral.url) ? [h("dt", {}, "Page"), h("dd", {}, link(referral.url, "Page officielle de l'offre", ` ${referral.title} (nouvelle fenêtre)`))] : null));

      const detail = h("dl");
      const add = (term, ...value) => detail.append(h("dt", {}, term), h("dd", {}, ...value));
      if (referral.summary) add("En résumé", referral.summary);
      if (referral.reasons && referral.reasons.length) add("Pourquoi elle vous correspond", referral.reasons.join(" ; "));
      const met = eligibility.met || [];
      if (met.length) add("Conditions remplies", met.join(" ; "));
      if ((referral.figures || []).length) {
        add("Montants et repères", h("ul", {}, referral.figures.map((f) =>
          h("li", {}, `${f.label} : ${f.value}${f.to_confirm && !/confirmer/.test(f.value) ? " (à confirmer)" : ""}`))));
      }
      if (steps.length > 1) add("Toutes les étapes", h("ol", {}, steps.map((step) => h("li", {}, step))));
      if (referral.entry_point && referral.entry_point !== contact.name) add("Porte d'entrée", referral.entry_point);
      if (referral.status_note) add("À savoir", referral.status_note);
      return h("article", { class: "card", "data-offer": referral.offer_id },
        h("p", { class: "card-partner" }, PARTNERS[referral.partner] || referral.partner),
        h("h3", {}, referral.title),
        badges,
        fit ? h("p", { class: "fit" }, fit) : null,
        next,
        detail.children.length ? h("details", {}, h("summary", {}, "Détail : montants, conditions, étapes"), detail) : null);
    }

    plainAnswer(node) {
      // What « Copier » puts on the clipboard: the answer's text and every card, links spelt out.
      const lines = [];
      const walk = (el) => {
        for (const child of el.childNodes) {
          if (child.nodeType === Node.TEXT_NODE) lines.push(child.textContent);
          else if (child.matches(".sr-only, .actions, .feedback, .quick, summary")) continue;
          else if (child.matches("a[href^='http']")) lines.push(`${child.textContent.replace(/\s*\(nouvelle fenêtre\)$/, "")} (${child.href})`);
          else {
            if (child.matches("p, li, h3, h4, dt, div, article, section, br, ul, ol, dl")) lines.push("\n");
            walk(child);
            if (child.matches("dt")) lines.push(" :");
          }
        }
      };
      const clone = node.cloneNode(true);
      clone.querySelectorAll("details").forEach((d) => d.setAttribute("open", ""));
      walk(clone);
      return lines.join("").replace(/[ \t]+/g, " ").replace(/ *\n */g, "\n").replace(/\n{2,}/g, "\n").trim();
    }

    renderActions(node, turn) {
      const status = h("span", { class: "status", role: "status" });
      const copy = h("button", { class: "btn-link", type: "button", onclick: async () => {
        try {
          await navigator.clipboard.writeText(this.plainAnswer(node));
          status.textContent = "Réponse copiée.";
        } catch (_) {
          status.textContent = "La copie n'est pas permise par ce navigateur : sélectionnez le texte.";
        }
      } }, "Copier la réponse");
      const print = h("button", { class: "btn-link", type: "button", onclick: () => window.print() }, "Imprimer");
      const share = h("button", { class: "btn-link", type: "button", onclick: async () => {
        const address = new URL(this.url(`/conversation/${encodeURIComponent(turn.conversation_id || this.conversation)}`), location.href).href;
        try {
          await navigator.clipboard.writeText(address);
          status.textContent = "Lien de partage copié : toute personne qui l'a peut lire cette conversation.";
        } catch (_) {
          status.textContent = `Lien de partage : ${address}`;
        }
      } }, "Partager");
      node.append(h("div", { class: "actions", role: "group", "aria-label": "Garder la réponse" }, copy, print, share, status));
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
          h("label", { for: `${name}-comment`, class: "block" }, "Précisez (facultatif)"),
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
