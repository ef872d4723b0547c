"""The comparison as a table (stdout), a JSON file and an HTML page with inline SVG charts
(no plotting library: the project's environment has none, and the page opens in any browser)."""

from __future__ import annotations

import html
import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

COLUMNS: Final = (
    ("policy", "policy", "{}"),
    ("median_days", "median d", "{:.1f}"),
    ("p90_days", "p90 d", "{:.1f}"),
    ("placed_30d", "≤30 d", "{:.0%}"),
    ("placed_90d", "≤90 d", "{:.0%}"),
    ("contacts_per_placement", "contacts/pl.", "{:.1f}"),
    ("inquiries_per_therapist_month", "inq/ther/mo", "{:.2f}"),
    ("fairness_rho", "fairness rho", "{:.2f}"),
    ("cooling_violations", "cooling viol.", "{}"),
    ("invariant_violations", "invariant viol.", "{}"),
)
CHARTS: Final = (
    ("median_days", "Median days to placement (placed cohort)", "{:.1f}"),
    ("p90_days", "90th percentile days to placement", "{:.1f}"),
    ("placed_30d", "Share of cohort placed within 30 days", "{:.0%}"),
    ("placed_90d", "Share of cohort placed within 90 days", "{:.0%}"),
    ("contacts_per_placement", "Contacts (bundle memberships) per placement", "{:.1f}"),
    ("inquiries_per_therapist_month", "Inquiries per therapist per month", "{:.2f}"),
    ("fairness_rho", "Fairness: rank correlation of start and placement order", "{:.2f}"),
)
PALETTE: Final = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#393b79",
    "#637939",
)


