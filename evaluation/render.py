"""Write a report to a directory: one CSV per table, SVG charts, one self-contained HTML page.

The HTML embeds its charts as inline SVG and its style in the page: it opens from a file, a
mail attachment or an intranet without fetching anything.
"""

from __future__ import annotations

import csv
import html
import io
from pathlib import Path
from typing import Any

from models.reports import Report, ReportTable

MAIN_CHART = "return_to_work.svg"
_DASH = "\u2013"


def write_report(report: Report, out: Path) -> list[Path]:
    """Write everything; returns the files written, the HTML page first."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "csv").mkdir(exist_ok=True)
    written: list[Path] = []
    for table in report.tables:
        path = out / "csv" / f"{table.key}.csv"
        path.write_text(table_csv(table), encoding="utf-8")
        written.append(path)
    extra = {
        "comparisons": [c.model_dump() for c in report.comparisons],
        "deadline_gaps": [g.model_dump() for g in report.deadline_gaps],
        "stage_stalls": [s.model_dump() for s in report.stage_stalls],
        "coverage": [c.model_dump() for c in report.coverage],
        "return_to_work": [
            {
                "extent": r.extent,
                "group": c.group,
                "day": day,
                "share_returned": share,
                "lower": low,
                "upper": up,
            }
            for r in report.return_to_work
            for c in r.curves
            for day, share, low, up in zip(c.days, c.share_returned, c.lower, c.upper, strict=True)
        ],
    }
    for name, rows in extra.items():
        path = out / "csv" / f"{name}.csv"
        path.write_text(_dicts_csv(rows), encoding="utf-8")
        written.append(path)
    charts = charts_svg(report)
    for name, svg in charts.items():
        path = out / name
        path.write_text(svg, encoding="utf-8")
        written.append(path)
    page = out / "report.html"
    page.write_text(report_html(report, charts), encoding="utf-8")
    return [page, *written]


def table_csv(table: ReportTable) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        [
            table.row_label,
            *(f"{c} n" for c in table.cols),
            *((f"{c} {table.value_label}" for c in table.cols) if table.values else ()),
        ]
    )
    for r, row in enumerate(table.rows):
        counts = ["" if v is None else v for v in table.counts[r]]
        values = ["" if v is None else v for v in table.values[r]] if table.values else []
        writer.writerow([row, *counts, *values])
    return buffer.getvalue()


def _dicts_csv(rows: list[dict[str, object]]) -> str:
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    return buffer.getvalue()


# ---------------------------------------------------------------- charts


def charts_svg(report: Report) -> dict[str, str]:
    """The report's charts as SVG text, by file name. Figures are built without pyplot, so
    concurrent API requests never share a current figure."""
    import matplotlib
    from matplotlib.figure import Figure

    # Text stays text (smaller, searchable); a fixed hash salt makes the SVG reproducible.
    matplotlib.rcParams.update(
        {"svg.fonttype": "none", "font.size": 10, "svg.hashsalt": "rehabflow"}
    )
    charts: dict[str, str] = {}

    def subplots(figsize: tuple[float, float]) -> tuple[Figure, Any]:
        fig = Figure(figsize=figsize)
        return fig, fig.subplots()

    fig, ax = subplots((7.5, 4.2))
    colours = {"partial": "#4c9f70", "full": "#1f5f8b"}
    for rtw in report.return_to_work:
        overall = next((c for c in rtw.curves if c.group == "all"), None)
        if overall is None or not overall.days:
            continue
        label = "back at work, partly or fully" if rtw.extent == "partial" else "back at work fully"
        ax.step(
            overall.days,
            [s * 100 for s in overall.share_returned],
            where="post",
            color=colours[rtw.extent],
            label=f"{label} (n = {overall.people})",
        )
        ax.fill_between(
            overall.days,
            [x * 100 for x in overall.lower],
            [x * 100 for x in overall.upper],
            step="post",
            alpha=0.15,
            color=colours[rtw.extent],
        )
    for day in (90, 180, 365):
        ax.axvline(day, color="#999", linewidth=0.6, linestyle=":")
    ax.set_xlim(0, 365)
    ax.set_ylim(0, 100)
    ax.set_xlabel("days since the first sick day")
    ax.set_ylabel("% back at work")
    ax.set_title("Return to work (Kaplan-Meier, open cases censored, 95 % band)")
    ax.legend(loc="upper left", frameon=False)
    charts[MAIN_CHART] = _svg(fig)

    deadline_rows = []
    for table in report.tables:
        if table.key.startswith("deadline_") and table.key.endswith("_by_unit"):
            total = table.counts[-1]
            deadline_rows.append((table.measure.removeprefix("deadline_"), total, table.cols))
    if deadline_rows:
        fig, ax = subplots((7.5, 0.5 + 0.45 * len(deadline_rows)))
        palette = {"on_time": "#4c9f70", "late": "#e0a030", "missed": "#c0392b"}
        for i, (_kind, total, cols) in enumerate(deadline_rows):
            left = 0.0
            whole = total[-1]
            for c, outcome in enumerate(cols[:-1]):
                value = total[c]
                if value is None or not whole:
                    continue
                share = 100 * value / whole
                ax.barh(
                    i,
                    share,
                    left=left,
                    color=palette.get(outcome, "#888"),
                    label=outcome if i == 0 else None,
                )
                left += share
        ax.set_yticks(range(len(deadline_rows)), [k for k, _, _ in deadline_rows])
        ax.set_xlim(0, 100)
        ax.set_xlabel("% of decided deadlines (suppressed cells left out)")
        ax.set_title("Deadlines: met on time, late, missed")
        ax.legend(loc="lower right", frameon=False, fontsize=8)
        charts["deadlines.svg"] = _svg(fig)

    stages = report.table("time_in_stage")
    shown = [
        (s, v[0])
        for s, v in zip(stages.rows, stages.values or [], strict=False)
        if v[0] is not None
    ]
    if shown:
        fig, ax = subplots((7.5, 0.5 + 0.45 * len(shown)))
        ax.barh(range(len(shown)), [v for _, v in shown], color="#1f5f8b")
        ax.set_yticks(range(len(shown)), [s for s, _ in shown])
        ax.invert_yaxis()
        ax.set_xlabel("median days in the stage (completed stays)")
        ax.set_title("Where cases spend their time")
        charts["time_in_stage.svg"] = _svg(fig)

    compared = [c for c in report.comparisons if c.difference is not None]
    # Days and shares differ in unit: one panel each, shares in percentage points.
    panels = [
        (unit, scale, [c for c in compared if (c.measure.startswith("days")) == is_days])
        for unit, scale, is_days in (("days", 1.0, True), ("percentage points", 100.0, False))
    ]
    panels = [p for p in panels if p[2]]
    if panels:
        rows = sum(len(p[2]) for p in panels)
        fig = Figure(figsize=(7.5, 1.0 + 0.55 * rows + 0.6 * len(panels)))
        axes = fig.subplots(
            len(panels), 1, squeeze=False, height_ratios=[len(p[2]) for p in panels]
        )
        for ax, (unit, scale, items) in zip(axes[:, 0], panels, strict=True):
            for i, comparison in enumerate(items):
                low, high, diff = comparison.lower, comparison.upper, comparison.difference
                assert low is not None and high is not None and diff is not None
                ax.plot([low * scale, high * scale], [i, i], color="#1f5f8b")
                ax.plot([diff * scale], [i], "o", color="#1f5f8b")
            ax.axvline(0, color="#999", linewidth=0.8)
            ax.set_yticks(
                range(len(items)),
                [f"{c.title}\n{c.group_b} vs {c.group_a}" for c in items],
                fontsize=7,
            )
            ax.set_ylim(len(items) - 0.5, -0.5)
            ax.set_xlabel(f"difference, {unit}")
        axes[0, 0].set_title("Routines compared: difference with 95 % interval")
        charts["comparisons.svg"] = _svg(fig)
    return charts


def _svg(fig: Any) -> str:
    buffer = io.StringIO()
    fig.tight_layout()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    # Inline in HTML: drop the XML prolog and doctype.
    return text[text.index("<svg") :]


# ---------------------------------------------------------------- HTML

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:60rem;margin:2rem auto;
padding:0 1rem;color:#222;line-height:1.45}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2.2rem;border-bottom:1px solid #ddd}
h3{font-size:1rem;margin-bottom:.3rem}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.9rem}
th,td{border:1px solid #ddd;padding:.2rem .5rem;text-align:right}
th:first-child,td:first-child{text-align:left}
tr:last-child td{font-weight:600}
.note{color:#555;font-size:.9rem}caption{text-align:left}.chart svg{max-width:100%;height:auto}
"""

