"""The `synthgen` command line (Typer); progress bars and tables live here only.

    synthgen render scenes/capped_bottle.yaml -o out/capped_bottle
    synthgen preview scenes/capped_bottle.yaml -o sheet.png
    synthgen inspect out/capped_bottle
    synthgen products
    synthgen defects
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from synthgen.errors import SynthgenError

app = typer.Typer(
    help="Labelled image datasets of manufactured products with defects, made from geometry.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(stderr=True)
out_console = Console()


def _fail(message: str, code: int = 2) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def _overrides(samples, seed, formats, renderer, size) -> dict[str, Any]:
    """Recipe keys replaced from the command line (nested keys merged later)."""
    out: dict[str, Any] = {}
    if samples is not None:
        out["samples"] = samples
    if seed is not None:
        out["seed"] = seed
    if formats is not None:
        out["output"] = {"formats": [f.strip() for f in formats.split(",") if f.strip()]}
    render = {}
    if renderer is not None:
        render["renderer"] = renderer
    if size is not None:
        render["size"] = size
    if render:
        out["render"] = render
    return out


def _load(recipe: Path, overrides: dict[str, Any]):
    """The recipe with command-line overrides merged into its sections."""
    import yaml

    from synthgen.job import load_recipe

    if recipe.suffix in (".yaml", ".yml") and recipe.is_file():
        try:
            data = yaml.safe_load(recipe.read_text()) or {}
        except yaml.YAMLError:
            data = {}
        if isinstance(data, dict):
            for key in ("output", "render"):
                if key in overrides and isinstance(data.get(key), dict):
                    overrides[key] = {**data[key], **overrides[key]}
    return load_recipe(recipe, overrides)


def _parse_shard(text: str | None) -> tuple[int, int]:
    if text is None:
        return (0, 1)
    try:
        part, parts = (int(v) for v in text.split("/"))
    except ValueError:
        raise _fail(f"--shard {text!r}: expected I/N, for example 0/4") from None
    return part, parts


class _RateColumn(ProgressColumn):
    """Samples per second over the bar's recent window."""

    def render(self, task) -> Text:
        return Text("" if not task.speed else f"{task.speed:5.1f} samples/s")


RecipeArg = Annotated[Path, typer.Argument(help="recipe: a YAML file or a Python scene script")]


@app.command()
def render(
    recipe: RecipeArg,
    out: Annotated[Path, typer.Option("-o", "--out", help="output folder")],
    samples: Annotated[int | None, typer.Option("-n", "--samples", help="samples")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="job seed")] = None,
    formats: Annotated[str | None, typer.Option("--format", help="e.g. mvtec,coco,yolo")] = None,
    renderer: Annotated[str | None, typer.Option("--renderer", help="pyrender")] = None,
    size: Annotated[int | None, typer.Option("--size", help="image side, pixels")] = None,
    workers: Annotated[int, typer.Option("--workers", help="worker processes")] = 1,
    shard: Annotated[str | None, typer.Option("--shard", help="I/N: this shard only")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue a started job")] = False,
) -> None:
    """Render a dataset: images, exact masks, MVTec/COCO/YOLO labels and a manifest."""
    from synthgen.generate import generate

    job = _load(recipe, _overrides(samples, seed, formats, renderer, size))
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               _RateColumn(), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(f"{job.name} → {out}", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        try:
            report = generate(job, out, workers=workers, shard=_parse_shard(shard),
                              resume=resume, progress=progress)
        except KeyboardInterrupt:
            bar.stop()
            console.print(f"interrupted: the samples written are kept; continue with "
                          f"synthgen render {recipe} -o {out} --resume")
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

    job = _load(recipe, _overrides(None, seed, None, None, size))
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


@app.command()
def models() -> None:
    """Detector presets of the bundled trainer, with what each needs to train."""
    from synthgen.detect.models import MODELS

    table = Table(title="models (synthgen train MODEL --data DIR -o RUN)", title_justify="left")
    for column in ("model", "kind", "needs", "what"):
        table.add_column(column)
    for name in MODELS.names():
        spec = MODELS.get(name)
        table.add_row(name, spec.kind, spec.needs, spec.description)
    out_console.print(table)


@app.command()
def train(
    model: Annotated[str, typer.Argument(help="a preset from synthgen models")],
    data: Annotated[Path, typer.Option("--data", help="dataset folder (synthgen output, "
                                                      "MVTec AD, COCO or YOLO)")],
    out: Annotated[Path, typer.Option("-o", "--out", help="run folder")],
    epochs: Annotated[int, typer.Option("--epochs")] = 10,
    size: Annotated[int, typer.Option("--size", help="image side, pixels")] = 256,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 8,
    lr: Annotated[float, typer.Option("--lr")] = 1e-3,
    device: Annotated[str | None, typer.Option("--device", help="cpu, cuda, cuda:1")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    resume: Annotated[bool, typer.Option("--resume")] = False,
    weights: Annotated[Path | None, typer.Option("--weights", help="local weights")] = None,
) -> None:
    """Train a detector; the split, thresholds and checkpoints go into the run folder."""
    from synthgen.detect.run import train_run

    config = {"weights_path": str(weights)} if weights else None
    run = train_run(model, data, out, epochs=epochs, size=size, batch_size=batch_size, lr=lr,
                    device=device, seed=seed, resume=resume, config=config)
    sizes = {k: len(v) for k, v in run["split"].items()}
    console.print(f"trained {model} for {run['epochs']} epochs on {sizes}; run: {out}")


@app.command()
def evaluate(
    run: Annotated[Path, typer.Argument(help="a run folder from synthgen train")],
    data: Annotated[Path | None, typer.Option("--data", help="evaluate on this dataset "
                                                             "instead of the run's test split")]
    = None,
) -> None:
    """Metrics (JSON), ROC curve and anomaly-map overlays (PNG) of a trained run."""
    from synthgen.detect.run import evaluate_run

    metrics = evaluate_run(run, data)
    table = Table(title=f"{run}", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        if isinstance(value, dict):
            for sub, number in value.items():
                table.add_row(f"{key}.{sub}", f"{number:.4g}")
        else:
            table.add_row(key, f"{value:.4g}")
    out_console.print(table)
    console.print(f"wrote {run / 'metrics.json'} and the plots beside it")


@app.command()
def predict(
    run: Annotated[Path, typer.Argument(help="a run folder from synthgen train")],
    images: Annotated[list[Path], typer.Argument(help="image files")],
    out: Annotated[Path, typer.Option("-o", "--out", help="output folder")] = Path("pred"),
) -> None:
    """Scores, anomaly maps and boxes of image files."""
    from synthgen.detect.run import predict_run

    for entry in predict_run(run, images, out):
        flag = "DEFECT" if entry["defective"] else "good"
        out_console.print(f"{entry['image']}: {entry['score']:.4g} {flag}")
    console.print(f"wrote {out / 'predictions.json'}")


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


def main() -> None:
    """Entry point: clear errors instead of tracebacks for what the user can fix."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except SynthgenError as error:
        console.print(f"[bold red]error:[/] {error}", highlight=False)
        sys.exit(2)
    except KeyboardInterrupt:
        console.print("interrupted: what was written is kept; run again with --resume")
        sys.exit(130)


if __name__ == "__main__":
    main()
