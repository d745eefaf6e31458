"""The manifest: every sampled number of every sample, and the job's record of what is done.

    <root>/.parts/manifest/<stem>.json    one sample's record, written by `write`
    <root>/manifest.jsonl                 every record, one line each, written by `finalize`

A part file is the marker that its sample is complete: the pipeline writes it last, after
every format writer has written the sample, so a resumed job redoes exactly the samples
without one. A part that cannot be read or parsed counts as not done.

`root` may be a local folder or a `synthgen.storage.RemotePath` (fsspec URL): the parts are
then found with one listing and read in one batched call.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from synthgen.errors import SynthgenError
from synthgen.storage import Location, file_names, read_many, resolve
from synthgen.writers.atomic import dumps_json, write_json, write_text
from synthgen.writers.base import DatasetInfo, LabelledSample

log = logging.getLogger(__name__)


class ManifestWriter:
    """Writes per-sample manifest parts and the dataset's manifest.jsonl.

    Args:
        root: the job's output folder (a local path, a RemotePath or an fsspec URL).
        info: unused; accepted so that the manifest fits the Writer protocol.
    """

    name = "manifest"

    def __init__(self, root: Location | str, info: DatasetInfo | None = None) -> None:
        self.root = resolve(root)
        self.parts = self.root / ".parts" / "manifest"
        self.info = info

    @property
    def manifest_file(self) -> Location:
        return self.root / "manifest.jsonl"

    def part_path(self, index: int) -> Location:
        """Path of sample `index`'s part file."""
        return self.parts / f"{index:06d}.json"

    def write(self, sample: LabelledSample) -> None:
        """Store `sample.record` as the sample's part file (atomically): marks it done."""
        write_json(self.part_path(sample.index), sample.record)

    def _read(self, path: Location, data: bytes | Exception | None = None) -> dict[str, Any] | None:
        """The record in `path` (or in `data`, its bytes or the error reading them), or None
        (with a warning) if it cannot be read or parsed."""
        try:
            if data is None:
                data = path.read_bytes()
            if isinstance(data, Exception):
                raise data
            record = json.loads(data.decode("utf-8"))
        except (OSError, ValueError) as exc:
            log.warning(
                "manifest part %s is unreadable (%s): its sample counts as not done", path, exc
            )
            return None
        if not isinstance(record, dict):
            log.warning(
                "manifest part %s holds no JSON object: its sample counts as not done", path
            )
            return None
        return record

    def _part_files(self) -> dict[int, Location]:
        """Sample index → part file, for every file named `<digits>.json` (temp files and
        anything else are ignored)."""
        found = {}
        for name in file_names(self.parts):
            stem, dot, suffix = name.rpartition(".")
            if dot and suffix == "json" and stem.isdigit():
                found[int(stem)] = self.parts / name
        return found

    def _read_all(self, files: dict[int, Location]) -> dict[int, dict[str, Any] | None]:
        """Index → record (None when unreadable) of the given part files, read in a batch."""
        data = read_many(files.values())
        return {i: self._read(p, data[p]) for i, p in files.items()}

    def done_indices(self) -> set[int]:
        """Indices of the samples whose part file exists and parses."""
        return {i for i, r in self._read_all(self._part_files()).items() if r is not None}

    def records(self, indices: Iterable[int] | None = None) -> list[dict[str, Any]]:
        """Records of the given samples (default: every done sample), in index order.

        Raises:
            SynthgenError: a requested sample has no readable part (it is not done).
        """
        files = self._part_files()
        if indices is None:
            found = self._read_all(files)
            return [found[i] for i in sorted(found) if found[i] is not None]
        wanted = sorted(set(indices))
        found = self._read_all({i: files[i] for i in wanted if i in files})
        records, missing = [], []
        for i in wanted:
            record = found.get(i)
            if record is None:
                missing.append(i)
            else:
                records.append(record)
        if missing:
            shown = ", ".join(str(i) for i in missing[:10]) + (", ..." if len(missing) > 10 else "")
            raise SynthgenError(
                f"{len(missing)} samples are not done (no readable manifest part in "
                f"{self.parts}): {shown}; run the job again to generate them"
            )
        return records

    def finalize(self, records: Sequence[dict[str, Any]]) -> None:
        """Write manifest.jsonl: one compact line per record, keys sorted, in index order
        (records with an integer "index" are sorted by it; otherwise the given order)."""
        rows = list(records)
        if all(isinstance(r.get("index"), int) for r in rows):
            rows.sort(key=lambda r: r["index"])
        write_text(self.manifest_file, "".join(dumps_json(r) for r in rows))
        log.info("manifest: %d records → %s", len(rows), self.manifest_file)
