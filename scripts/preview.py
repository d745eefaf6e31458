"""Render N samples of a product with random defects; write a contact sheet and the images.

    python scripts/preview.py --product capped_bottle -n 16 -o out/preview

writes out/preview/contact_sheet.png (defect masks outlined, one colour per type), and for
each sample rgb/NNNNNN.png, masks/NNNNNN_<k>_<type>.png and one manifest.jsonl line.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from synthgen.contact_sheet import annotate, contact_sheet
from synthgen.defects import DEFECTS
from synthgen.errors import SynthgenError
from synthgen.pipeline import make_sample
from synthgen.products import PRODUCTS, build_product, product_defect
from synthgen.render import make_renderer
from synthgen.scene import SceneSpec


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--product", default="capped_bottle", choices=PRODUCTS.names())
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="product parameter, e.g. --param path=part.stl (repeatable)")
    parser.add_argument("--defects", default=",".join(DEFECTS.names()),
                        help="comma-separated defect types to draw from (each with the "
                             "product's preset sizes)")
    parser.add_argument("--placement", choices=["visible", "anywhere"], default="visible",
                        help="put defects where the camera sees them, or anywhere")
    parser.add_argument("-n", "--samples", type=int, default=16)
    parser.add_argument("--size", type=int, default=256, help="image side in pixels")
    parser.add_argument("--good-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--columns", type=int, default=4)
    parser.add_argument("-o", "--out", type=Path, default=Path("out/preview"))
    return parser.parse_args(argv)


def _param(text: str) -> tuple[str, object]:
    name, _, value = text.partition("=")
    for kind in (int, float):
        try:
            return name, kind(value)
        except ValueError:
            pass
    return name, {"true": True, "false": False}.get(value.lower(), value)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    nominal = build_product(args.product, dict(_param(p) for p in args.param))
    names = [name.strip() for name in args.defects.split(",") if name.strip()]
    defects = [product_defect(args.product, name) for name in names]
    renderer = make_renderer("pyrender")
    (args.out / "rgb").mkdir(parents=True, exist_ok=True)
    (args.out / "masks").mkdir(parents=True, exist_ok=True)
    tiles, captions, start = [], [], time.perf_counter()
    with open(args.out / "manifest.jsonl", "w") as manifest:
        for index in range(args.samples):
            sample = make_sample(nominal, defects, SceneSpec(), renderer, args.seed, index,
                                 (args.size, args.size), good_fraction=args.good_fraction,
                                 placement=args.placement)
            stem = f"{index:06d}"
            Image.fromarray(sample.render.rgb).save(args.out / "rgb" / f"{stem}.png")
            types = [r.type for r in sample.part.records]
            for k, (mask, kind) in enumerate(zip(sample.render.defect_masks, types, strict=True)):
                png = Image.fromarray(mask.astype(np.uint8) * 255)
                png.save(args.out / "masks" / f"{stem}_{k + 1}_{kind}.png")
            manifest.write(json.dumps(sample.record()) + "\n")
            tiles.append(annotate(sample.render.rgb, sample.render.defect_masks, types))
            shown = [t if v else f"{t} (not visible)"
                     for t, v in zip(types, sample.render.defect_visible, strict=True)]
            captions.append(f"{index}: {', '.join(shown) or 'good'}")
    renderer.close()
    sheet = contact_sheet(tiles, captions, args.columns)
    sheet.save(args.out / "contact_sheet.png")
    elapsed = time.perf_counter() - start
    print(f"wrote {args.samples} samples and {args.out / 'contact_sheet.png'} in {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SynthgenError as error:
        sys.exit(f"error: {error}")
