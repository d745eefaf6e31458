"""The Ray executor: a local 2-CPU Ray cluster gives the bytes of a single-process run, and a
worker that dies mid-sample is retried without a duplicate or a hole."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from synthgen.errors import ConfigError, MissingDependency
from synthgen.generate import FAULT_ENV, generate
from synthgen.job import parse_recipe

RECIPE = {
    "samples": 10,
    "seed": 11,
    "product": {"type": "bottle_cap"},
    "good_fraction": 0.3,
    "defects": [
        {"type": "bulge", "probability": 0.6, "radius": [2, 4], "height": [0.4, 1.0]},
        {"type": "hole", "probability": 0.5, "diameter": [1.5, 3], "depth": [1, 2]},
    ],
    "render": {"size": 64},
    "output": {"formats": ["mvtec", "coco", "yolo"], "good_test_fraction": 0.25},
}


def _tree(root: Path) -> dict[str, bytes]:
    """Every file under root, the job's bookkeeping (.parts) included."""
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray", reason="ray is not installed (synthgen[distributed])")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "data"
    assert generate(parse_recipe(RECIPE), out).complete
    return _tree(out)


@pytest.mark.gl
@pytest.mark.slow
def test_ray_cli_render_equals_the_local_run(ray_cluster, reference, tmp_path):
    import yaml
    from typer.testing import CliRunner

    from synthgen.cli import app

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(RECIPE))
    out = tmp_path / "ray"
    result = CliRunner().invoke(app, ["render", str(recipe), "-o", str(out),
                                      "--executor", "ray", "--workers", "2"])
    assert result.exit_code == 0, result.output
    got = _tree(out)
    assert got["manifest.jsonl"] == reference["manifest.jsonl"]
    assert got["coco/annotations/instances.json"] == reference["coco/annotations/instances.json"]
    assert got == reference


@pytest.mark.gl
@pytest.mark.slow
def test_worker_killed_mid_sample_is_retried_without_holes(ray_cluster, reference, tmp_path,
                                                           monkeypatch):
    """The process writing sample 6 exits after the sample's files, before its completion
    marker; Ray restarts the actor and re-runs the chunk, which rewrites identical bytes."""
    flag = tmp_path / "crashed"
    monkeypatch.setenv(FAULT_ENV, f"6:{flag}")
    out = tmp_path / "ray"
    calls: list[tuple[int, int]] = []
    report = generate(parse_recipe(RECIPE), out, executor="ray", workers=2,
                      progress=lambda done, total: calls.append((done, total)))
    assert flag.exists(), "the worker did not crash: the test tests nothing"
    assert report.complete and report.made == 10
    assert calls[-1] == (10, 10) and [d for d, _ in calls] == sorted(d for d, _ in calls)
    lines = (out / "manifest.jsonl").read_text().splitlines()
    assert [json.loads(line)["index"] for line in lines] == list(range(10))
    assert _tree(out) == reference


def test_missing_ray_names_the_extra(tmp_path, monkeypatch):
    from synthgen.executors import ray as ray_executor

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray → ImportError
    with pytest.raises(MissingDependency, match=r'synthgen\[distributed\]'):
        ray_executor.run(parse_recipe(RECIPE), tmp_path, [0])


def test_executor_options_are_checked(tmp_path):
    job = parse_recipe(RECIPE)
    with pytest.raises(ConfigError, match="executor 'spark' is not one of local, ray"):
        generate(job, tmp_path / "a", executor="spark")
    with pytest.raises(ConfigError, match=r"--address .* needs --executor ray"):
        generate(job, tmp_path / "b", address="head:6379")
    with pytest.raises(ConfigError, match="workers must be at least 1"):
        generate(job, tmp_path / "c", workers=0)
    assert not any(tmp_path.iterdir()), "a refused job wrote files"


class _UnknownProductJob:
    """Stands in for a Job whose recipe a worker node cannot build."""

    samples = 1

    def to_dict(self):
        return {"samples": 1, "product": {"type": "no_such_product"}}


def test_worker_that_cannot_start_is_reported_once(ray_cluster, tmp_path):
    from synthgen.errors import SynthgenError
    from synthgen.executors import ray as ray_executor

    with pytest.raises(SynthgenError, match=r"Ray worker could not start .*no_such_product"):
        ray_executor.run(_UnknownProductJob(), tmp_path, [0])


def test_executors_and_storage_import_ray_and_fsspec_only_when_used():
    import subprocess

    code = ("import sys, synthgen.generate, synthgen.storage, synthgen.executors.local, "
            "synthgen.executors.ray\n"
            "print(','.join(m for m in ('ray', 'fsspec') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "", f"imported at module level: {out.stdout}"
