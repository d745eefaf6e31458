"""Dataset commands: render, preview, inspect, products, defects."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from synthgen.cli.common import (
    RecipeArg,
    app,
    console,
    load,
    out_console,
    overrides,
    parse_shard,
    progress_bar,
)
from synthgen.errors import SynthgenError


@app.command()
def render(
    recipe: RecipeArg,
    out: Annotated[str, typer.Option(
        "-o", "--out", help="output folder or URL (s3://bucket/key, gs://..., file://...)")],
    samples: Annotated[int | None, typer.Option("-n", "--samples", help="samples")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="job seed")] = None,
    formats: Annotated[str | None, typer.Option("--format", help="e.g. mvtec,coco,yolo")] = None,
    renderer: Annotated[str | None, typer.Option("--renderer", help="pyrender or blender")] = None,
    size: Annotated[int | None, typer.Option("--size", help="image side, pixels")] = None,
    workers: Annotated[int | None, typer.Option(
        "--workers", help="worker processes (local, default 1) or Ray actors (ray, default: "
        "one per cluster CPU)")] = None,
    shard: Annotated[str | None, typer.Option("--shard", help="I/N: this shard only")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue a started job")] = False,
    executor: Annotated[str, typer.Option(
        "--executor", help="local (processes on this machine) or ray (a Ray cluster)")] = "local",
    address: Annotated[str | None, typer.Option(
        "--address", help="ray: cluster address (head:6379, auto, ray://head:10001); "
        "default: start a local Ray")] = None,
) -> None:
    """Render a dataset: images, exact masks, MVTec/COCO/YOLO labels and a manifest.

    The output may be a folder or an fsspec URL; with --executor ray the samples are made on
    a Ray cluster (the output must then be reachable from every node).
    """
    from synthgen.generate import generate

    job = load(recipe, overrides(samples, seed, formats, renderer, size))
    bar, task = progress_bar(f"{job.name} → {out}")
    with bar:

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        try:
            report = generate(job, out, workers=workers, shard=parse_shard(shard),
                              resume=resume, progress=progress, executor=executor,
                              address=address)
        except KeyboardInterrupt:
            bar.stop()
            console.print(f"interrupted: the samples written are kept; continue with "
                          f"synthgen render {recipe} -o {out} --resume", highlight=False)
            raise typer.Exit(130) from None
    rate = report.made / report.seconds if report.seconds > 0 else 0.0
    state = "complete" if report.complete else f"{report.done}/{report.total} samples on disk"
    console.print(
        f"made {report.made} samples in {report.seconds:.1f} s ({rate:.1f} samples/s), "
        f"skipped {report.skipped} already done; dataset {state}: {report.out}"
    )


@app.command()
def preview(
    recipe: RecipeArg,
    out: Annotated[Path, typer.Option("-o", "--out", help="contact sheet PNG")] = Path(
        "preview.png"
    ),
    samples: Annotated[int, typer.Option("-n", "--samples", help="tiles")] = 16,
    columns: Annotated[int, typer.Option("--columns")] = 4,
    seed: Annotated[int | None, typer.Option("--seed")] = None,
    size: Annotated[int | None, typer.Option("--size", help="image side, pixels")] = None,
) -> None:
    """Render a few samples of a recipe into a contact sheet with the masks outlined."""
    from synthgen.generate import contact_sheet_of

    job = load(recipe, overrides(None, seed, None, None, size))
    sheet = contact_sheet_of(job, samples, columns)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    console.print(f"wrote {out} ({samples} samples of {job.name})")


@app.command()
def inspect(
    dataset: Annotated[Path, typer.Argument(help="a folder written by synthgen render")],
    plot: Annotated[Path | None, typer.Option("--plot", help="where to save the PNG")] = None,
) -> None:
    """Counts, class balance and a defect-size histogram of a rendered dataset."""
    from synthgen.inspect import dataset_summary, plot_summary

    summary = dataset_summary(dataset)
    table = Table(title=f"{summary['name']}: {summary['samples']} samples "
                        f"({'complete' if summary['complete'] else 'incomplete'})")
    for column in ("split", "good", "defective"):
        table.add_column(column, justify="right")
    for split, counts in summary["splits"].items():
        table.add_row(split, str(counts["good"]), str(counts["defective"]))
    out_console.print(table)
    types = Table(title="visible defect instances")
    for column in ("type", "instances", "images", "median size mm", "median area px"):
        types.add_column(column, justify="right")
    for kind, row in summary["defects"].items():
        types.add_row(kind, str(row["instances"]), str(row["images"]),
                      f"{row['median_size_mm']:.2f}", f"{row['median_area_px']:.0f}")
    out_console.print(types)
    path = plot_summary(summary, plot or dataset / "inspect.png")
    console.print(f"plot: {path}")


@app.command()
def products() -> None:
    """Product types and their parameters (default, range, unit)."""
    from synthgen.products import PRODUCTS

    for name in PRODUCTS.names():
        product = PRODUCTS.get(name)
        table = Table(title=f"{name}: {product.description}", title_justify="left")
        for column in ("parameter", "default", "range", "meaning"):
            table.add_column(column)
        for field_name, info in product.params_model.model_fields.items():
            table.add_row(field_name, _default(info), _bounds(info), info.description or "")
        out_console.print(table)


@app.command()
def defects() -> None:
    """Defect types and their parameters (default range, allowed range)."""
    from synthgen.defects import DEFECTS

    for name in DEFECTS.names():
        cls = DEFECTS.get(name)
        table = Table(title=f"{name}: {(cls.__doc__ or '').strip().splitlines()[0]}",
                      title_justify="left")
        for column in ("parameter", "default", "allowed"):
            table.add_column(column)
        for field_name, info in cls.Config.model_fields.items():
            table.add_row(field_name, _default(info), _bounds(info) or _limits(cls, field_name))
        out_console.print(table)


def _default(info) -> str:
    value = info.get_default(call_default_factory=True)
    return "" if value is None else str(list(value) if isinstance(value, tuple) else value)


def _bounds(info) -> str:
    low = high = None
    for meta in info.metadata:
        low = getattr(meta, "ge", getattr(meta, "gt", low))
        high = getattr(meta, "le", getattr(meta, "lt", high))
    return "" if low is None and high is None else f"[{low}, {high}]"


def _limits(cls, field_name: str) -> str:
    """The allowed range of a Range field, read from its validator's error message."""
    from synthgen.config import validate

    try:
        validate(cls.Config, {field_name: [-1e12, 1e12]})
    except SynthgenError as error:
        text = str(error)
        return text[text.find("within") + 7 : text.find("]", text.find("within")) + 1] if (
            "within" in text) else ""
    return ""


