"""The `synthgen` command line (Typer); progress bars and tables live here only.

    synthgen render scenes/capped_bottle.yaml -o out/capped_bottle
    synthgen preview scenes/capped_bottle.yaml -o sheet.png
    synthgen inspect out/capped_bottle
    synthgen products
    synthgen defects
    synthgen train unet_ae --data out/capped_bottle -o runs/ae
    synthgen translate train --good DIR --defective DIR -o RUN
    synthgen validate RECIPE --detector RUN --sweep bulge.height=0.05:2:20 -o REPORT
"""

from __future__ import annotations

import logging
import sys

from synthgen.cli import dataset, detect, validate  # noqa: F401  (commands register on import)
from synthgen.cli.common import app, console
from synthgen.cli.translate import translate_app
from synthgen.errors import SynthgenError

__all__ = ["app", "main"]

app.add_typer(translate_app, name="translate")


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

