"""Fixtures of the validation tests: small recipes, user detectors, a renderer check."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from synthgen.job import parse_recipe

SCENE = {
    "pose": {"mode": "upright", "yaw_deg": [0, 360], "tilt_deg": [0, 5]},
    "camera": {"yfov_deg": 30, "distance": [0.9, 1.1], "elevation_deg": [0, 30],
               "azimuth_deg": [0, 360], "aim_jitter": 0.0},
    "lighting": {"preset": "constant"},
    "background": {"kind": "solid"},
}


def small_recipe(size: int = 64, seed: int = 3) -> dict:
    """A capped-bottle recipe whose bulges sit on the body and shoulder, `size` px images."""
    return {"product": {"type": "capped_bottle"}, "seed": seed,
            "defects": [{"type": "bulge", "height": 1.5, "regions": ["body", "shoulder"]}],
            "scene": SCENE, "render": {"size": size, "antialias": "none"}}


@pytest.fixture
def small_job():
    return parse_recipe(small_recipe())


@pytest.fixture
def recipe_file(tmp_path: Path) -> Path:
    import yaml

    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(small_recipe()))
    return path


@pytest.fixture
def mean_scorer(tmp_path: Path) -> Path:
    """A Python file with `score(image)`: the image's mean grey value, 0-255."""
    path = tmp_path / "scorer.py"
    path.write_text(textwrap.dedent("""
        import numpy as np

        def score(image):
            assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
            return float(image.mean())
    """))
    return path


@pytest.fixture
def area_command(tmp_path: Path) -> str:
    """A command detector: for each image path on stdin, prints the pixel area of the
    defect mask saved beside it (<report>/masks/<name>.png; 0 for good parts)."""
    path = tmp_path / "area_detector.py"
    path.write_text(textwrap.dedent("""
        import sys
        from pathlib import Path

        import numpy as np
        from PIL import Image

        for line in sys.stdin:
            image = Path(line.strip())
            mask = image.parent.parent / "masks" / image.name
            area = int((np.asarray(Image.open(mask)) > 127).sum()) if mask.is_file() else 0
            print(area)
    """))
    return f"cmd:{sys.executable} {path}"


@pytest.fixture(scope="session")
def gl():
    """Skip unless an EGL OpenGL context can be made."""
    try:
        from synthgen.render.pyrender_backend import PyrenderRenderer
    except ImportError as exc:
        pytest.skip(f"the pyrender backend cannot be imported: {exc}")
    try:
        PyrenderRenderer(32, 32).close()
    except Exception as exc:
        pytest.skip(f"cannot create an EGL OpenGL context: {exc}")
