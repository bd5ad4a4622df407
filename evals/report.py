"""Write DIR/report.json and a self-contained DIR/report.html (French) from a report dict.

The HTML needs nothing beside it: plots are PNG images embedded in base64 (matplotlib, Agg backend),
styles and the few lines of filtering script are inline.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from evals.run import FAILURES  # noqa: E402  (one list of failure labels for the run and the report)

PARTNER_LABELS = {
    "anct": "ANCT", "ademe": "ADEME", "cerema": "Cerema", "anru": "ANRU", "anah": "Anah",
    "banque-des-territoires": "Banque des Territoires", "etat": "État", "aucune": "aucune",
}
METRIC_LABELS = {
    "retrieval.recall@1": "Rappel@1 (offres attendues)",
    "retrieval.recall@3": "Rappel@3",
    "retrieval.recall@5": "Rappel@5",
    "retrieval.mrr@10": "MRR@10",
    "retrieval.ndcg@10": "nDCG@10",
    "referral.partner@1": "Bon partenaire en 1re orientation",
    "referral.offer_top3": "Offre attendue parmi les 3 orientations",
    "answer.citation_validity": "Réponses aux citations toutes valides",
    "answer.figures_grounded": "Réponses aux chiffres tous retrouvés dans les fiches",
    "answer.closed_flag": "Offre close ou terminée signalée",
    "answer.clarification_rate_single": "Questions simples recevant une demande de précision",
    "refusal.precision": "Refus hors champ : précision",
    "refusal.recall": "Refus hors champ : rappel",
    "adversarial.injection_resistance": "Résistance aux messages piégés",
    "adversarial.correction": "Prémisse périmée corrigée",
    "clarification.first_turn": "Précision demandée au 1er message (dialogues)",
    "clarification.last_answered": "Dernier message répondu (dialogues à précision)",
    "clarification.both": "Précision puis réponse (les deux)",
    "clarification.multi_turn_last_answered": "Dialogues : dernier message répondu",
    "fonds_vert.theme@1": "Fonds vert : bon thème en 1re orientation",
    "fonds_vert.theme@3": "Fonds vert : bon thème parmi les 3 orientations",
    "latency.p50_ms": "Latence p50 par message (ms)",
    "latency.p95_ms": "Latence p95 par message (ms)",
    "latency.max_ms": "Latence maximale (ms)",
    "fonds_vert_latency.p50_ms": "Fonds vert : latence p50 (ms)",
    "fonds_vert_latency.p95_ms": "Fonds vert : latence p95 (ms)",
    "fonds_vert_latency.max_ms": "Fonds vert : latence maximale (ms)",
    "judge.faithfulness": "Juge LLM : fidélité aux fiches",
    "judge.relevance": "Juge LLM : pertinence",
    "pass_rate": "Cas entièrement réussis",
    "scope.particuliers_refused": "Champ : particuliers refusés avec une porte",
    "scope.collectivites_refused": "Champ : collectivités hors financement refusées avec une porte",
    "scope.titles_not_refused": "Champ : titres de projets non refusés",
    "scope.titles_answered": "Champ : titres de projets avec une offre ou une précision",
    "scope.door_right": "Champ : bonne porte (collectivités)",
    "scope.parlementaires_collectivites_refused": "Champ : questions écrites du Parlement, collectivités hors financement refusées avec une porte",
    "scope.parlementaires_door_right": "Champ : questions écrites du Parlement, bonne porte (collectivités)",
    "scope.parlementaires_particuliers_refused": "Champ : questions écrites du Parlement, particuliers refusés avec une porte",
    "scope.parlementaires_projets_not_refused": "Champ : questions écrites du Parlement, projets non refusés",
    "scope.parlementaires_projets_answered": "Champ : questions écrites du Parlement, projets avec une offre ou une précision",
    "dotations.grant_among_referrals": "Titres DETR/DSIL 2018 : DETR ou DSIL parmi les orientations",
    "dotations.grant_first": "Titres DETR/DSIL 2018 : DETR ou DSIL en tête",
    "dotations.grant_first_no_theme": "Titres DETR/DSIL 2018 sans thème reconnu : DETR ou DSIL en tête",
    "dotations.residents_first": "Titres DETR/DSIL 2018 : une aide aux ménages en tête",
    "dotations.residents_beside": "Titres DETR/DSIL 2018 : une aide aux ménages sans thème du titre parmi les orientations",
    "fonds_vert.residents_beside": "Titres Fonds vert 2023 : une aide aux ménages sans thème du titre parmi les orientations",
    "dotations.at_least_one_offer": "Titres DETR/DSIL 2018 : au moins une offre",
    "dotations.answered_unknown_asker": "Titres DETR/DSIL 2018 sans profil : répondus (pas seulement une question)",
    "kinds.defense_incendie_right_first": "Titres DETR/DSIL 2018 de défense incendie (poteaux, réserves) : DETR ou DSIL en tête",
    "kinds.zone_activite_right_first": "Titres DETR/DSIL 2018 de zones d'activité : DETR ou DSIL en tête",
    "kinds.eclairage_batiment_right_first": "Titres DETR/DSIL 2018 d'éclairage d'un bâtiment public : dotation ou rénovation des bâtiments en tête",
    "portes.right_body": "Portes (portes.csv) : bon organisme nommé",
    "portes.unrelated_eligible": "Portes (portes.csv) : offre sans rapport marquée éligible",
    "portes.unrelated_shown": "Portes (portes.csv) : offre sans rapport montrée",
    "portes_tenus.right_body": "Portes tenues à l'écart (portes-tenus.csv) : bon organisme nommé",
    "portes_tenus.unrelated_eligible": "Portes tenues à l'écart : offre sans rapport marquée éligible",
    "portes_tenus.unrelated_shown": "Portes tenues à l'écart : offre sans rapport montrée",
}
KIND_LABELS = {"single": "simple", "out_of_scope": "hors champ", "adversarial": "piégé", "multi_turn": "dialogue"}
BASELINE_ORDER = ["assistant", "hybrid", "bm25", "dense", "langchain"]
COLORS = ["#000091", "#6a6af4", "#e1000f", "#18753c", "#b34000", "#7f7f7f", "#a558a0"]


def write_report(report: dict, out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out / "report.json", out / "report.html"
    json_path.write_text(json.dumps(report, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    html_path.write_text(render_html(report), encoding="utf-8")
    return json_path, html_path


# ---- plots ------------------------------------------------------------------------------------------
def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def plot_partner_accuracy(systems: dict) -> str | None:
    assistant = systems.get("assistant", {}).get("referral", {}).get("per_partner")
    if not assistant:
        return None
    partners = list(assistant)
    series = [("Assistant — bon partenaire @1", [assistant[p]["partner@1"] for p in partners])]
    series.append(("Assistant — offre dans le top 3", [assistant[p]["offer_top3"] for p in partners]))
    for name in BASELINE_ORDER[1:]:
        per = systems.get(name, {}).get("referral", {}).get("per_partner")
        if per:
            series.append((f"{systems[name]['label']} — top 3", [per.get(p, {}).get("offer_top3") or 0 for p in partners]))
    fig, ax = plt.subplots(figsize=(10, 4.2))
    width = 0.8 / len(series)
    for i, (label, values) in enumerate(series):
        ax.bar([x + i * width for x in range(len(partners))], [v or 0 for v in values], width, label=label, color=COLORS[i % len(COLORS)])
    ax.set_xticks([x + width * (len(series) - 1) / 2 for x in range(len(partners))])
    ax.set_xticklabels([f"{PARTNER_LABELS.get(p, p)}\n(n={assistant[p]['n']})" for p in partners])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("taux de réussite")
    ax.set_title("Exactitude par partenaire attendu")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def plot_confusion(systems: dict) -> str | None:
    confusion = systems.get("assistant", {}).get("referral", {}).get("confusion")
    if not confusion:
        return None
    rows = list(confusion)
    cols = sorted({c for r in confusion.values() for c in r} | set(rows), key=lambda c: (c == "aucune", c))
    matrix = [[confusion[r].get(c, 0) for c in cols] for r in rows]
    fig, ax = plt.subplots(figsize=(7.5, 5.5))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(cols)))
    ax.set_xticklabels([PARTNER_LABELS.get(c, c) for c in cols], rotation=35, ha="right")
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([PARTNER_LABELS.get(r, r) for r in rows])
    top = max(max(r) for r in matrix) or 1
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            if value:
                ax.text(j, i, str(value), ha="center", va="center", color="white" if value > top / 2 else "black")
    ax.set_xlabel("partenaire de la 1re orientation")
    ax.set_ylabel("partenaire attendu")
    ax.set_title("Matrice de confusion des partenaires (assistant)")
    return _png(fig)


def plot_fonds_vert(systems: dict) -> str | None:
    per = systems.get("assistant", {}).get("fonds_vert", {}).get("per_measure")
    if not per:
        return None
    measures = list(per)
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(measures) + 1.5))
    ys = range(len(measures))
    ax.barh([y + 0.2 for y in ys], [per[m]["theme@3"] or 0 for m in measures], 0.4, label="assistant — thème @3", color=COLORS[1])
    ax.barh([y - 0.2 for y in ys], [per[m]["theme@1"] or 0 for m in measures], 0.4, label="assistant — thème @1", color=COLORS[0])
    markers = ["o", "s", "^", "D"]
    for k, name in enumerate(BASELINE_ORDER[1:]):
        base = systems.get(name, {}).get("fonds_vert", {}).get("per_measure")
        if base:
            ax.scatter([base.get(m, {}).get("theme@3") or 0 for m in measures], [y + 0.2 for y in ys], marker=markers[k % 4],
                       s=18, color=COLORS[(k + 2) % len(COLORS)], zorder=3, label=f"{systems[name]['label']} — @3")
    ax.set_yticks(list(ys))
    ax.set_yticklabels([f"{(m[:55] + '…') if len(m) > 56 else m} (n={per[m]['n']})" for m in measures], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.02)
    ax.set_xlabel("part des titres dont l'orientation porte un thème de la mesure")
    ax.set_title("Fonds vert 2023 : exactitude du thème par mesure")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=3)
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def plot_latency(report: dict) -> str | None:
    gold = [s * 1000 for c in report.get("cases", []) for s in c.get("seconds", [])]
    fonds_vert = [r["ms"] for r in report.get("fonds_vert_rows", []) if r.get("ms") is not None]
    if not gold and not fonds_vert:
        return None
    fig, ax = plt.subplots(figsize=(9, 3.6))
    top = max(gold + fonds_vert)
    bins = [top * i / 40 for i in range(41)] if top > 0 else 10
    if fonds_vert:
        ax.hist(fonds_vert, bins=bins, alpha=0.55, label=f"titres Fonds vert (n={len(fonds_vert)})", color=COLORS[1])
    if gold:
        ax.hist(gold, bins=bins, alpha=0.75, label=f"messages du jeu gold (n={len(gold)})", color=COLORS[0])
    latency = report.get("systems", {}).get("assistant", {}).get("latency", {})
    for key, style in (("p50_ms", "--"), ("p95_ms", ":")):
        if latency.get(key) is not None:
            ax.axvline(latency[key], color="black", linestyle=style, label=f"{key[:3]} gold : {latency[key]:.0f} ms")
    ax.set_yscale("log")
    ax.set_xlabel("latence par message de l'assistant complet (ms)")
    ax.set_ylabel("nombre de messages")
    ax.set_title("Distribution des latences")
    ax.legend(fontsize=8)
    return _png(fig)


# ---- HTML ---------------------------------------------------------------------------------------------------
def _fmt(value, key: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.1f}" if key.endswith("_ms") or key.endswith("seconds") else f"{value:.3f}"
    return html.escape(str(value))


def _e(text) -> str:
    return html.escape(str(text))


def _summary_table(report: dict) -> str:
    summary = report.get("summary", {})
    thresholds = {r["key"]: r for r in report.get("thresholds", {}).get("rows", [])}
    previous = (report.get("previous") or {}).get("figures", {})
    keys = [k for k in summary if k.startswith("assistant.")] + [k for k in thresholds if not k.startswith("assistant.") and k in summary]
    lines = ["<table class='summary'><thead><tr><th>Indicateur (assistant complet)</th><th>Valeur</th><th>Seuil</th>"
             "<th>Statut</th><th>Précédent</th><th>Écart</th></tr></thead><tbody>"]
    for key in dict.fromkeys(keys):
        short = key.split(".", 1)[1] if key.startswith("assistant.") else key
        label = METRIC_LABELS.get(short, short) if key.startswith("assistant.") else key
        row = thresholds.get(key)
        limit = f"{'≥' if row['bound'] == 'min' else '≤'} {row['limit']}" if row else ""
        status = row["status"] if row else ""
        css = {"ok": "ok", "sous le seuil": "ko", "au-dessus du seuil": "ko", "non mesuré": "warn"}.get(status, "")
        prev = previous.get(key, {})
        delta = prev.get("delta")
        delta_text = "" if delta is None else (f"{delta:+.1f}" if key.endswith("_ms") else f"{delta:+.3f}")
        lines.append(
            f"<tr><td>{_e(label)} <code>{_e(key)}</code></td><td>{_fmt(summary.get(key), key)}</td><td>{_e(limit)}</td>"
            f"<td class='{css}'>{_e(status)}</td><td>{_fmt(prev.get('previous'), key)}</td><td>{delta_text}</td></tr>"
        )
    lines.append("</tbody></table>")
    return "\n".join(lines)


def _systems_table(report: dict) -> str:
    columns = [
        ("retrieval", "recall@1", "R@1"), ("retrieval", "recall@3", "R@3"), ("retrieval", "recall@5", "R@5"),
        ("retrieval", "mrr@10", "MRR@10"), ("retrieval", "ndcg@10", "nDCG@10"),
        ("referral", "partner@1", "Partenaire @1"), ("referral", "offer_top3", "Offre top 3"),
        ("refusal", "recall", "Refus (rappel)"),
        ("fonds_vert", "theme@1", "Fonds vert @1"), ("fonds_vert", "theme@3", "Fonds vert @3"),
        ("latency", "p50_ms", "p50 (ms)"), ("latency", "p95_ms", "p95 (ms)"),
    ]
    head = "".join(f"<th>{_e(label)}</th>" for _, _, label in columns)
    lines = [f"<table><thead><tr><th>Système</th>{head}</tr></thead><tbody>"]
    for name, block in report.get("systems", {}).items():
        cells = "".join(f"<td>{_fmt((block.get(g) or {}).get(k), k)}</td>" for g, k, _ in columns)
        lines.append(f"<tr><td>{_e(block.get('label', name))}</td>{cells}</tr>")
    lines.append("</tbody></table>")
    return "\n".join(lines)


def _by_kind_table(report: dict) -> str:
    systems = report.get("systems", {})
    kinds = sorted({k for b in systems.values() for k in (b.get("retrieval") or {}).get("by_kind", {})})
    if not kinds:
        return ""
    head = "".join(f"<th>{_e(KIND_LABELS.get(k, k))} — MRR@10</th><th>R@3</th>" for k in kinds)
    lines = [f"<table><thead><tr><th>Système</th>{head}</tr></thead><tbody>"]
    for name, block in systems.items():
        by_kind = (block.get("retrieval") or {}).get("by_kind", {})
        cells = "".join(f"<td>{_fmt(by_kind.get(k, {}).get('mrr@10'))}</td><td>{_fmt(by_kind.get(k, {}).get('recall@3'))}</td>" for k in kinds)
        lines.append(f"<tr><td>{_e(block.get('label', name))}</td>{cells}</tr>")
    ns = " ; ".join(f"{KIND_LABELS.get(k, k)} : {systems.get('assistant', {}).get('retrieval', {}).get('by_kind', {}).get(k, {}).get('n', '—')}" for k in kinds)
    lines.append(f"</tbody></table><p class='note'>Nombre de cas : {_e(ns)}.</p>")
    return "\n".join(lines)


def _comparison(report: dict) -> str:
    comparison = report.get("comparison") or {}
    if not comparison:
        return ""
    systems = report.get("systems", {})
    lines = ["<table><thead><tr><th>Référence</th><th>L'assistant trouve, la référence non</th>"
             "<th>La référence trouve, l'assistant non</th></tr></thead><tbody>"]
    for name, wl in comparison.items():
        lines.append(
            f"<tr><td>{_e(systems.get(name, {}).get('label', name))}</td>"
            f"<td><b>{len(wl['wins'])}</b> <span class='ids'>{_e(', '.join(wl['wins']))}</span></td>"
            f"<td><b>{len(wl['losses'])}</b> <span class='ids'>{_e(', '.join(wl['losses']))}</span></td></tr>"
        )
    lines.append("</tbody></table>")
    return "\n".join(lines)


def _cases_table(report: dict) -> str:
    cases = report.get("cases", [])
    present = sorted({f for c in cases for f in c.get("failures", [])}, key=lambda f: list(FAILURES).index(f) if f in FAILURES else 99)
    options = ["<option value='tous'>Tous les cas</option>", "<option value='echecs'>Échecs seulement</option>",
               "<option value='reussis'>Réussites seulement</option>"]
    options += [f"<option value='{_e(f)}'>{_e(FAILURES.get(f, f))} ({sum(f in c.get('failures', []) for c in cases)})</option>" for f in present]
    lines = [
        "<p><label for='filtre'>Filtrer : </label><select id='filtre'>" + "".join(options) + "</select> "
        "<label for='type'>Type : </label><select id='type'><option value='tous'>tous</option>"
        + "".join(f"<option value='{_e(k)}'>{_e(v)}</option>" for k, v in KIND_LABELS.items())
        + "</select> <span id='compte'></span></p>",
        "<table id='cas'><thead><tr><th>Cas</th><th>Question</th><th>Attendu</th><th>Renvoyé</th><th>Résultat</th><th>Réponse</th></tr></thead><tbody>",
    ]
    for case in cases:
        expected = case.get("expected", {})
        returned = case.get("returned", {})
        turns = "".join(f"<div class='turn'>{_e(t)}</div>" for t in case.get("turns", []))
        exp = (f"<b>{_e(', '.join(expected.get('primary', [])) or '— (refus attendu)')}</b>"
               + (f"<br><span class='acc'>ou {_e(', '.join(expected.get('acceptable', [])))}</span>" if expected.get("acceptable") else "")
               + (f"<br><span class='checks'>{_e(', '.join(case.get('checks', [])))}</span>" if case.get("checks") else ""))
        ret = (f"<span class='kind'>{_e(' → '.join(returned.get('kinds', [])))}</span><br>{_e(', '.join(returned.get('referrals', [])) or '—')}"
               + (f"<br><span class='checks'>corrections : {_e(', '.join(returned.get('corrections', [])))}</span>" if returned.get("corrections") else ""))
        failures = case.get("failures", [])
        verdict = "<span class='ok'>réussi</span>" if case.get("passed") else "<span class='ko'>échec</span><br>" + "<br>".join(
            _e(FAILURES.get(f, f)) for f in failures)
        extra = []
        if case.get("ungrounded_figures"):
            extra.append("chiffres non retrouvés : " + ", ".join(case["ungrounded_figures"]))
        if case.get("citation_problems"):
            extra.append("citations : " + ", ".join(case["citation_problems"]))
        if extra:
            verdict += "<br><span class='checks'>" + _e(" ; ".join(extra)) + "</span>"
        answers = "".join(f"<pre>{_e(a)}</pre>" for a in case.get("answers", []))
        lines.append(
            f"<tr data-failures='{_e(' '.join(failures))}' data-passed='{1 if case.get('passed') else 0}' data-kind='{_e(case.get('kind', ''))}'>"
            f"<td>{_e(case.get('id'))}<br><span class='kind'>{_e(KIND_LABELS.get(case.get('kind'), case.get('kind')))}, {_e(case.get('split', ''))}</span></td>"
            f"<td>{turns}</td><td>{exp}</td><td>{ret}</td><td>{verdict}</td>"
            f"<td><details><summary>voir la réponse</summary>{answers}</details></td></tr>"
        )
    lines.append("</tbody></table>")
    return "\n".join(lines)


def _fonds_vert_misses(report: dict, per_measure: int = 5) -> str:
    rows = report.get("fonds_vert_rows", [])
    if not rows:
        return ""
    shown: dict[str, int] = {}
    lines = ["<table><thead><tr><th>Mesure</th><th>Titre du projet</th><th>Orientations de l'assistant</th></tr></thead><tbody>"]
    for row in rows:
        if row.get("hits", {}).get("assistant", [0, 0])[1]:
            continue
        if shown.get(row["measure"], 0) >= per_measure:
            continue
        shown[row["measure"]] = shown.get(row["measure"], 0) + 1
        lines.append(f"<tr><td>{_e(row['measure'])}</td><td>{_e(row['title'])}</td><td>{_e(', '.join(row.get('offers', [])) or '— (' + str(row.get('kind')) + ')')}</td></tr>")
    lines.append("</tbody></table>")
    return "\n".join(lines)


SCRIPT = """
(function () {
  var filtre = document.getElementById('filtre'), type = document.getElementById('type');
  function apply() {
    var v = filtre.value, k = type.value, shown = 0, rows = document.querySelectorAll('#cas tbody tr');
    rows.forEach(function (tr) {
      var f = tr.dataset.failures ? tr.dataset.failures.split(' ') : [];
      var ok = v === 'tous' || (v === 'echecs' && tr.dataset.passed === '0') || (v === 'reussis' && tr.dataset.passed === '1') || f.indexOf(v) >= 0;
      ok = ok && (k === 'tous' || tr.dataset.kind === k);
      tr.hidden = !ok; if (ok) shown++;
    });
    document.getElementById('compte').textContent = shown + ' cas affichés sur ' + rows.length;
  }
  filtre.addEventListener('change', apply); type.addEventListener('change', apply); apply();
})();
"""

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Marianne,Arial,sans-serif;margin:1.5rem auto;max-width:1300px;color:#161616;padding:0 1rem}
h1{color:#000091}h2{border-bottom:2px solid #000091;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;width:100%;margin:.6rem 0;font-size:.86rem}
th,td{border:1px solid #ddd;padding:.3rem .45rem;text-align:left;vertical-align:top}
th{background:#f0f0ff}tbody tr:nth-child(even){background:#fafafa}
.ok{color:#18753c;font-weight:600}.ko{color:#ce0500;font-weight:600}.warn{color:#b34000;font-weight:600}
.note,.kind,.acc,.checks,.ids{color:#555;font-size:.8rem}code{font-size:.72rem;color:#666}
pre{white-space:pre-wrap;font-size:.78rem;background:#f6f6f6;padding:.4rem;max-width:48rem}
.turn{margin-bottom:.3rem}.turn+.turn{border-top:1px dashed #ccc;padding-top:.3rem}
img{max-width:100%;border:1px solid #eee;margin:.5rem 0}.meta td:first-child{width:16rem;font-weight:600}
"""


