"""Where datasets live: local folders, or object stores and other filesystems through fsspec.

    out = resolve("out/bottles")              # a pathlib.Path: atomic rename, SYNTHGEN_FSYNC
    out = resolve("file:///data/bottles")     # the same local Path
    out = resolve("s3://bucket/bottles")      # a RemotePath on s3fs (credentials from the
                                              # environment: AWS_*, GOOGLE_APPLICATION_...)

A `RemotePath` offers the part of `pathlib.Path` the writers use (`/`, name, stem, suffix,
parent, exists, iterdir, read_text, ...), so a writer builds its paths the same way for both.
Writes go through `put_bytes`: an object store (S3, GCS, Azure, memory) stores an object
only when its single upload completes, so a reader sees the whole object or none; on other
fsspec filesystems the bytes go to a hidden temporary name first and are then moved into
place. Either way an interrupted run leaves no partial file behind a final name, which is
what `--resume` relies on.

fsspec is imported only when a URL is resolved (`pip install "synthgen[distributed]"`;
s3:// also needs s3fs, gs:// gcsfs).
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any, Union

from synthgen.errors import ConfigError, MissingDependency

log = logging.getLogger(__name__)

_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://")

ATOMIC_PUT = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oci", "oss",
                        "memory"})
"""Protocols whose single put is atomic (object stores): no temporary key is needed."""

PROCESS_LOCAL = frozenset({"memory"})
"""Protocols whose files live in the writing process only (no worker processes possible)."""


def _fsspec() -> Any:
    try:
        import fsspec
    except ImportError as exc:
        raise MissingDependency("output to URLs (fsspec)", "distributed", "fsspec") from exc
    return fsspec


class RemotePath:
    """A file or folder on an fsspec filesystem, addressed like a `pathlib.PurePosixPath`.

    Args:
        fs: the fsspec filesystem.
        path: the path on `fs`, without protocol ("bucket/data/x.png", "/data/x.png").
    """

    __slots__ = ("_pure", "fs")

    def __init__(self, fs: Any, path: str | PurePosixPath) -> None:
        self.fs = fs
        self._pure = PurePosixPath(str(path))

    # -- pure path operations ------------------------------------------------------------

    def _with(self, pure: PurePosixPath) -> RemotePath:
        return RemotePath(self.fs, pure)

    def __truediv__(self, other: str | os.PathLike[str]) -> RemotePath:
        return self._with(self._pure / other)

    @property
    def path(self) -> str:
        """The path on the filesystem, without protocol."""
        return str(self._pure)

    @property
    def protocol(self) -> str:
        """The filesystem's main protocol ("s3", "gcs", "memory", ...)."""
        protocol = self.fs.protocol
        return protocol if isinstance(protocol, str) else protocol[0]

    name = property(lambda self: self._pure.name)
    stem = property(lambda self: self._pure.stem)
    suffix = property(lambda self: self._pure.suffix)
    parts = property(lambda self: self._pure.parts)

    @property
    def parent(self) -> RemotePath:
        return self._with(self._pure.parent)

    def with_name(self, name: str) -> RemotePath:
        return self._with(self._pure.with_name(name))

    def relative_to(self, other: RemotePath) -> PurePosixPath:
        return self._pure.relative_to(other._pure)

    def as_posix(self) -> str:
        return str(self)

    def __str__(self) -> str:
        return self.fs.unstrip_protocol(self.path)

    def __repr__(self) -> str:
        return f"RemotePath({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, RemotePath) and other.protocol == self.protocol
                and other._pure == self._pure)

    def __hash__(self) -> int:
        return hash((self.protocol, self._pure))

    # -- filesystem operations -------------------------------------------------------------

    def _fresh(self) -> str:
        """The path, with any cached listing of it and its folder dropped (other processes
        write to the same store)."""
        self.fs.invalidate_cache(self.parent.path)
        return self.path

    def exists(self) -> bool:
        return bool(self.fs.exists(self._fresh()))

    def is_dir(self) -> bool:
        return bool(self.fs.isdir(self._fresh()))

    def is_file(self) -> bool:
        return bool(self.fs.isfile(self._fresh()))

    def iterdir(self) -> Iterator[RemotePath]:
        """The entries of this folder (none when it does not exist), listed afresh."""
        self.fs.invalidate_cache(self.path)
        try:
            entries = self.fs.ls(self.path, detail=False)
        except FileNotFoundError:
            return iter(())
        return (self._with(PurePosixPath(self._strip(e))) for e in entries
                if self._strip(e) != self.path)

    def _strip(self, entry: str) -> str:
        return str(PurePosixPath(self.fs._strip_protocol(entry)))

    def read_bytes(self) -> bytes:
        return self.fs.cat_file(self.path)

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read_bytes().decode(encoding)

    def write_bytes(self, data: bytes) -> int:
        """Store `data` atomically (`put_bytes`); returns the number of bytes."""
        put_bytes(self, data)
        return len(data)

    def mkdir(self, parents: bool = False, exist_ok: bool = False) -> None:
        """Create the folder where the filesystem has folders (object stores have none)."""
        if self.protocol not in ATOMIC_PUT:
            self.fs.makedirs(self.path, exist_ok=True)

    def unlink(self, missing_ok: bool = False) -> None:
        try:
            self.fs.rm_file(self.path)
        except FileNotFoundError:
            if not missing_ok:
                raise


