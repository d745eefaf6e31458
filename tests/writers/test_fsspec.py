"""Datasets on fsspec URLs (memory:// standing in for s3:// and gs://): the same bytes as on
local disk, whole objects only, resume from the completion markers."""

from __future__ import annotations

import secrets

import pytest

fsspec = pytest.importorskip("fsspec", reason="fsspec is not installed (synthgen[distributed])")

from synthgen.errors import ConfigError, SynthgenError  # noqa: E402
from synthgen.storage import RemotePath, file_names, read_many, resolve  # noqa: E402
from synthgen.writers import WRITERS  # noqa: E402
from synthgen.writers.atomic import OutputError, write_bytes, write_json  # noqa: E402
from synthgen.writers.manifest import ManifestWriter  # noqa: E402

from .helpers import INFO, make_samples, records, tree  # noqa: E402


@pytest.fixture
def url():
    """A fresh memory:// folder, removed afterwards (the memory store is per process)."""
    root = f"memory://synthgen-test-{secrets.token_hex(4)}/data"
    yield root
    fs = fsspec.filesystem("memory")
    if fs.exists(root):
        fs.rm(root, recursive=True)


def remote_tree(root: str) -> dict[str, bytes]:
    """Every object under the URL `root` (relative path → bytes)."""
    fs, path = fsspec.core.url_to_fs(root)
    return {f[len(path) + 1 :]: fs.cat_file(f) for f in sorted(fs.find(path))}


def test_resolve_keeps_local_paths_local(tmp_path):
    assert resolve(tmp_path) == tmp_path
    assert resolve(str(tmp_path)) == tmp_path
    assert resolve(f"file://{tmp_path}") == tmp_path
    remote = resolve("memory://bucket/x")
    assert isinstance(remote, RemotePath) and str(remote / "a.png") == "memory:///bucket/x/a.png"
    assert (remote / "a" / "b.json").relative_to(remote).as_posix() == "a/b.json"
    with pytest.raises(ConfigError, match="unknown URL protocol 'nosuchfs'"):
        resolve("nosuchfs://bucket/x")


@pytest.mark.parametrize("name", WRITERS.names())
def test_writers_put_the_same_bytes_as_on_disk(tmp_path, url, name):
    samples = make_samples()
    for root in (tmp_path, url):
        writer, manifest = WRITERS.get(name)(root, INFO), ManifestWriter(root)
        for s in samples[::-1]:
            writer.write(s)
            manifest.write(s)
        writer.finalize(records(samples))
        manifest.finalize(manifest.records())
    local = tree(tmp_path)
    assert local and remote_tree(url) == local
    assert not [p for p in remote_tree(url) if p.endswith(".tmp")]


def test_manifest_resume_bookkeeping_on_a_url(url):
    samples = make_samples()
    manifest = ManifestWriter(url)
    for s in samples[:3]:
        manifest.write(s)
    # an unreadable part and a stray temporary object do not count as done
    write_bytes(f"{url}/.parts/manifest/{samples[3].index:06d}.json", b"{not json")
    write_bytes(f"{url}/.parts/manifest/.000009.json.1.ab.tmp", b"{}")
    assert manifest.done_indices() == {s.index for s in samples[:3]}
    with pytest.raises(SynthgenError, match=rf"not done .*{samples[3].index}"):
        manifest.records([s.index for s in samples[:4]])
    assert [r["index"] for r in manifest.records()] == sorted(s.index for s in samples[:3])


def test_read_many_reports_missing_files(url, tmp_path):
    write_json(f"{url}/a.json", {"a": 1})
    (tmp_path / "b.json").write_text("{}")
    found = read_many([resolve(f"{url}/a.json"), resolve(f"{url}/nope.json"),
                       tmp_path / "b.json", tmp_path / "nope.json"])
    assert found[resolve(f"{url}/a.json")] == b'{"a":1}\n'
    assert isinstance(found[resolve(f"{url}/nope.json")], FileNotFoundError)
    assert found[tmp_path / "b.json"] == b"{}"
    assert isinstance(found[tmp_path / "nope.json"], FileNotFoundError)
    assert file_names(resolve(url)) == {"a.json"} and file_names(tmp_path / "x") == set()


def test_non_object_store_writes_through_a_temporary_name(tmp_path, monkeypatch):
    """A filesystem without atomic puts (here fsspec's local one) gets temp + move; a failed
    move leaves the old file and no temporary behind, and names the file."""
    from fsspec.implementations.local import LocalFileSystem

    fs = LocalFileSystem()
    target = RemotePath(fs, tmp_path.as_posix()) / "sub" / "x.json"
    write_json(target, {"v": 1})
    assert (tmp_path / "sub" / "x.json").read_text() == '{"v":1}\n'

    def broken_move(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fs, "mv", broken_move)
    with pytest.raises(OutputError, match=r"could not write .*x\.json: No space left"):
        write_json(target, {"v": 2})
    assert (tmp_path / "sub" / "x.json").read_text() == '{"v":1}\n'
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["x.json"]


def test_object_store_failure_is_an_output_error(url, monkeypatch):
    fs = fsspec.filesystem("memory")

    def denied(*args, **kwargs):
        raise PermissionError(13, "Access Denied")

    monkeypatch.setattr(fs, "pipe_file", denied)
    with pytest.raises(OutputError, match=r"could not write memory://.*y\.png: Access Denied"):
        write_bytes(f"{url}/y.png", b"png")


@pytest.mark.gl
def test_generate_to_memory_resumes_to_the_same_dataset(tmp_path, url, monkeypatch):
    """A job written to memory:// is interrupted after a sample's files but before its
    completion marker; --resume then gives the bytes of an uninterrupted local run."""
    from synthgen.generate import generate
    from synthgen.job import parse_recipe

    job = parse_recipe({
        "samples": 6, "seed": 5, "product": {"type": "bottle_cap"}, "good_fraction": 0.3,
        "defects": [{"type": "bulge", "radius": [2, 4], "height": [0.4, 1.0]}],
        "render": {"size": 64}, "output": {"formats": ["mvtec", "coco", "yolo"]},
    })
    reference = generate(job, tmp_path / "local")
    assert reference.complete

    original = ManifestWriter.write

    def interrupted(self, sample):
        if sample.index == 3:
            raise KeyboardInterrupt  # the files of sample 3 are written, its marker is not
        original(self, sample)

    monkeypatch.setattr(ManifestWriter, "write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        generate(job, url)
    monkeypatch.setattr(ManifestWriter, "write", original)
    assert ManifestWriter(url).done_indices() == {0, 1, 2}
    with pytest.raises(ConfigError, match="--resume"):
        generate(job, url)
    with pytest.raises(ConfigError, match="worker processes cannot reach"):
        generate(job, url, resume=True, workers=2)
    report = generate(job, url, resume=True)
    assert (report.made, report.skipped, report.complete) == (3, 3, True)
    assert str(report.out) == url.replace("memory://", "memory:///")
    local = tree(tmp_path / "local")  # everything, the bookkeeping in .parts included
    assert "manifest.jsonl" in local and remote_tree(url) == local