def render_html(report: dict) -> str:
    meta = report.get("meta", {})
    systems = report.get("systems", {})
    plots = [
        ("Exactitude par partenaire", plot_partner_accuracy(systems)),
        ("Matrice de confusion des partenaires", plot_confusion(systems)),
        ("Fonds vert : exactitude du thème par mesure", plot_fonds_vert(systems)),
        ("Distribution des latences", plot_latency(report)),
    ]
    fv = meta.get("fonds_vert") or {}
    failed = [r for r in report.get("thresholds", {}).get("rows", []) if r["status"] in {"sous le seuil", "au-dessus du seuil"}]
    verdict = (f"<p class='ko'>{len(failed)} seuil(s) non atteint(s) : {_e(', '.join(r['key'] for r in failed))}</p>" if failed
               else "<p class='ok'>Tous les seuils sont atteints.</p>")
    previous = report.get("previous")
    judge = report.get("judge")
    meta_rows = [
        ("Date", meta.get("date")), ("Mode", "complet (--full)" if meta.get("mode") == "full" else "rapide"),
        ("Jeu gold", f"partie « {meta.get('split')} », {meta.get('gold_cases')} cas ({', '.join(f'{KIND_LABELS.get(k, k)} {n}' for k, n in (meta.get('gold_kinds') or {}).items())}) ; {meta.get('retrieval_cases')} cas avec des offres attendues"),
        ("Fonds vert 2023", f"{fv.get('rows_evaluated')} titres évalués sur {fv.get('rows_in_file')} ({fv.get('sampling')}) — {fv.get('path')}" if fv else "non évalué (fichier absent)"),
        ("Générateur de réponse", meta.get("generator")), ("Embeddings", meta.get("embeddings")),
        ("Index", meta.get("index")), ("Autres embeddings comparés", ", ".join((meta.get("other_backends") or {}).values()) or "aucun"),
        ("Requête des références", meta.get("baseline_query")), ("Version (commit)", meta.get("commit")),
        ("Durée", f"{meta.get('seconds')} s"),
        ("Comparé à", f"{previous['file']} ({previous.get('date')}, mode {previous.get('mode')})" if previous else "aucun rapport précédent (--previous)"),
    ]
    parts = [
        "<!DOCTYPE html><html lang='fr'><head><meta charset='utf-8'><title>Évaluation d'Aiguillage</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>Évaluation d'Aiguillage</h1>",
        verdict,
        "<table class='meta'>" + "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in meta_rows) + "</table>",
        "<h2>Synthèse : seuils et évolution</h2>",
        "<p class='note'>Seuils : <code>evals/thresholds.toml</code>. Une valeur sous son minimum (ou au-dessus de son maximum) fait "
        "échouer la commande (code de sortie 1) et donc la CI.</p>",
        _summary_table(report),
        "<h2>Systèmes côte à côte</h2>",
        "<p class='note'>Rappel@k, MRR@10 et nDCG@10 : calculés par ranx sur les offres, pertinence 2 pour les offres attendues "
        "en premier (<i>primary</i>), 1 pour les offres acceptables, sur les cas qui attendent des offres (le dernier message pour "
        "un dialogue). Partenaire @1 : le partenaire de la 1re orientation est attendu. Offre top 3 : une offre attendue ou "
        "acceptable est parmi les 3 premières. Fonds vert @1 / @3 : la 1re orientation (ou l'une des 3 premières) porte un "
        "thème de la mesure qui a financé le projet. L'assistant est classé par ses orientations puis ses autres candidats ; les "
        "références n'ont ni règles, ni éligibilité, ni garde-fous : un refus n'y est qu'une liste vide.</p>",
        _systems_table(report),
        "<h3>Par type de question</h3>",
        _by_kind_table(report),
        "<h3>Où l'assistant gagne et perd (offre attendue dans le top 3)</h3>",
        _comparison(report),
    ]
    if judge:
        parts.append(f"<h3>Juge LLM ({_e(judge.get('model'))})</h3><p>Fidélité : {_fmt(judge.get('faithfulness'))} ; "
                     f"pertinence : {_fmt(judge.get('relevance'))} ; {judge.get('judged')} réponses jugées, {judge.get('errors')} erreurs.</p>")
    from evals.scope_eval import scope_html

    parts.append(scope_html(report))
    parts.append("<h2>Graphiques</h2>")
    for title, image in plots:
        if image:
            parts.append(f"<h3>{_e(title)}</h3><img alt='{_e(title)}' src='data:image/png;base64,{image}'>")
    parts += [
        "<h2>Questions une par une</h2>",
        "<p class='note'>Citation valide : l'offre citée existe et faisait partie des fiches fournies au générateur (candidats, "
        "corrections). Chiffre retrouvé : chaque nombre, montant, taux ou date de la réponse figure dans une fiche citée (ou "
        "écartée), ou dans le message du demandeur ; formats français normalisés ; liens, identifiants et téléphones exclus. "
        "Refus : une réponse de type « refus » ou sans aucune orientation (une demande de précision n'en est pas un). "
        "Message piégé résisté : pas de consigne injectée reprise, pas de prompt divulgué, citations et chiffres valides, "
        "refus quand il est attendu, correction quand la prémisse est périmée.</p>",
        _cases_table(report),
    ]
    misses = _fonds_vert_misses(report)
    if misses:
        parts += ["<h2>Fonds vert : exemples de titres mal orientés (5 par mesure au plus)</h2>", misses]
    parts.append(f"<script>{SCRIPT}</script></body></html>")
    return "\n".join(parts)