_INTRO_TABLES = (
    ("deadline_return_to_work_plan_by_unit", "Is the day-30 plan deadline met?"),
    ("deadline_fk_sick_notice_by_unit", "Is the sick notice to Försäkringskassan sent in time?"),
    ("days_to_identification_by_sex_age_band", "How early are people identified?"),
    ("days_to_joint_meeting_by_unit_month", "How soon is the first joint meeting held?"),
    ("days_to_plan_by_unit_month", "How soon is the return-to-work plan in place?"),
    ("time_in_stage", "Days in each stage"),
    ("relapse_by_sex", "Relapse within the follow-up window"),
    ("reinforced_support_by_unit", "Reinforced support"),
    ("interventions", "Interventions: outcomes per track and kind"),
    ("information_requests", "Information requests per party"),
    ("information_turnaround", "Turnaround of information requests"),
)


def _cell(count: int | None, value: float | None, has_values: bool) -> str:
    if count is None:
        return _DASH
    if has_values:
        return f"{_DASH if value is None else f'{value:g}'} <small>(n={count})</small>"
    return str(count)


def table_html(table: ReportTable) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.cols)
    body = []
    for r, row in enumerate(table.rows):
        values = table.values[r] if table.values else [None] * len(table.cols)
        cells = "".join(
            f"<td>{_cell(count, values[c], bool(table.values))}</td>"
            for c, count in enumerate(table.counts[r])
        )
        body.append(f"<tr><td>{html.escape(row)}</td>{cells}</tr>")
    unit = f" — {html.escape(table.value_label)}" if table.value_label else " — cases"
    return (
        f"<table><caption class='note'>{html.escape(table.title)}{unit}</caption>"
        f"<tr><th>{html.escape(table.row_label)}</th>{head}</tr>{''.join(body)}</table>"
    )


