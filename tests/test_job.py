"""Recipes: loading, defaults, hashing, product variants and the errors users see."""

from pathlib import Path

import pytest
import yaml

from synthgen.errors import ConfigError
from synthgen.job import Job, load_recipe, parse_recipe, variant_params

SCENES = Path(__file__).resolve().parents[1] / "scenes"


SHIPPED = sorted(p.name for p in SCENES.iterdir() if p.suffix in (".yaml", ".py"))


def test_the_shipped_recipes_are_all_found():
    assert {"capped_bottle.yaml", "capped_bottle_cap.yaml", "conveyor.py"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_recipes_load(name):
    job = load_recipe(SCENES / name)
    assert isinstance(job, Job) and job.samples > 0 and job.defects
    assert len(job.hash) == 16


def test_cad_path_is_relative_to_the_recipe():
    job = load_recipe(SCENES / "cad_part.yaml")
    assert Path(job.product.params["path"]).is_absolute()
    assert Path(job.product.params["path"]).name == "bracket.stl"


def test_hash_depends_on_every_setting_and_overrides_apply():
    a = load_recipe(SCENES / "capped_bottle.yaml")
    b = load_recipe(SCENES / "capped_bottle.yaml")
    c = load_recipe(SCENES / "capped_bottle.yaml", {"samples": 7})
    assert a.hash == b.hash != c.hash and c.samples == 7


def _error(data: dict, tmp_path=None) -> str:
    with pytest.raises(ConfigError) as info:
        parse_recipe(data, base_dir=tmp_path)
    return str(info.value)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"defects": [{"type": "bulge"}, {"type": "bulgee"}]},
         "defects[1].type: 'bulgee' is not a defect type; known: bulge, chip, crack, dent, "
         "hole, scratch, short_notch"),
        ({"sampels": 10}, "sampels: unknown key"),
        ({"samples": "many"}, "samples: Input should be a valid integer"),
        ({"samples": 0}, "samples: Input should be greater than or equal to 1"),
        ({"product": {"type": "bottle"}}, "product.type: 'bottle' is not a product type"),
        ({"product": {"type": "bottle_cap", "params": {"notch_lenght": 3}}},
         "product.params.notch_lenght: not a parameter of bottle_cap"),
        ({"product": {"type": "bottle_cap", "params": {"outer_diameter": [20, 900]}}},
         "product.params.outer_diameter"),
        ({"defects": [{"type": "bulge", "radius": [-1, 2]}]}, "defects[0].radius"),
        ({"defects": [{"type": "bulge", "heigth": 1}]}, "defects[0].heigth: unknown key"),
        ({"defects": [{"type": "bulge", "count": [1.5, 2]}]}, "defects[0].count"),
        ({"scene": {"camera": {"yfov_deg": [10, 170]}}}, "scene.camera.yfov_deg"),
        ({"render": {"size": 4}}, "render.size"),
        ({"output": {"formats": ["voc"]}}, "output.formats[0]"),
    ],
)
def test_bad_recipes_name_the_field(data, expected):
    assert expected in _error(data)


def test_missing_cad_file_is_named(tmp_path):
    message = _error({"product": {"type": "cad", "params": {"path": "nope.stl"}}}, tmp_path)
    assert "nope.stl" in message


def test_missing_recipe_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_recipe(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("samples: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_recipe(bad)
    listed = tmp_path / "list.yaml"
    listed.write_text(yaml.safe_dump([1, 2]))
    with pytest.raises(ConfigError, match="mapping"):
        load_recipe(listed)


def test_python_scene_script(tmp_path):
    script = tmp_path / "conveyor.py"
    script.write_text(
        "def recipe():\n"
        "    sizes = [4.0, 5.0, 6.0]\n"
        "    return {'samples': 3, 'product': {'type': 'bottle_cap'},\n"
        "            'defects': [{'type': 'short_notch', 'length': [1, max(sizes) / 3]}]}\n"
    )
    job = load_recipe(script)
    assert job.samples == 3 and job.defects[0].params == {"length": [1, 2.0]}
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(ConfigError, match="scene script failed"):
        load_recipe(broken)


def test_product_variants_draw_from_ranges_reproducibly():
    job = parse_recipe({"product": {"type": "bottle_cap", "variants": 3,
                                    "params": {"outer_diameter": [30, 36], "segments": [48, 64]}}})
    first = variant_params(job.product, job.seed)
    assert first == variant_params(job.product, job.seed) and len(first) == 3
    assert all(30 <= p["outer_diameter"] <= 36 for p in first)
    assert all(isinstance(p["segments"], int) for p in first)
    assert len({p["outer_diameter"] for p in first}) == 3
