"""Contact sheet of a product with random defects, without writing a recipe first.

    python scripts/preview.py --product capped_bottle -n 16 -o out/preview.png
    python scripts/preview.py --product cad --param path=meshes/bracket.stl -o out/cad.png

Each defect type comes with the product's preset sizes; masks are outlined, one colour per
type. For a recipe, use `synthgen preview RECIPE -o sheet.png`; for a dataset,
`synthgen render RECIPE -o OUT`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from synthgen.defects import DEFECTS
from synthgen.errors import SynthgenError
from synthgen.generate import contact_sheet_of
from synthgen.job import parse_recipe
from synthgen.products import PRODUCTS


def _value(text: str) -> object:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--product", default="capped_bottle", choices=PRODUCTS.names())
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="product parameter, e.g. --param path=part.stl (repeatable)")
    parser.add_argument("--defects", default=",".join(DEFECTS.names()),
                        help="comma-separated defect types, one per defective sample")
    parser.add_argument("--placement", choices=["visible", "anywhere"], default="visible")
    parser.add_argument("-n", "--samples", type=int, default=16)
    parser.add_argument("--size", type=int, default=256, help="image side in pixels")
    parser.add_argument("--good-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--columns", type=int, default=4)
    parser.add_argument("-o", "--out", type=Path, default=Path("out/preview.png"))
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.defects.split(",") if n.strip()]
    params = dict(p.partition("=")[::2] for p in args.param)
    recipe = {
        "product": {"type": args.product, "params": {k: _value(v) for k, v in params.items()}},
        # Equal chances summing to one: mostly one defect per defective sample.
        "defects": [{"type": n, "probability": 1.0 / len(names)} for n in names],
        "good_fraction": args.good_fraction,
        "placement": args.placement,
        "samples": args.samples,
        "seed": args.seed,
        "render": {"size": args.size},
    }
    job = parse_recipe(recipe, base_dir=Path.cwd())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    contact_sheet_of(job, args.samples, args.columns).save(args.out)
    print(f"wrote {args.out} ({args.samples} samples of {args.product})")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SynthgenError as error:
        sys.exit(f"error: {error}")
