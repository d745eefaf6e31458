"""The manifest: every sampled number of every sample, and the job's record of what is done.

    <root>/.parts/manifest/<stem>.json    one sample's record, written by `write`
    <root>/manifest.jsonl                 every record, one line each, written by `finalize`

A part file is the marker that its sample is complete: the pipeline writes it last, after
every format writer has written the sample, so a resumed job redoes exactly the samples
without one. A part that cannot be read or parsed counts as not done.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from synthgen.errors import SynthgenError
from synthgen.writers.atomic import dumps_json, write_json, write_text
from synthgen.writers.base import DatasetInfo, LabelledSample

log = logging.getLogger(__name__)


class ManifestWriter:
    """Writes per-sample manifest parts and the dataset's manifest.jsonl.

    Args:
        root: the job's output folder.
        info: unused; accepted so that the manifest fits the Writer protocol.
    """

    name = "manifest"

    def __init__(self, root: Path, info: DatasetInfo | None = None) -> None:
        self.root = Path(root)
        self.parts = self.root / ".parts" / "manifest"
        self.info = info

    @property
    def manifest_file(self) -> Path:
        return self.root / "manifest.jsonl"

    def part_path(self, index: int) -> Path:
        """Path of sample `index`'s part file."""
        return self.parts / f"{index:06d}.json"

    def write(self, sample: LabelledSample) -> None:
        """Store `sample.record` as the sample's part file (atomically): marks it done."""
        write_json(self.part_path(sample.index), sample.record)

    def _read(self, path: Path) -> dict[str, Any] | None:
        """The record in `path`, or None (with a warning) if it cannot be read or parsed."""
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
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

    def _part_files(self) -> dict[int, Path]:
        """Sample index → part file, for every file named `<digits>.json` (temp files and
        anything else are ignored)."""
        if not self.parts.is_dir():
            return {}
        found = {}
        for path in self.parts.iterdir():
            if path.suffix == ".json" and path.stem.isdigit() and path.is_file():
                found[int(path.stem)] = path
        return found

    def done_indices(self) -> set[int]:
        """Indices of the samples whose part file exists and parses."""
        return {i for i, p in self._part_files().items() if self._read(p) is not None}

    def records(self, indices: Iterable[int] | None = None) -> list[dict[str, Any]]:
        """Records of the given samples (default: every done sample), in index order.

        Raises:
            SynthgenError: a requested sample has no readable part (it is not done).
        """
        files = self._part_files()
        if indices is None:
            out = [(i, self._read(files[i])) for i in sorted(files)]
            return [r for _, r in out if r is not None]
        wanted = sorted(set(indices))
        records, missing = [], []
        for i in wanted:
            record = self._read(files[i]) if i in files else None
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
