"""The recipe's Blender settings: validated, hashed only when set, passed to the backend."""

from __future__ import annotations

import pytest

from synthgen.errors import ConfigError
from synthgen.job import Job, parse_recipe


def test_defaults_leave_the_recipe_dump_and_hash_alone():
    job = Job()
    render = job.to_dict()["render"]
    assert set(render) == {"renderer", "size", "antialias"}  # as before the Blender backend
    assert job.render.blender.samples == 32 and job.render.blender.engine == "cycles"
    explicit = parse_recipe({"render": {"blender": {"samples": 32, "denoise": True}}})
    assert explicit.hash == job.hash  # the defaults written out change nothing


def test_blender_settings_are_dumped_hashed_and_round_trip():
    job = parse_recipe({"render": {"renderer": "blender", "size": [64, 48],
                                   "blender": {"samples": 8, "device": "cpu"}}})
    dumped = job.to_dict()["render"]["blender"]
    assert dumped["samples"] == 8 and dumped["device"] == "cpu"
    assert parse_recipe(job.to_dict()).hash == job.hash
    other = parse_recipe({"render": {"renderer": "blender", "size": [64, 48],
                                     "blender": {"samples": 16, "device": "cpu"}}})
    assert other.hash != job.hash
    assert job.render.renderer_options() == {
        "engine": "cycles", "samples": 8, "denoise": True, "device": "cpu",
        "environment": "ambient", "environment_strength": 1.0,
    }
    assert Job().render.renderer_options() == {"antialias": "auto"}


def test_environment_image_path(tmp_path):
    sky = tmp_path / "sky.hdr"
    sky.write_bytes(b"#?RADIANCE\n")
    job = parse_recipe({"render": {"blender": {"environment": str(sky)}}})
    assert job.render.blender.environment == str(sky.resolve())


@pytest.mark.parametrize(("blender", "message"), [
    ({"device": "gpu"}, "render.blender.device"),
    ({"engine": "luxcore"}, "render.blender.engine"),
    ({"samples": 0}, "render.blender.samples"),
    ({"environment": "sky.txt"}, "render.blender.environment"),
    ({"environment": "/nowhere/sky.exr"}, "does not exist"),
    ({"spp": 4}, "render.blender.spp"),
])
def test_bad_blender_settings_name_the_field(blender, message):
    with pytest.raises(ConfigError, match=message):
        parse_recipe({"render": {"renderer": "blender", "blender": blender}})
