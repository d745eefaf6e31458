"""What every command shares: the app, the consoles, errors and progress bars."""

from __future__ import annotations

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
from rich.text import Text

app = typer.Typer(
    help="Labelled image datasets of manufactured products with defects, made from geometry.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(stderr=True)
out_console = Console()


def fail(message: str, code: int = 2) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def overrides(samples, seed, formats, renderer, size) -> dict[str, Any]:
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


def load(recipe: Path, overrides: dict[str, Any]):
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


def parse_shard(text: str | None) -> tuple[int, int]:
    if text is None:
        return (0, 1)
    try:
        part, parts = (int(v) for v in text.split("/"))
    except ValueError:
        raise fail(f"--shard {text!r}: expected I/N, for example 0/4") from None
    return part, parts


class RateColumn(ProgressColumn):
    """Samples per second over the bar's recent window."""

    def render(self, task) -> Text:
        return Text("" if not task.speed else f"{task.speed:5.1f} samples/s")


RecipeArg = Annotated[Path, typer.Argument(help="recipe: a YAML file or a Python scene script")]




def progress_bar(description: str) -> tuple[Progress, Any]:
    """A started-on-enter rich progress bar (items, rate, elapsed, ETA) and its task id."""
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               RateColumn(), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
    bar = Progress(*columns, console=console, transient=False)
    return bar, bar.add_task(description, total=None)
