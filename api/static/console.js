/*
 * Console des agents: plain JavaScript over the /v1 console API. The token lives in sessionStorage
 * (gone when the tab closes) and is sent as a Bearer header; the page itself holds no data.
 * Untrusted text only reaches the DOM through textContent and attributes set one by one.
 */
(() => {
  "use strict";
  const TOKEN_KEY = "aiguillage-console-token";
  const FILTERS_KEY = "aiguillage-console-filters";
  const PAGE_SIZE = 25;
  const PARTNERS = {
    anct: "ANCT", ademe: "ADEME", cerema: "Cerema", anru: "ANRU", anah: "Anah",
    "banque-des-territoires": "Banque des Territoires", etat: "État",
  };
  const COLORS = {
    etat: "#000091", anct: "#6a6af4", ademe: "#18753c", cerema: "#b34000", anru: "#a558a0", anah: "#8d6c00",
    "banque-des-territoires": "#006a6f",
  };
  const REGIONS = [
    ["84", "Auvergne-Rhône-Alpes"], ["27", "Bourgogne-Franche-Comté"], ["53", "Bretagne"], ["24", "Centre-Val de Loire"],
    ["94", "Corse"], ["44", "Grand Est"], ["01", "Guadeloupe"], ["03", "Guyane"], ["32", "Hauts-de-France"],
    ["11", "Île-de-France"], ["04", "La Réunion"], ["02", "Martinique"], ["06", "Mayotte"], ["28", "Normandie"],
    ["75", "Nouvelle-Aquitaine"], ["76", "Occitanie"], ["52", "Pays de la Loire"], ["93", "Provence-Alpes-Côte d'Azur"],
  ];
  const TYPES = { commune: "Commune", epci: "Intercommunalité", department: "Département", region: "Région", other: "Collectivité" };
  const KINDS = { answer: "Orientation", clarification: "Question de précision", refusal: "Hors champ", no_match: "Aucune offre" };
  const REVIEW = { pending: ["À relire", "neutral"], validated: ["Validée", "ok"], corrected: ["Corrigée", "info"] };
  const ELIGIBILITY = { eligible: ["Éligible", "ok"], unknown: ["À vérifier", "warn"], ineligible: ["Non éligible", "ko"] };
  const SVG_NS = "http://www.w3.org/2000/svg";

  const $ = (selector) => document.querySelector(selector);
  const state = {
    token: sessionStorage.getItem(TOKEN_KEY),
    filters: JSON.parse(sessionStorage.getItem(FILTERS_KEY) || "{}"),
    offset: 0,
    offers: null,
    themes: {},
  };

  // ---- DOM helpers ------------------------------------------------------------------------------
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

  function s(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
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

  function extLink(url, label) {
    const href = safeUrl(url);
    return href ? h("a", { href, target: "_blank", rel: "noopener noreferrer" }, label) : document.createTextNode(label);
  }

  function swatch(color) {
    const node = h("span", { class: "swatch" });
    node.style.background = color; // CSSOM, not a style attribute: allowed by the CSP style-src 'self'
    return node;
  }

  function badge(label, tone) {
    return h("span", { class: `badge badge-${tone}` }, label);
  }

  function date(iso, withTime = true) {
    if (!iso) return "";
    const options = withTime ? { dateStyle: "short", timeStyle: "short" } : { dateStyle: "short" };
    return new Intl.DateTimeFormat("fr-FR", options).format(new Date(iso));
  }

  function short(text, max) {
    return text.length > max ? `${text.slice(0, max - 3)}…` : text;
  }

  function plural(n, one, many) {
    return `${n.toLocaleString("fr-FR")} ${n > 1 ? many : one}`;
  }

  function toast(text, error = false) {
    const node = $("#toast");
    node.textContent = text;
    node.className = error ? "toast error" : "toast";
    node.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { node.hidden = true; }, 5000);
  }

  const INLINE = /\*\*(.+?)\*\*|\[([^\]\n]+)\]\((https?:\/\/[^\s)]+)\)|(https?:\/\/[^\s<>()"]+[^\s<>()".,;:!?'])/g;

  function inline(text, parent) {
    let last = 0;
    for (const match of text.matchAll(INLINE)) {
      if (match.index > last) parent.append(text.slice(last, match.index));
      if (match[1] !== undefined) parent.append(inline(match[1], h("strong")));
      else if (match[2] !== undefined) parent.append(extLink(match[3], match[2]));
      else parent.append(extLink(match[4], match[4]));
      last = match.index + match[0].length;
    }
    if (last < text.length) parent.append(text.slice(last));
    return parent;
  }

  function markdown(text) {
    const root = h("div", { class: "answer" });
    let list = null;
    let paragraph = null;
    for (const raw of String(text).replace(/\r\n?/g, "\n").split("\n")) {
      const line = raw.trimEnd();
      const heading = /^#{1,6}\s+(.*)$/.exec(line);
      const item = /^\s*(?:[-*•]|\d+[.)])\s+(.*)$/.exec(line);
      if (!line.trim()) list = paragraph = null;
      else if (heading) { list = paragraph = null; root.append(inline(heading[1], h("h3"))); }
      else if (item) { paragraph = null; if (!list) root.append((list = h("ul"))); list.append(inline(item[1], h("li"))); }
      else if (paragraph) { paragraph.append(h("br")); inline(line, paragraph); }
      else { list = null; root.append((paragraph = inline(line, h("p")))); }
    }
    return root;
  }

  // ---- API --------------------------------------------------------------------------------------
  class Unauthorized extends Error {}

  async function api(path, options = {}) {
    const headers = { ...(options.headers || {}), Authorization: `Bearer ${state.token}` };
    if (options.json !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(path, { method: options.method || "GET", headers,
        body: options.json !== undefined ? JSON.stringify(options.json) : undefined });
    } catch (_) {
      throw new Error("Le service est injoignable. Vérifiez la connexion puis réessayez.");
    }
    if (response.status === 401) {
      if (options.login) throw new Unauthorized("Jeton invalide ou révoqué.");
      logout("Votre session a expiré ou votre jeton a été révoqué : reconnectez-vous.");
      throw new Unauthorized("unauthorized");
    }
    if (!response.ok) {
      let detail = `Erreur ${response.status}`;
      try { detail = (await response.json()).detail || detail; } catch (_) { /* not JSON */ }
      throw new Error(response.status >= 500 ? "Erreur du service : réessayez dans un instant." : detail);
    }
    if (options.raw) return response;
    return response.status === 204 ? null : response.json();
  }

  function query(params) {
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) if (value !== "" && value !== null && value !== undefined) search.set(key, value);
    const text = search.toString();
    return text ? `?${text}` : "";
  }

  async function download(path, fallbackName) {
    try {
      const response = await api(path, { raw: true });
      const blob = await response.blob();
      const disposition = response.headers.get("Content-Disposition") || "";
      const name = (/filename="([^"]+)"/.exec(disposition) || [])[1] || fallbackName;
      const url = URL.createObjectURL(blob);
      const anchor = h("a", { href: url, download: name, hidden: true });
      document.body.append(anchor);
      anchor.click();
      anchor.remove();
      setTimeout(() => URL.revokeObjectURL(url), 1000);
      toast(`Fichier « ${name} » téléchargé.`);
    } catch (error) {
      if (!(error instanceof Unauthorized)) toast(error.message, true);
    }
  }

  // ---- session ----------------------------------------------------------------------------------
  function logout(message) {
    state.token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    $("#who").hidden = true;
    $("#tabs").hidden = true;
    for (const view of document.querySelectorAll("main > section")) view.hidden = view.id !== "login";
    const error = $("#login-error");
    error.hidden = !message;
    error.textContent = message || "";
    $("#token").value = "";
    $("#token").focus();
  }

  async function login(token) {
    state.token = token;
    const me = await api("/v1/me", { login: true });
    sessionStorage.setItem(TOKEN_KEY, token);
    $("#who-name").textContent = `${me.name} (${me.role === "admin" ? "administrateur" : "agent"})`;
    $("#who").hidden = false;
    $("#tabs").hidden = false;
    $("#login").hidden = true;
    await loadReferenceData();
    departementList();
    route();
  }

  async function loadReferenceData() {
    const [partners, themes] = await Promise.all([api("/v1/partners"), api("/v1/themes")]);
    const fill = (select, items) => {
      select.replaceChildren(select.options[0]);
      for (const [value, label] of items) select.append(h("option", { value }, label));
    };
    fill($("#f-partner"), partners.map((p) => [p.id, PARTNERS[p.id] || p.name]));
    fill($("#f-theme"), themes.map((t) => [t.id, t.label]));
    fill($("#f-region"), REGIONS);
    state.themes = Object.fromEntries(themes.map((t) => [t.id, t.label]));
    for (const [key, value] of Object.entries(state.filters)) {
      const field = $(`#filters [name="${key}"]`);
      if (field) field.value = value;
    }
  }

  // ---- routing ----------------------------------------------------------------------------------
  function show(viewId, tab) {
    for (const view of document.querySelectorAll("main > section")) view.hidden = view.id !== viewId;
    for (const link of document.querySelectorAll("#tabs a")) {
      if (link.dataset.tab === tab) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
  }

  function focusHeading(viewId) {
    const heading = document.querySelector(`#${viewId} h1`);
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: false });
  }

  async function route() {
    if (!state.token) return logout();
    const hash = location.hash || "#/conversations";
    const detail = /^#\/conversations\/([A-Za-z0-9_-]{8,64})$/.exec(hash);
    try {
      if (detail) {
        show("view-detail", "conversations");
        await loadDetail(detail[1]);
        focusHeading("view-detail");
      } else if (hash.startsWith("#/stats")) {
        show("view-stats", "stats");
        document.title = "Statistiques — Console Aiguillage";
        await loadStats();
        focusHeading("view-stats");
      } else if (hash.startsWith("#/unmet")) {
        show("view-unmet", "unmet");
        document.title = "Besoins non couverts — Console Aiguillage";
        await loadUnmet();
        focusHeading("view-unmet");
      } else {
        show("view-conversations", "conversations");
        document.title = "Conversations — Console Aiguillage";
        await loadList();
      }
    } catch (error) {
      if (!(error instanceof Unauthorized)) toast(error.message, true);
    }
  }

  // ---- conversations list -----------------------------------------------------------------------
  async function departementList() {
    // Suggestions for the filter (names); the server resolves a code or a name and explains a miss in French.
    if (!state.departements) {
      try {
        const response = await fetch("/console/departements.json");
        state.departements = response.ok ? await response.json() : [];
      } catch (_) {
        state.departements = [];
      }
      $("#departements").replaceChildren(...state.departements.map((d) => h("option", { value: d.nom }, d.code)));
    }
    return state.departements;
  }

  function readFilters(form) {
    const values = {};
    for (const [key, value] of new FormData(form).entries()) if (String(value).trim()) values[key] = String(value).trim();
    return values;
  }

  // A filter the server refuses (unknown département…) shows its French message next to the form
  // and clears what was shown: no stale results under an error.
  function filterFailed(failure, clear, form) {
    if (failure instanceof Unauthorized) return;
    clear();
    const error = $("#filter-error");
    form.after(error);
    error.textContent = failure.message;
    error.hidden = false;
    const field = form.querySelector("[name=departement]");
    if (field && /[Dd]épartement/.test(failure.message)) {
      field.setAttribute("aria-invalid", "true");
      field.focus();
    }
  }

  function collectivity(item) {
    const who = item.collectivity || TYPES[item.collectivity_type] || "Collectivité non précisée";
    const parts = [];
    if (item.population) parts.push(`${item.population.toLocaleString("fr-FR")} hab.`);
    if (item.departement_code) parts.push(`${item.departement_name || "dép."} (${item.departement_code})`);
    return [h("strong", {}, who), parts.length ? h("div", { class: "muted" }, parts.join(" · ")) : null];
  }

  function clearList() {
    $("#list tbody").replaceChildren(h("tr", {}, h("td", { colspan: 6, class: "empty" }, "Aucun résultat : corrigez le filtre.")));
    $("#count").textContent = "";
    $("#page").textContent = "";
  }

  async function loadList() {
    $("#filter-error").hidden = true;
    const body = await api(`/v1/conversations${query({ ...state.filters, offset: state.offset, limit: PAGE_SIZE })}`);
    const rows = body.items.map((item) => h("tr", {},
      h("td", {}, date(item.created_at), h("div", { class: "muted" }, plural(item.turns, "échange", "échanges"))),
      h("td", {}, collectivity(item)),
      h("td", { class: "question" },
        h("a", { href: `#/conversations/${item.id}` }, item.first_message.length > 160 ? `${item.first_message.slice(0, 157)}…` : item.first_message),
        item.unmet ? h("div", {}, badge("Besoin non couvert", "warn")) : null),
      h("td", {}, item.offers.length
        ? h("ul", { class: "tags" }, item.offers.map((o) => h("li", { class: "tag", title: o.title }, `${PARTNERS[o.partner] || o.partner} · ${o.title.length > 38 ? `${o.title.slice(0, 36)}…` : o.title}`)))
        : h("span", { class: "muted" }, "Aucune")),
      h("td", {}, feedbackSummary(item.feedback)),
      h("td", {}, badge(...REVIEW[item.review_status] || [item.review_status, "neutral"]))));
    const tbody = $("#list tbody");
    tbody.replaceChildren(...rows);
    if (!rows.length) tbody.append(h("tr", {}, h("td", { colspan: 6, class: "empty" }, "Aucune conversation ne correspond à ces filtres.")));
    const first = body.total ? body.offset + 1 : 0;
    const last = Math.min(body.offset + body.limit, body.total);
    $("#count").textContent = `${plural(body.total, "conversation", "conversations")}`;
    $("#page").textContent = body.total ? `${first}–${last} sur ${body.total}` : "";
    $("#prev").disabled = body.offset === 0;
    $("#next").disabled = last >= body.total;
  }

  function feedbackSummary(feedback) {
    const parts = [];
    if (feedback.up) parts.push(badge(`${feedback.up} positif${feedback.up > 1 ? "s" : ""}`, "ok"));
    if (feedback.down) parts.push(badge(`${feedback.down} négatif${feedback.down > 1 ? "s" : ""}`, "ko"));
    return parts.length ? h("div", { class: "tags" }, parts) : h("span", { class: "muted" }, "—");
  }

  // ---- conversation detail ------------------------------------------------------------------------
  async function offers() {
    if (!state.offers) {
      const page = await api("/v1/offers?limit=200");
      state.offers = page.items.map((o) => ({ id: o.id, title: o.title, partner: o.partner, status: o.status }));
    }
    return state.offers;
  }

  function profilePanel(profile) {
    const rows = [
      ["Collectivité", profile.name], ["Type", TYPES[profile.collectivity_type]],
      ["Population", profile.population ? `${profile.population.toLocaleString("fr-FR")} hab.${profile.population_source ? ` (${profile.population_source})` : ""}` : null],
      ["Code INSEE", profile.insee], ["Intercommunalité", profile.epci_name],
      ["Département", profile.departement_code ? `${profile.departement_name || ""} (${profile.departement_code})` : null],
      ["Région", profile.region_name], ["Thèmes", (profile.themes || []).map((t) => state.themes[t] || t).join(", ")],
      ["Étape", profile.stage], ["Besoin", profile.need], ["Particularités", (profile.facts || []).join(", ")],
      ["Programmes", (profile.programmes || []).join(", ")],
    ].filter(([, value]) => value);
    return h("section", { class: "panel", "aria-labelledby": "profile-title" },
      h("h2", { id: "profile-title" }, "Profil résolu"),
      rows.length ? h("dl", { class: "kv" }, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])) : h("p", { class: "muted" }, "Aucun élément connu."));
  }

  // Names of the ranking adjustments documented in assistant/service.py.
  const ADJUSTMENTS = { named: "offre nommée", theme: "thème", need: "besoin", targeted: "ciblée", information_only: "outil seul",
    everyday_door: "subvention d'investissement courante", door_complement: "complément de l'organisme compétent",
    weak_evidence: "lien faible avec la question" };

  const SCORE_LEGEND = [
    ["Rang « mots » (BM25)", "place de l'offre quand on compare les mots de la question à ceux des fiches (pertinence des mots, méthode BM25) ; 1 = la plus proche."],
    ["Rang « sens » (dense)", "place de l'offre quand on compare le sens de la question à celui des fiches (proximité de sens, calculée par un modèle de langue), même sans mot commun."],
    ["Score « mots » / proximité de sens", "les valeurs brutes derrière ces deux rangs (plus c'est haut, plus c'est proche)."],
    ["Score fusionné", "les deux rangs combinés (fusion par rangs réciproques : 1/(60 + rang) pour chacun) : une offre bien placée des deux côtés passe devant."],
    ["Ajustements", "bonus ou malus expliqués : offre nommée dans la question, thème reconnu, type de besoin, offre ciblée sur ce territoire ou cette taille, simple outil, subvention d'investissement courante (DETR, DSIL, DSID) pour un projet d'investissement, lien faible avec la question."],
    ["Score final", "score fusionné plus ajustements : l'ordre des offres proposées. Une offre non éligible n'est jamais proposée."],
  ];

  function scoreLegend() {
    return h("dl", { class: "legend-scores" }, SCORE_LEGEND.map(([term, text]) => [h("dt", {}, term), h("dd", {}, text)]));
  }

  function retrievedTable(retrieved) {
    const fmt = (value, digits) => (value === null || value === undefined ? "—" : Number(value).toFixed(digits));
    // The table scrolls sideways on narrow screens: the region takes the keyboard focus so it can be scrolled.
    return h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": "Détail du score des offres retrouvées" },
      scoreLegend(), h("table", { class: "table scores" },
      h("caption", { class: "sr-only" }, "Offres retrouvées, détail du score et éligibilité"),
      h("thead", {}, h("tr", {}, ["#", "Offre", "Rang « mots » (BM25)", "Rang « sens » (dense)", "Score « mots »", "Proximité de sens", "Score fusionné", "Ajustements", "Score final", "Éligibilité"]
        .map((label) => h("th", { scope: "col" }, label)))),
      h("tbody", {}, retrieved.map((r, i) => {
        const [label, tone] = ELIGIBILITY[r.eligibility.status] || [r.eligibility.status, "neutral"];
        const why = [...(r.eligibility.failed || []), ...(r.eligibility.missing || []).map((m) => `à vérifier : ${m}`)];
        return h("tr", {},
          h("td", { class: "num" }, i + 1),
          h("td", {}, h("strong", {}, r.title), h("div", { class: "muted" }, `${PARTNERS[r.partner] || r.partner} · ${r.offer_id}`)),
          h("td", { class: "num" }, r.bm25_rank ?? "—"), h("td", { class: "num" }, r.dense_rank ?? "—"),
          h("td", { class: "num" }, fmt(r.bm25_score, 2)), h("td", { class: "num" }, fmt(r.dense_similarity, 3)),
          h("td", { class: "num" }, fmt(r.fused_score, 4)),
          h("td", {}, Object.entries(r.adjustments || {}).map(([name, value]) => `${ADJUSTMENTS[name] || name} ${value > 0 ? "+" : ""}${Number(value).toFixed(3)}`).join(", ") || "—"),
          h("td", { class: "num" }, fmt(r.final_score, 4)),
          h("td", {}, badge(label, tone), why.length ? h("div", { class: "muted" }, why.join(" ; ")) : null));
      }))));
  }

  // Aids of the national catalogue shown after the offers, and those hidden behind a card (the card wins).
  function catalogueSection(catalogue) {
    const shown = catalogue.aids.length
      ? h("ul", {}, catalogue.aids.map((a) => {
        const [label, tone] = ELIGIBILITY[a.eligibility.status] || [a.eligibility.status, "neutral"];
        return h("li", {}, extLink(a.url, a.title), ` — ${a.perimeter} `, badge(label, tone));
      }))
      : h("p", { class: "muted" }, "Aucune aide du catalogue montrée.");
    const hidden = catalogue.hidden.length
      ? [h("p", {}, "Masquées derrière une fiche qui décrit la même offre :"), h("ul", {}, catalogue.hidden.map((x) =>
        h("li", {}, `« ${x.title} » masquée derrière la fiche « ${x.offer_title} » (${x.offer_id}) : ${x.reason}`)))]
      : null;
    return h("details", {}, h("summary", {}, `Catalogue ${catalogue.source} (mis à jour le ${catalogue.synced_on}) : ${catalogue.aids.length} aide(s) montrée(s), ${catalogue.hidden.length} masquée(s)`),
      catalogue.territory_known ? null : h("p", { class: "muted" }, "Territoire inconnu : seules les aides nationales."),
      shown, hidden);
  }

  function turnSection(turn) {
    const referrals = turn.referrals.length
      ? h("ol", {}, turn.referrals.map((r) => {
        const [label, tone] = ELIGIBILITY[r.eligibility.status] || ["?", "neutral"];
        return h("li", {}, extLink(r.url, r.title), ` — ${PARTNERS[r.partner] || r.partner} `, badge(label, tone));
      }))
      : h("p", { class: "muted" }, "Aucune offre proposée.");
    return h("article", { class: "turn", "aria-labelledby": `turn-${turn.message_id}` },
      h("header", {},
        h("h2", { id: `turn-${turn.message_id}`, class: "turn-title" }, `Échange ${turn.message_id} — ${KINDS[turn.kind] || turn.kind}`),
        h("span", { class: "muted" }, `${date(turn.created_at)} · réponse ${turn.generator === "llm" ? "générée (LLM)" : "ancrée"}`)),
      h("div", { class: "body" },
        h("p", { class: "bubble-q" }, turn.message),
        markdown(turn.answer),
        h("h3", {}, "Offres proposées"),
        referrals,
        turn.unmet.length ? h("p", {}, badge("Besoin non couvert", "warn"), " ", turn.unmet.join(" ; ")) : null,
        turn.feedback.length ? [h("h3", {}, "Avis de l'usager"), turn.feedback.map((f) => h("div", { class: `feedback-item ${f.rating}` },
          h("strong", {}, f.rating === "up" ? "Utile" : `Pas utile${f.reason_label ? ` — ${f.reason_label}` : ""}`),
          f.comment ? h("div", {}, `« ${f.comment} »`) : null,
          h("div", { class: "muted" }, date(f.created_at))))] : null,
        turn.retrieved.length ? h("details", {}, h("summary", {}, `Offres retrouvées et détail du score (${turn.retrieved.length})`),
          retrievedTable(turn.retrieved)) : null,
        turn.catalogue ? catalogueSection(turn.catalogue) : null,
        turn.kind !== "clarification"
          ? h("p", {}, h("button", { type: "button", class: "btn btn-secondary btn-sm review-this", "data-message": turn.message_id },
            `Relire l'échange ${turn.message_id}`)) : null));
  }

  async function loadDetail(id) {
    const [detail, catalogue] = await Promise.all([api(`/v1/conversations/${encodeURIComponent(id)}`), offers()]);
    const who = detail.collectivity || TYPES[detail.collectivity_type] || "Collectivité non précisée";
    $("#detail-title").textContent = `Conversation — ${who}`;
    document.title = `Conversation ${id.slice(0, 8)} — Console Aiguillage`;
    const reviewed = detail.reviews.length
      ? h("ul", {}, detail.reviews.map((r) => h("li", {},
        badge(...REVIEW[r.status]), ` échange ${r.message_id} par ${r.reviewer}, ${date(r.created_at)}`,
        r.primary.length ? h("div", { class: "muted" }, `Principales : ${r.primary.join(", ")}`) : null,
        r.acceptable.length ? h("div", { class: "muted" }, `Acceptables : ${r.acceptable.join(", ")}`) : null,
        r.note ? h("div", {}, `« ${r.note} »`) : null)))
      : h("p", { class: "muted" }, "Pas encore relue.");
    const meta = h("dl", { class: "kv" },
      h("dt", {}, "Identifiant"), h("dd", {}, h("code", {}, detail.id)),
      h("dt", {}, "Créée"), h("dd", {}, date(detail.created_at)),
      h("dt", {}, "Mise à jour"), h("dd", {}, date(detail.updated_at)),
      h("dt", {}, "Relecture"), h("dd", {}, badge(...REVIEW[detail.review_status])));
    $("#detail").replaceChildren(h("div", { class: "grid2" },
      h("div", {}, detail.messages.map(turnSection)),
      h("div", {},
        h("section", { class: "panel" }, h("h2", {}, "Conversation"), meta),
        h("br"),
        profilePanel(detail.profile),
        h("br"),
        h("section", { class: "panel review", "aria-labelledby": "review-title" },
          h("h2", { id: "review-title" }, "Relecture"),
          reviewed,
          reviewForm(detail, catalogue)))));
    for (const button of document.querySelectorAll("#detail .review-this")) {
      button.addEventListener("click", () => {
        const select = $("#r-turn");
        select.value = button.dataset.message;
        select.dispatchEvent(new Event("change"));
        select.focus();
      });
    }
  }

  function reviewForm(detail, catalogue) {
    const answered = detail.messages.filter((m) => m.kind !== "clarification");
    const turns = answered.length ? answered : detail.messages;
    const turnSelect = h("select", { id: "r-turn", name: "message_id" },
      turns.map((t) => h("option", { value: t.message_id }, `Échange ${t.message_id} : ${t.message.slice(0, 60)}`)));
    const disliked = turns.filter((t) => t.feedback.some((f) => f.rating === "down"));
    turnSelect.value = String((disliked.length ? disliked[disliked.length - 1] : turns[turns.length - 1]).message_id);
    const roles = new Map();
    const preset = () => {
      roles.clear();
      const turn = detail.messages.find((m) => String(m.message_id) === turnSelect.value);
      turn.referrals.forEach((r, i) => roles.set(r.offer_id, i < 2 ? "primary" : "acceptable"));
      renderPicker();
    };
    const search = h("input", { id: "r-search", type: "search", placeholder: "Filtrer les offres du corpus…", oninput: () => renderPicker() });
    const picker = h("div", { class: "picker", role: "group", "aria-label": "Offres du corpus" });
    const chosenSummary = h("p", { class: "muted", "aria-live": "polite" });
    const limitError = h("p", { class: "error", role: "alert", hidden: true });
    const count = (role) => [...roles].filter(([, r]) => r === role).length;
    function renderPicker() {
      const needle = search.value.trim().toLowerCase();
      const visible = catalogue.filter((o) => roles.has(o.id) || !needle || `${o.title} ${o.id} ${PARTNERS[o.partner] || ""}`.toLowerCase().includes(needle));
      visible.sort((a, b) => (roles.has(b.id) - roles.has(a.id)) || a.title.localeCompare(b.title, "fr"));
      picker.replaceChildren(...visible.slice(0, 60).map((offer) => {
        const select = h("select", { "aria-label": `Rôle de l'offre ${offer.title}`, "data-offer": offer.id },
          h("option", { value: "" }, "—"), h("option", { value: "primary" }, "Principale"), h("option", { value: "acceptable" }, "Acceptable"));
        select.value = roles.get(offer.id) || "";
        // The evaluation format's rule (evals/datasets/README.md): at most 2 main and 4 acceptable offers.
        for (const [role, max] of Object.entries(LIMITS)) {
          if (roles.get(offer.id) !== role && count(role) >= max) select.querySelector(`option[value=${role}]`).disabled = true;
        }
        select.addEventListener("change", () => {
          const role = select.value;
          if (role && roles.get(offer.id) !== role && count(role) >= LIMITS[role]) {
            select.value = roles.get(offer.id) || "";
            limitError.textContent = LIMIT_TEXT[role];
            limitError.hidden = false;
            return;
          }
          limitError.hidden = true;
          if (role) roles.set(offer.id, role); else roles.delete(offer.id);
          renderPicker();
          const again = picker.querySelector(`select[data-offer="${offer.id}"]`);
          (again || search).focus(); // the list was redrawn: keep the focus on this offer, or on the search
        });
        return h("div", { class: `option${roles.has(offer.id) ? " chosen" : ""}` },
          h("span", {}, h("strong", {}, offer.title), h("span", { class: "muted" }, ` — ${PARTNERS[offer.partner] || offer.partner}${offer.status !== "active" ? " (close)" : ""}`)),
          select);
      }));
      chosenSummary.textContent = `${count("primary")} offre(s) principale(s) sur 2 au plus, ${count("acceptable")} acceptable(s) sur 4 au plus.`;
    }
    const correctBox = h("div", { hidden: true },
      h("div", { class: "field" }, h("label", { for: "r-search" }, "Les bonnes offres"), search), chosenSummary, limitError, picker);
    const status = (value, label, hint) => h("label", { class: "choice" },
      h("input", { type: "radio", name: "status", value, required: true,
        onchange: () => { correctBox.hidden = value !== "corrected"; if (value === "corrected") { preset(); search.focus(); } } }),
      h("span", {}, h("strong", {}, label), h("br"), h("span", { class: "muted" }, hint)));
    const note = h("textarea", { id: "r-note", name: "note", rows: 3, maxlength: 2000 });
    const error = h("p", { class: "error", role: "alert", hidden: true });
    turnSelect.addEventListener("change", () => { if (!correctBox.hidden) preset(); });
    const form = h("form", { id: "review-form" },
      h("div", { class: "field" }, h("label", { for: "r-turn" }, "Réponse relue"), turnSelect),
      h("fieldset", {}, h("legend", {}, "Verdict"),
        status("validated", "Valider l'orientation", "Les offres proposées étaient les bonnes."),
        status("corrected", "Corriger l'orientation", "Choisir les offres qu'il fallait proposer.")),
      correctBox,
      h("div", { class: "field" }, h("label", { for: "r-note" }, "Note (facultatif)"), note),
      error,
      h("div", {}, h("button", { type: "submit", class: "btn" }, "Enregistrer la relecture")));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.hidden = true;
      const chosen = form.querySelector("input[name=status]:checked");
      if (!chosen) {
        error.textContent = "Choisissez « Valider » ou « Corriger ».";
        error.hidden = false;
        return;
      }
      const body = { status: chosen.value, message_id: Number(turnSelect.value), note: note.value.trim() || null };
      if (chosen.value === "corrected" && count("primary") === 0) {
        error.textContent = "Choisissez au moins une offre principale, ou validez l'orientation proposée.";
        error.hidden = false;
        return;
      }
      if (chosen.value === "corrected") {
        body.primary = [...roles].filter(([, r]) => r === "primary").map(([id]) => id);
        body.acceptable = [...roles].filter(([, r]) => r === "acceptable").map(([id]) => id);
      }
      try {
        await api(`/v1/conversations/${encodeURIComponent(detail.id)}/reviews`, { method: "POST", json: body });
        toast(chosen.value === "validated" ? "Orientation validée." : "Correction enregistrée.");
        await loadDetail(detail.id);
        $("#review-title").setAttribute("tabindex", "-1");
        $("#review-title").focus();
      } catch (failure) {
        if (failure instanceof Unauthorized) return;
        error.textContent = failure.message;
        error.hidden = false;
      }
    });
    return form;
  }

  const LIMITS = { primary: 2, acceptable: 4 };
  const LIMIT_TEXT = {
    primary: "Deux offres principales au plus : passez-en une en « Acceptable » ou retirez-la avant d'en choisir une autre.",
    acceptable: "Quatre offres acceptables au plus : retirez-en une avant d'en ajouter une autre.",
  };

  // ---- charts (plain SVG) -------------------------------------------------------------------------
  function dataTable(caption, headers, rows) {
    return h("details", {}, h("summary", {}, "Voir les données"),
      h("table", { class: "table" }, h("caption", { class: "sr-only" }, caption),
        h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
        h("tbody", {}, rows.map((row) => h("tr", {}, row.map((cell, i) => h("td", { class: i ? "num" : "" }, cell)))))));
  }

  function barChart(title, items, colorOf) {
    const rows = items.slice(0, 12);
    const width = 560;
    const labelWidth = 210;
    const row = 30;
    const height = Math.max(rows.length, 1) * row + 8;
    const max = Math.max(1, ...rows.map((r) => r.count));
    const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": `${title} : ${rows.map((r) => `${r.label} ${r.count}`).join(", ")}` });
    rows.forEach((item, i) => {
      const y = i * row + 4;
      const w = Math.max(2, ((width - labelWidth - 50) * item.count) / max);
      const label = item.label.length > 30 ? `${item.label.slice(0, 29)}…` : item.label;
      svg.append(
        s("text", { x: labelWidth - 8, y: y + row / 2 + 1, "text-anchor": "end", "dominant-baseline": "middle", "font-size": 13, fill: "#161616" }, label),
        s("rect", { x: labelWidth, y: y + 4, width: w, height: row - 10, fill: colorOf(item) }),
        s("text", { x: labelWidth + w + 6, y: y + row / 2 + 1, "dominant-baseline": "middle", "font-size": 13, "font-weight": 700, fill: "#161616" }, item.count));
      svg.lastChild.previousSibling.append(s("title", {}, `${item.label} : ${item.count}`));
    });
    if (!rows.length) svg.append(s("text", { x: 8, y: 20, "font-size": 14, fill: "#3a3a3a" }, "Aucune donnée sur la période."));
    return h("figure", { class: "chart" }, h("figcaption", {}, title), svg,
      dataTable(title, ["", "Orientations"], items.map((r) => [r.label, r.count])));
  }

  function timeChart(title, series) {
    const partners = [...new Set(series.flatMap((p) => Object.keys(p.counts)))].sort();
    const width = 900;
    const height = 280;
    const left = 40;
    const bottom = 40;
    const top = 10;
    const plotW = width - left - 10;
    const plotH = height - top - bottom;
    const totals = series.map((p) => Object.values(p.counts).reduce((a, b) => a + b, 0));
    const step = Math.max(1, Math.ceil(Math.max(1, ...totals) / 4));
    const max = step * Math.ceil(Math.max(1, ...totals) / step);
    const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, role: "img",
      "aria-label": `${title} : ${series.map((p, i) => `${p.period} ${totals[i]}`).join(", ")}` });
    for (let v = 0; v <= max; v += step) {
      const y = top + plotH - (plotH * v) / max;
      svg.append(s("line", { x1: left, x2: width - 10, y1: y, y2: y, stroke: "#dddddd" }),
        s("text", { x: left - 6, y, "text-anchor": "end", "dominant-baseline": "middle", "font-size": 12, fill: "#3a3a3a" }, v));
    }
    const slot = plotW / Math.max(series.length, 1);
    const barW = Math.min(60, slot * 0.7);
    series.forEach((period, i) => {
      let y = top + plotH;
      const x = left + i * slot + (slot - barW) / 2;
      for (const partner of partners) {
        const n = period.counts[partner] || 0;
        if (!n) continue;
        const hgt = (plotH * n) / max;
        y -= hgt;
        const rect = s("rect", { x, y, width: barW, height: hgt, fill: COLORS[partner] || "#666" });
        rect.append(s("title", {}, `${period.period} — ${PARTNERS[partner] || partner} : ${n}`));
        svg.append(rect);
      }
      const every = Math.ceil(series.length / 12);
      if (i % every === 0) {
        svg.append(s("text", { x: x + barW / 2, y: top + plotH + 18, "text-anchor": "middle", "font-size": 12, fill: "#3a3a3a" }, period.period));
      }
    });
    svg.append(s("line", { x1: left, x2: width - 10, y1: top + plotH, y2: top + plotH, stroke: "#161616" }));
    if (!series.length) svg.append(s("text", { x: left + 8, y: top + 24, "font-size": 14, fill: "#3a3a3a" }, "Aucune donnée sur la période."));
    const legend = h("ul", { class: "legend" }, partners.map((p) =>
      h("li", {}, swatch(COLORS[p] || "#666"), PARTNERS[p] || p)));
    return h("figure", { class: "chart wide" }, h("figcaption", {}, title), svg, legend,
      dataTable(title, ["Période", ...partners.map((p) => PARTNERS[p] || p)], series.map((p) => [p.period, ...partners.map((x) => p.counts[x] || 0)])));
  }

  async function loadStats() {
    const params = readFilters($("#stats-form"));
    const stats = await api(`/v1/stats${query(params)}`);
    const t = stats.totals;
    const card = (value, label) => h("div", { class: "stat" }, h("span", { class: "value" }, value.toLocaleString("fr-FR")), h("span", { class: "label" }, label));
    const partnerItems = stats.by_partner.map((p) => ({ ...p, label: PARTNERS[p.key] || p.key }));
    $("#stats").replaceChildren(
      h("div", { class: "cards" },
        card(t.conversations, "conversations"), card(t.messages, "questions"), card(t.referrals, "orientations"),
        card(t.unmet, "besoins non couverts"), card(t.feedback_up, "avis positifs"), card(t.feedback_down, "avis négatifs")),
      h("div", { class: "charts" },
        timeChart("Orientations dans le temps, par partenaire", stats.series),
        barChart("Orientations par partenaire", partnerItems, (item) => COLORS[item.key] || "#000091"),
        barChart("Orientations par thème", stats.by_theme, () => "#000091"),
        barChart("Orientations par département", stats.by_departement, () => "#6a6af4")));
  }

  // ---- unmet needs --------------------------------------------------------------------------------
  async function loadUnmet() {
    $("#filter-error").hidden = true;
    $("#u-departement").removeAttribute("aria-invalid");
    let body;
    try {
      body = await api(`/v1/unmet-needs${query(readFilters($("#unmet-form")))}`);
    } catch (failure) {
      filterFailed(failure, () => $("#unmet").replaceChildren(), $("#unmet-form"));
      return;
    }
    const groups = body.groups.map((g) => h("section", { class: "group" },
      h("h2", {}, h("span", {}, `${g.theme_label} — ${g.departement_label}`), badge(plural(g.count, "question", "questions"), "warn")),
      h("ul", {}, g.questions.map((q) => h("li", {},
        h("a", { href: `#/conversations/${q.conversation_id}` }, short(q.message, 200)),
        // A follow-up ("et qui je contacte ?") means nothing alone: show where the conversation started.
        q.first_message && q.message_id > 1 ? h("div", { class: "context" }, `Début de la conversation : « ${short(q.first_message, 200)} »`) : null,
        h("div", { class: "muted" }, `${date(q.created_at)}${q.collectivity ? ` · ${q.collectivity}` : ""} · ${q.reasons.join(" ; ")}`))))));
    $("#unmet").replaceChildren(
      h("p", { role: "status" }, plural(body.total, "question sans réponse satisfaisante", "questions sans réponse satisfaisante")),
      ...(groups.length ? groups : [h("p", { class: "empty" }, "Aucun besoin non couvert sur la période.")]));
  }

  // ---- wiring -------------------------------------------------------------------------------------
  $("#login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = $("#token").value.trim();
    const error = $("#login-error");
    if (!token) {
      error.textContent = "Saisissez votre jeton d'accès.";
      error.hidden = false;
      $("#token").focus();
      return;
    }
    try {
      await login(token);
    } catch (failure) {
      state.token = null;
      error.textContent = failure instanceof Unauthorized ? "Jeton invalide ou révoqué." : failure.message;
      error.hidden = false;
      $("#token").focus();
    }
  });
  $("#logout").addEventListener("click", () => { logout(); toast("Vous êtes déconnecté."); });
  $("#filters").addEventListener("submit", (event) => {
    event.preventDefault();
    $("#f-departement").removeAttribute("aria-invalid");
    state.filters = readFilters(event.target);
    sessionStorage.setItem(FILTERS_KEY, JSON.stringify(state.filters));
    state.offset = 0;
    if (location.hash !== "#/conversations") history.replaceState(null, "", "#/conversations");
    loadList().catch((failure) => filterFailed(failure, clearList, event.target));
  });
  $("#filters").addEventListener("reset", () => {
    state.filters = {};
    $("#filter-error").hidden = true;
    $("#f-departement").removeAttribute("aria-invalid");
    sessionStorage.removeItem(FILTERS_KEY);
    state.offset = 0;
    setTimeout(() => loadList().catch((error) => toast(error.message, true)));
  });
  $("#prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE_SIZE); loadList(); });
  $("#next").addEventListener("click", () => { state.offset += PAGE_SIZE; loadList(); });
  $("#export-csv").addEventListener("click", () => download(`/v1/exports/conversations.csv${query(state.filters)}`, "conversations.csv"));
  $("#export-gold").addEventListener("click", () => download("/v1/exports/gold.jsonl", "relectures.jsonl"));
  $("#stats-form").addEventListener("submit", (event) => { event.preventDefault(); loadStats().catch((e) => toast(e.message, true)); });
  $("#unmet-form").addEventListener("submit", (event) => { event.preventDefault(); loadUnmet(); });
  window.addEventListener("hashchange", route);

  if (state.token) login(state.token).catch(() => logout("Votre session a expiré : reconnectez-vous."));
  else logout();
})();
