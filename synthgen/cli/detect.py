"""Trainer commands: models, train, evaluate, predict."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from synthgen.cli.common import app, console, out_console


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
    options: Annotated[list[str] | None, typer.Option(
        "--set", help="model option KEY=VALUE, repeatable (e.g. search_steps=500)")] = None,
    synthetic: Annotated[bool | None, typer.Option(
        "--synthetic-anomalies/--no-synthetic-anomalies",
        help="train on good images with synthetic Perlin anomalies (default: the model's "
             "choice, on for draem)")] = None,
    group_duplicates: Annotated[bool, typer.Option(
        "--group-duplicates", help="keep near-copies of an image (another light, a re-crop) "
                                   "in one part of the split; for real photos")] = False,
) -> None:
    """Train a detector; the split, thresholds and checkpoints go into the run folder."""
    from synthgen.detect.models.registry import parse_model_options
    from synthgen.detect.run import train_run

    config = parse_model_options(options or [])
    if weights:
        config["weights_path"] = str(weights)
    run = train_run(model, data, out, epochs=epochs, size=size, batch_size=batch_size, lr=lr,
                    device=device, seed=seed, resume=resume, config=config or None,
                    synthetic_anomalies=synthetic, group_duplicates=group_duplicates)
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


