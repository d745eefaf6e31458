"""The `validate` command: defect-size sweeps → probability-of-detection report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from synthgen.cli.common import RecipeArg, app, console, fail, load, out_console, progress_bar


@app.command()
def validate(
    recipe: RecipeArg,
    detector: Annotated[list[str], typer.Option(
        "--detector", help="a run folder from synthgen train; path.py:function (image → "
        "score); or cmd:COMMAND (reads image paths on stdin, prints one score per line). "
        "Repeat to compare detectors on one sweep")],
    out: Annotated[Path, typer.Option("-o", "--out", help="report folder (new or empty)")],
    sweep: Annotated[list[str], typer.Option(
        "--sweep", help="DEFECT.PARAM=LOW:HIGH:N[:log|lin], e.g. bulge.height=0.05:2:20 "
        "(repeat for several defect types)")],
    per_size: Annotated[int, typer.Option("--per-size", help="views per size (K)")] = 10,
    good: Annotated[int, typer.Option("--good", help="defect-free parts (M), for the "
                                                     "false-call rate")] = 20,
    threshold: Annotated[list[float] | None, typer.Option(
        "--threshold", help="score threshold of callable and command detectors: one shared "
        "value or one per such detector, in order (run folders use their own)")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="replaces the recipe's seed")]
    = None,
    size: Annotated[int | None, typer.Option("--size", help="image side, pixels")] = None,
    max_attempts: Annotated[int, typer.Option(
        "--max-attempts", help="renders per view to get the defect visible")] = 20,
) -> None:
    """Probability of detection: render defects at a grid of sizes, score them with one or
    more detectors, fit hit/miss POD curves (a50, a90, a90/95) and write a report."""
    from synthgen.cli.common import overrides
    from synthgen.errors import ConfigError
    from synthgen.validate.detectors import parse_detectors
    from synthgen.validate.study import check_output
    from synthgen.validate.study import validate as run_validation
    from synthgen.validate.sweep import check_sweep, parse_sweep

    try:  # everything checked before the first render
        job = load(recipe, overrides(None, seed, None, None, size))
        sweeps = [parse_sweep(text) for text in sweep]
        for spec in sweeps:
            check_sweep(job, spec)
        detectors = parse_detectors(detector, threshold or [])
        check_output(out)
    except ConfigError as error:
        raise fail(str(error)) from None
    bar, task = progress_bar("rendering views")
    with bar:
        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result = run_validation(job, sweeps, detectors, out, per_size=per_size, good=good,
                                max_attempts=max_attempts, recipe_path=str(recipe),
                                progress=progress)
    _print_summary(result)
    console.print(f"wrote {out / 'report.html'}, {out / 'pod.png'} and {out / 'result.json'}")


def _print_summary(result: dict) -> None:
    table = Table(title="probability of detection", title_justify="left")
    for column in ("detector", "sweep", "hits", "a50", "a90", "a90/95", "false calls",
                   "note"):
        table.add_column(column)

    def number(value):
        return "-" if value is None else f"{value:.4g}"

    for label, by_sweep in result["fits"].items():
        calls = result["false_calls"][label]
        rate = "-" if calls["rate"] is None else f"{calls['false_calls']}/{calls['good']}"
        for key, fit in by_sweep.items():
            table.add_row(label, key, f"{fit['hits']}/{fit['n']}", number(fit["a50"]),
                          number(fit["a90"]), number(fit["a90_95"]), rate, fit["message"])
    out_console.print(table)
