"""The gate's outputs: a Markdown summary (for ``$GITHUB_STEP_SUMMARY``), JUnit XML (GitLab, Jenkins,
Azure read one testcase per metric) and the rich terminal table. Pure functions of the gate record."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from rich.table import Table

from edgebench.results.escape import md_code, md_text

ICON = {"regression": "❌", "improvement": "🚀", "no change": "✅", "inconclusive": "⚠️"}
HEADLINE = {"regression": "REGRESSION", "improvement": "IMPROVEMENT (pass)", "no change": "PASS (no change)",
            "inconclusive": "INCONCLUSIVE: run more rounds"}


def _num(v, spec: str = ".3f") -> str:
    return "–" if v is None else format(v, spec)


def _ci(m: dict) -> str:
    ci = m.get("ci")
    return "–" if not ci else f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def _ratio(m: dict) -> str:
    if m["kind"] == "budget":
        return f"limit {m['limit']:g}"
    return "–" if m.get("ratio") is None else f"x{m['ratio']:.3f}"


def _value(m: dict, key: str) -> str:
    v = m.get(key)
    return "–" if v is None else f"{v:.4g} {m.get('unit', '')}".strip()


def noise_lines(record: dict) -> list[str]:
    """One line per round of what the measurement saw (slow phases, competing load, ratio spread)."""
    out = []
    for i, n in enumerate(record.get("noise") or [], 1):
        if "group_ratio_cv" in n:
            slow = [side for side, s in zip(("baseline", "candidate"), n["slow_phase"]) if s]
            out.append(f"round {i}: group-ratio CV {_num(n['group_ratio_cv'], '.1%') if n['group_ratio_cv'] else '–'}"
                       f", other processes {_num(n.get('other_share'), '.0%')} of the cores"
                       + (" (contended)" if n["contended"] else "")
                       + (f", slow phase in {' and '.join(slow)}" if slow else "")
                       + (", candidate loaded first" if n["b_first"] else ""))
        else:
            out.append(f"round {i}: {n.get('stability')}" + (f" ({'; '.join(n['seen'])})" if n.get("seen") else ""))
    return out


def markdown(record: dict) -> str:
    """Verdict first; the metrics table (ratio, CI, verdict); host fingerprint, rounds and noise."""
    v = record["verdict"]["overall"]
    src = record["sources"]
    lines = [f"## {ICON[v]} edgebench gate: {HEADLINE[v]}", ""]
    if record.get("other_host"):
        lines += ["> [!WARNING]", ("> **Compared against history from ANOTHER HOST** (`--allow-other-host`): "
                                   "the ratio mixes hardware and code changes."), ""]
    what = md_code(src["candidate"]["given"])  # the user's path or name: a code span no backtick ends
    if "baseline" in src:
        what += f" vs baseline {md_code(src['baseline']['given'])}"
    elif record["mode"] == "history":
        what += f" vs the last {record['options']['last']} history records"
    runtime = f"{record['runtime']['name']} {record['runtime'].get('version') or ''}"
    lines += [(f"{what} on **{md_text(runtime)}**, "
               f"{record['precision']}, batch {record['batch']}, {record['threads']} threads; "
               f"threshold ±{record['options']['threshold']:.0%}; exit code {record['verdict']['exit_code']}."), "",
              "| metric | baseline | candidate | ratio | 95% CI | verdict |", "|---|---|---|---|---|---|"]
    for m in record["metrics"]:
        verdict = f"{ICON[m['verdict']]} {m['verdict']}" + ("" if m.get("gated", True) else " (not gated)")
        lines.append(f"| {md_text(m['metric'])} | {_value(m, 'baseline')} | {_value(m, 'candidate')} | "
                     f"{_ratio(m)} | {_ci(m)} | {verdict} |")
    lines += ["", "**Why:**", ""] + [f"- {md_text(m['metric'])}: {md_text(m['reason'])}" for m in record["metrics"]]
    stat = next((m.get("statistic") for m in record["metrics"] if m.get("statistic")), None)
    rounds = f"{record['rounds_used']} (started with {record['rounds_started']}" + \
        (", added while inconclusive)" if record.get("adaptive") else ")")
    lines += ["", f"**Rounds:** {rounds}. " + (f"**Statistic:** {md_text(stat)}." if stat else ""), "",
              f"**Host:** {md_text(record['host_summary'])} (fingerprint `{_fp(record)}`)", ""]
    noise = noise_lines(record)
    if noise:
        lines += ["<details><summary>Noise seen</summary>", ""] + [f"- {md_text(n)}" for n in noise] + \
            ["", "</details>", ""]
    return "\n".join(lines)


def _fp(record: dict) -> str:
    from edgebench.portable.host import fingerprint_key
    return fingerprint_key(record["fingerprint"])


def junit(record: dict) -> str:
    """One testsuite, one testcase per metric: regression = failure, inconclusive = failure or skipped
    (as ``--inconclusive`` chooses), the others pass."""
    cases = record["metrics"]
    policy = record["verdict"]["inconclusive_policy"]

    def failing(m: dict) -> bool:
        return m.get("gated", True) and (m["verdict"] == "regression"
                                         or (m["verdict"] == "inconclusive" and policy != "pass"))

    suite = ET.Element("testsuite", name=f"edgebench gate {record['model']['name']} {record['runtime']['name']} "
                                         f"{record['precision']} b{record['batch']}",
                       tests=str(len(cases)), failures=str(sum(1 for m in cases if failing(m))), errors="0",
                       skipped=str(sum(1 for m in cases if not m.get("gated", True))),
                       time=str(record.get("seconds", 0)), timestamp=record["timestamp"])
    for m in cases:
        case = ET.SubElement(suite, "testcase", classname=f"edgebench.gate.{record['runtime']['name']}",
                             name=m["metric"], time="0")
        text = f"{m['verdict']}: {m['reason']}; ratio {_ratio(m)}, CI {_ci(m)}"
        if not m.get("gated", True):
            ET.SubElement(case, "skipped", message=f"not gated: {text}")
        elif failing(m):
            ET.SubElement(case, "failure", message=text, type=m["verdict"]).text = text
        ET.SubElement(case, "system-out").text = text
    props = ET.SubElement(suite, "properties")
    for k, val in (("verdict", record["verdict"]["overall"]), ("host", record["host_summary"]),
                   ("rounds", str(record["rounds_used"])), ("record_id", record["id"])):
        ET.SubElement(props, "property", name=k, value=val)
    root = ET.Element("testsuites", name="edgebench gate")
    root.append(suite)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def table(record: dict) -> Table:
    v = record["verdict"]["overall"]
    t = Table(title=f"edgebench gate: {HEADLINE[v]} ({record['rounds_used']} rounds; {record['host_summary']})")
    for col in ("metric", "baseline", "candidate", "ratio", "95% CI", "verdict", "why"):
        t.add_column(col, justify="right" if col in ("baseline", "candidate", "ratio") else "left", overflow="fold")
    for m in record["metrics"]:
        t.add_row(m["metric"], _value(m, "baseline"), _value(m, "candidate"), _ratio(m), _ci(m),
                  m["verdict"] + ("" if m.get("gated", True) else " (not gated)"), m["reason"])
    return t