Location = Union[Path, RemotePath]  # noqa: UP007  (a runtime alias, used in isinstance)
"""A dataset file or folder: a local Path or a RemotePath."""


def is_url(location: object) -> bool:
    """Whether `location` is a URL string ("s3://...", "file://...", "memory://...")."""
    return isinstance(location, str) and _URL.match(location) is not None


def resolve(location: str | os.PathLike[str] | RemotePath) -> Location:
    """The Path or RemotePath that `location` names.

    Args:
        location: a local path, a `file://` URL (both become a Path), any other fsspec URL
            (`s3://bucket/key`, `gs://`, `memory://`, ...), or a RemotePath (returned as is).

    Raises:
        MissingDependency: a URL was given but fsspec (or the protocol's package, e.g. s3fs)
            is not installed.
        ConfigError: the URL's protocol is unknown to fsspec.
    """
    if isinstance(location, RemotePath | Path):
        return location
    if not is_url(location):
        return Path(location)
    scheme = _URL.match(str(location)).group("scheme").lower()
    if scheme == "file":
        return Path(str(location)[len("file://"):])
    fsspec = _fsspec()
    try:
        fs, path = fsspec.core.url_to_fs(str(location))
    except ImportError as exc:
        package = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs",
                   "az": "adlfs", "abfs": "adlfs"}.get(scheme, str(exc))
        raise MissingDependency(f"output to {scheme}:// URLs", "distributed", package) from exc
    except ValueError as exc:
        raise ConfigError(
            f"output {location!r}: unknown URL protocol {scheme!r} ({exc}); use a local "
            "folder or an fsspec URL such as s3://bucket/key, gs://bucket/key or file:///path"
        ) from exc
    return RemotePath(fs, path)


def is_process_local(location: Location) -> bool:
    """Whether files at `location` exist only inside this process (memory://)."""
    return isinstance(location, RemotePath) and location.protocol in PROCESS_LOCAL


def put_bytes(target: RemotePath, data: bytes) -> None:
    """Store `data` as the whole object `target`: one put on object stores (atomic there),
    else a hidden temporary file moved into place.

    Raises:
        OSError: the filesystem refused the write (the caller names the file).
    """
    fs = target.fs
    if target.protocol in ATOMIC_PUT:
        fs.pipe_file(target.path, data)
        return
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fs.makedirs(target.parent.path, exist_ok=True)
    try:
        fs.pipe_file(tmp.path, data)
        fs.mv(tmp.path, target.path)
    except BaseException:
        try:
            fs.rm_file(tmp.path)
        except (OSError, NotImplementedError):
            pass
        raise


def file_names(folder: Location) -> set[str]:
    """Names of the plain files directly in `folder` (empty when it does not exist; one
    listing call on an object store, never answered from a cache: other processes write
    there too)."""
    if isinstance(folder, RemotePath):
        folder.fs.invalidate_cache(folder.path)
        try:
            entries = folder.fs.ls(folder.path, detail=True)
        except FileNotFoundError:
            return set()
        return {PurePosixPath(e["name"]).name for e in entries if e.get("type") == "file"}
    try:
        with os.scandir(folder) as entries:
            return {e.name for e in entries if e.is_file()}
    except (FileNotFoundError, NotADirectoryError):
        return set()


def read_many(paths: Iterable[Location]) -> dict[Location, bytes | Exception]:
    """The bytes of each file, or the exception that reading it raised (a missing file gives
    FileNotFoundError). Remote files are fetched in one batched call (concurrently on s3fs
    and gcsfs)."""
    paths = list(paths)
    found: dict[Location, bytes | Exception] = {}
    remote = [p for p in paths if isinstance(p, RemotePath)]
    for path in paths:
        if isinstance(path, Path):
            try:
                found[path] = path.read_bytes()
            except OSError as exc:
                found[path] = exc
    by_fs: dict[int, list[RemotePath]] = {}
    for path in remote:
        by_fs.setdefault(id(path.fs), []).append(path)
    for group in by_fs.values():
        fs = group[0].fs
        data = fs.cat([p.path for p in group], on_error="return")
        stripped = {str(PurePosixPath(fs._strip_protocol(k))): v for k, v in data.items()}
        for path in group:
            value = stripped.get(path.path, FileNotFoundError(str(path)))
            found[path] = value
    return found