def combine(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One policy's figures over its replications: means of the numbers (violations summed)."""
    first = runs[0]
    combined: dict[str, Any] = {"policy": first["policy"], "replications": len(runs)}
    for key, value in first.items():
        if key in ("policy", "outcomes", "invariant_examples"):
            continue
        values = [run[key] for run in runs if run.get(key) is not None]
        if key.endswith("violations") or key in ("conflicts", "cohort", "placed", "days_checked"):
            combined[key] = sum(values)
        elif isinstance(value, int | float) or value is None:
            combined[key] = round(statistics.fmean(values), 3) if values else None
    outcomes: dict[str, int] = {}
    for run in runs:
        for name, count in run["outcomes"].items():
            outcomes[name] = outcomes.get(name, 0) + count
    combined["outcomes"] = outcomes
    combined["invariant_examples"] = [e for run in runs for e in run["invariant_examples"]][:20]
    return combined


def table(rows: Sequence[dict[str, Any]]) -> str:
    cells = [[label for _, label, _ in COLUMNS]]
    for row in rows:
        cells.append([("-" if row.get(key) is None else fmt.format(row[key])) for key, _, fmt in COLUMNS])
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    lines = []
    for n, line in enumerate(cells):
        lines.append(
            "  ".join(
                v.ljust(w) if i == 0 else v.rjust(w)
                for i, (v, w) in enumerate(zip(line, widths, strict=True))
            )
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_json(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------------- SVG


def _bar_chart(title: str, rows: Sequence[dict[str, Any]], key: str, fmt: str) -> str:
    values = [(row["policy"], row.get(key)) for row in rows]
    known = [v for _, v in values if v is not None]
    top = max(known, default=1) or 1
    bar_h, gap, left, width = 22, 6, 130, 420
    height = len(values) * (bar_h + gap) + 40
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 80}" height="{height}" role="img">',
        f"<title>{html.escape(title)}</title>",
        f'<text x="0" y="16" font-size="14" font-weight="bold">{html.escape(title)}</text>',
    ]
    for n, (name, value) in enumerate(values):
        y = 30 + n * (bar_h + gap)
        color = PALETTE[n % len(PALETTE)]
        parts.append(
            f'<text x="{left - 8}" y="{y + 15}" font-size="12" text-anchor="end">{html.escape(name)}</text>'
        )
        if value is None:
            parts.append(f'<text x="{left + 4}" y="{y + 15}" font-size="12" fill="#888">not measured</text>')
            continue
        w = max(1.0, width * value / top)
        parts.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{color}"/>')
        parts.append(
            f'<text x="{left + w + 4:.1f}" y="{y + 15}" font-size="12">'
            f"{html.escape(fmt.format(value))}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _line_chart(title: str, series: dict[str, list[float]], y_label: str) -> str:
    left, top, width, height = 60, 30, 620, 260
    longest = max((len(s) for s in series.values()), default=1)
    peak = max((max(s) for s in series.values() if s), default=1) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 170}" '
        f'height="{top + height + 50}" role="img">',
        f"<title>{html.escape(title)}</title>",
        f'<text x="0" y="16" font-size="14" font-weight="bold">{html.escape(title)}</text>',
        f'<line x1="{left}" y1="{top + height}" x2="{left + width}" y2="{top + height}" stroke="#444"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + height}" stroke="#444"/>',
        f'<text x="{left + width / 2}" y="{top + height + 35}" font-size="12" '
        'text-anchor="middle">day</text>',
        f'<text x="12" y="{top + height / 2}" font-size="12" '
        f'transform="rotate(-90 12 {top + height / 2})" text-anchor="middle">{html.escape(y_label)}</text>',
    ]
    for tick in range(5):
        value = peak * tick / 4
        y = top + height - height * tick / 4
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">{value:.0f}</text>'
        )
        day = (longest - 1) * tick / 4
        x = left + width * tick / 4
        parts.append(
            f'<text x="{x:.1f}" y="{top + height + 16}" font-size="11" text-anchor="middle">{day:.0f}</text>'
        )
    for n, (name, values) in enumerate(series.items()):
        color = PALETTE[n % len(PALETTE)]
        points = " ".join(
            f"{left + width * i / max(longest - 1, 1):.1f},{top + height - height * v / peak:.1f}"
            for i, v in enumerate(values)
        )
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.6" points="{points}"/>')
        parts.append(
            f'<rect x="{left + width + 12}" y="{top + n * 18}" width="12" height="12" fill="{color}"/>'
        )
        parts.append(
            f'<text x="{left + width + 30}" y="{top + n * 18 + 11}" font-size="12">{html.escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def write_html(path: Path, report: dict[str, Any]) -> None:
    rows = report["policies"]
    header = "".join(f"<th>{html.escape(label)}</th>" for _, label, _ in COLUMNS)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape('-' if row.get(key) is None else fmt.format(row[key]))}</td>"
            for key, _, fmt in COLUMNS
        )
        + "</tr>"
        for row in rows
    )
    charts = "".join(f"<figure>{_bar_chart(title, rows, key, fmt)}</figure>" for key, title, fmt in CHARTS)
    waiting = {name: [float(v) for v in values] for name, values in report["series"]["waiting"].items()}
    placed = {name: [float(v) for v in values] for name, values in report["series"]["placed"].items()}
    spec = html.escape(json.dumps(report["world"], default=str))
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Matching policy simulation</title>
<style>body{{font-family:system-ui,sans-serif;margin:24px;max-width:1100px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}
td:first-child,th:first-child{{text-align:left}}
figure{{margin:18px 0}}code{{font-size:12px}}</style></head><body>
<h1>Matching policy simulation</h1>
<p>Region <b>{html.escape(str(report["world"]["region"]) or "all")}</b>, {report["world"]["weeks"]} weeks,
seed {report["world"]["seed"]}, {report["replications"]} replication(s). Cohort: searches started after the
warm-up, followed {rows[0]["follow_up_days"] if rows else 0:.0f} days.
See docs/simulation.md for every definition.</p>
<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>
{charts}
<figure>{_line_chart("Searches waiting (active) per day, first replication", waiting, "searches")}</figure>
<figure>{_line_chart("Placements so far, first replication", placed, "placements")}</figure>
<p><code>{spec}</code></p>
</body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