def report_html(report: Report, charts: dict[str, str]) -> str:
    keys = {t.key for t in report.tables}
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        f"<title>rehabflow evaluation {report.first} - {report.last}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>Work rehabilitation: which routines work<br><small>{report.first} - "
        f"{report.last}</small></h1>",
        "<p style='background:#fff3cd;padding:.5rem'><b>Synthetic data.</b> This page shows "
        "made-up casework of a synthetic workforce, to show what the report looks like.</p>"
        if report.synthetic
        else "",
        f"<p>{'Fewer than 5' if report.cases is None else report.cases} cases were opened in the "
        "period. Every figure counts at least 5 people; - marks a suppressed cell.</p>",
        "<h2>How long until people return?</h2>",
        f"<div class='chart'>{charts.get(MAIN_CHART, '')}</div>",
    ]
    rows = "".join(
        f"<tr><td>{r.extent}</td>"
        + "".join(
            f"<td>{_DASH if v is None else f'{100 * v:.0f} %'}</td>" for v in r.within_days.values()
        )
        + "</tr>"
        for r in report.return_to_work
    )
    parts.append(
        "<table><tr><th>return</th><th>within 90 days</th><th>within 180 days</th>"
        f"<th>within 365 days</th></tr>{rows}</table>"
    )
    parts.append("<h2>Deadlines</h2>")
    if "deadlines.svg" in charts:
        parts.append(f"<div class='chart'>{charts['deadlines.svg']}</div>")
    parts.append("<h2>Routine gaps</h2><h3>Where deadlines are most often late or missed</h3>")
    gap_rows = "".join(
        f"<tr><td>{g.rank}</td><td>{html.escape(g.unit)}</td><td>{html.escape(g.kind)}</td>"
        f"<td>{g.cases}</td><td>{100 * g.missed_share:.0f} %</td></tr>"
        for g in report.deadline_gaps[:10]
    )
    parts.append(
        "<table><tr><th>rank</th><th>unit</th><th>deadline</th><th>cases</th>"
        f"<th>late or missed</th></tr>{gap_rows}</table>"
    )
    parts.append("<h3>In which stage cases stall</h3>")
    stall_rows = "".join(
        f"<tr><td>{s.rank}</td><td>{html.escape(s.stage)}</td>"
        f"<td>{_DASH if s.median_days is None else f'{s.median_days:g}'}</td>"
        f"<td>{_DASH if s.completed_stays is None else s.completed_stays}</td>"
        f"<td>{_DASH if s.open_over_30_days is None else s.open_over_30_days}</td></tr>"
        for s in report.stage_stalls
    )
    parts.append(
        "<table><tr><th>rank</th><th>stage</th><th>median days</th><th>completed stays</th>"
        f"<th>open &gt; 30 days</th></tr>{stall_rows}</table>"
    )
    if "time_in_stage.svg" in charts:
        parts.append(f"<div class='chart'>{charts['time_in_stage.svg']}</div>")
    parts.append("<h2>Routines compared</h2>")
    if "comparisons.svg" in charts:
        parts.append(f"<div class='chart'>{charts['comparisons.svg']}</div>")
    comp_rows = "".join(
        f"<tr><td>{html.escape(c.title)}</td><td>{html.escape(c.group_a)}: {_num(c.value_a)}</td>"
        f"<td>{html.escape(c.group_b)}: {_num(c.value_b)}</td><td>{_num(c.difference)}</td>"
        f"<td>{_DASH if c.lower is None else f'{c.lower:g} to {c.upper:g}'}</td></tr>"
        for c in report.comparisons
    )
    parts.append(
        "<table><tr><th>measure</th><th>a</th><th>b</th><th>b - a</th><th>95 % interval</th>"
        f"</tr>{comp_rows}</table>"
    )
    parts.append("<h2>The measures</h2>")
    for key, heading in _INTRO_TABLES:
        if key in keys:
            parts.append(f"<h3>{html.escape(heading)}</h3>{table_html(report.table(key))}")
    parts.append("<h2>Manager training and APT dialogues (last 12 months)</h2>")
    cov_rows = "".join(
        f"<tr><td>{html.escape(c.unit)}</td><td>{c.managers}</td>"
        f"<td>{c.trained_within_12_months}</td><td>{c.apt_dialogues_12_months}</td>"
        f"<td>{c.apt_participants_12_months}</td></tr>"
        for c in report.coverage
    )
    parts.append(
        "<table><tr><th>unit</th><th>managers</th><th>trained</th><th>APT dialogues</th>"
        f"<th>participants</th></tr>{cov_rows}</table>"
    )
    parts.append("<h2>How to read this</h2><ul>")
    parts += [f"<li class='note'>{html.escape(n)}</li>" for n in report.notes]
    parts.append(
        "<li class='note'>Every table, with its breakdowns by unit and month and by sex and "
        "age band, is in the <code>csv/</code> folder beside this page.</li></ul>"
    )
    parts.append(f"<p class='note'>Generated {report.generated_at:%Y-%m-%d %H:%M} UTC.</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _num(value: float | None) -> str:
    return _DASH if value is None else f"{value:g}"
