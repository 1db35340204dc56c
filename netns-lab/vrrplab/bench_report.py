"""Markdown tables of benchmark results, vrrpd and keepalived side by side."""

from __future__ import annotations

from typing import Any


def _fmt(v: float | None, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _triple(s: dict[str, Any]) -> str:
    """median / p95 / max in ms."""
    if not s or not s.get("n"):
        return "-"
    return f"{_fmt(s['median_ms'])} / {_fmt(s['p95_ms'])} / {_fmt(s['max_ms'])}"


def failover_table(rows: list[dict[str, Any]]) -> str:
    """One line per (scenario, family, interval); excess and injection->GARP for each impl."""
    impls = sorted({r["impl"] for r in rows}, key=lambda i: (i != "vrrpd", i))
    by_key: dict[tuple[Any, ...], dict[str, dict[str, Any]]] = {}
    for r in rows:
        key = (r["advert_int_s"], r["family"], r["scenario"])
        by_key.setdefault(key, {})[r["impl"]] = r
    head = ["advert_int", "IP", "scenario", "n"]
    head += [f"{i} excess ms (med/p95/max)" for i in impls]
    head += [f"{i} inj->GARP ms (med/p95/max)" for i in impls]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    order = {"kill9": 0, "linkdown": 1, "sigterm": 2, "preempt": 3}
    for key in sorted(by_key, key=lambda k: (-k[0], k[1], order.get(k[2], 9))):
        adv, fam, scen = key
        cells = by_key[key]
        n = max(c["excess"]["n"] for c in cells.values())
        row = [f"{adv * 1000:g} ms", f"v{fam}", scen, str(n)]
        row += [_triple(cells[i]["excess"]) if i in cells else "-" for i in impls]
        row += [_triple(cells[i]["inj_to_garp"]) if i in cells else "-" for i in impls]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def load_table(records: list[dict[str, Any]]) -> str:
    """One line per (interval, instances, impl)."""
    head = ["adv", "VRRP", "inst", "impl", "CPU % master", "CPU % backup", "RSS MB master",
            "RSS MB backup", "jitter p50 ms", "jitter p99 ms", "adverts seen/expected",
            "transitions"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    ordered = sorted(
        records, key=lambda r: (-r["advert_int_s"], r["instances"], r["impl"] != "vrrpd")
    )
    for r in ordered:
        if "error" in r:
            lines.append(f"| {r['advert_int_s'] * 1000:g} ms | | {r['instances']} | {r['impl']} "
                         f"| failed: {r['error'][:60]} |")  # fmt: skip
            continue
        row = [
            f"{r['advert_int_s'] * 1000:g} ms",
            f"v{r['version']}",
            str(r["instances"]),
            r["impl"],
            _fmt(r["master_cpu_pct"], 1),
            _fmt(r["backup_cpu_pct"], 1),
            _fmt(r["master_rss_mb"], 1),
            _fmt(r["backup_rss_mb"], 1),
            _fmt(r["jitter_p50_ms"], 3),
            _fmt(r["jitter_p99_ms"], 3),
            f"{r['adverts_seen']}/{r['adverts_expected']}",
            f"{r['master_transitions'] + r['backup_transitions']} (+{r['backup_adverts']} adv)",
        ]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)
