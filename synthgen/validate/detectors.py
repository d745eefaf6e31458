"""The detectors a validation can score: a trainer run, a Python callable, a command.

    detector = parse_detector("runs/unet")                      # the run's own threshold
    detector = parse_detector("my_scorer.py:score", 0.5)        # (H, W, 3) uint8 → float
    detector = parse_detector("cmd:python my_scorer.py", 0.5)   # paths on stdin → scores
    scores, maps = detector.score(paths, images)

`parse_detector` checks everything that can be checked without images (the run folder and
its checkpoint, the file and the function, the command's program, the threshold), so a bad
detector is reported before any rendering. A detector calls an image defective when its
score is at least its threshold.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import shlex
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from synthgen.errors import ConfigError, SynthgenError

log = logging.getLogger(__name__)

CHUNK = 64
"""Images per call of the trainer's predict_run (bounds memory)."""


class DetectorError(SynthgenError, RuntimeError):
    """A detector failed or answered something that is not one score per image."""


@dataclass(frozen=True)
class Detector:
    """A scorer of images with its decision threshold.

    Attributes:
        label: the name in figures and tables.
        spec: the --detector text it was made from.
        kind: "run", "callable" or "command".
        threshold: score at or above which an image is called defective.
        scorer: (paths, images) → (scores (N,) float64, maps list of (h, w)
            float32 arrays or None per image, or None).
    """

    label: str
    spec: str
    kind: str
    threshold: float
    scorer: Callable[..., tuple[np.ndarray, list | None]]

    def score(self, paths: Sequence[Path], images: Sequence[np.ndarray] | None = None
              ) -> tuple[np.ndarray, list | None]:
        """Scores of the images (written at `paths`; `images` the same as (H, W, 3) uint8).

        Returns:
            (N,) float64 scores and, for trainer runs that give maps, a list of N (h, w)
            float32 maps (0-1, 1 = twice the run's pixel threshold), else None.

        Raises:
            DetectorError: a failure of the detector, or not one finite score per image.
        """
        scores, maps = self.scorer(list(paths), images)
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        if len(scores) != len(paths):
            raise DetectorError(f"detector {self.spec!r} gave {len(scores)} scores for "
                                f"{len(paths)} images")
        if not np.isfinite(scores).all():
            bad = int(np.flatnonzero(~np.isfinite(scores))[0])
            raise DetectorError(f"detector {self.spec!r} gave a score that is not a finite "
                                f"number for {paths[bad]}")
        return scores, maps

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "spec": self.spec, "kind": self.kind,
                "threshold": self.threshold}


def parse_detector(spec: str, threshold: float | None = None) -> Detector:
    """A checked detector from its --detector text.

    Args:
        spec: a trainer run folder; ``path.py:function``; or ``cmd:COMMAND`` (the command
            reads image paths on stdin, one per line, and prints one score per line).
        threshold: required for callables and commands; for a run folder it replaces the
            run's validation threshold when given.

    Raises:
        ConfigError: what is wrong (missing folder, file, function, program, threshold).
    """
    if threshold is not None and not math.isfinite(threshold):
        raise ConfigError(f"--threshold {threshold} for {spec!r}: must be a finite number")
    if spec.startswith("cmd:"):
        return _command(spec, threshold)
    path, _, function = spec.rpartition(":")
    if path.endswith(".py") and function:
        return _callable(spec, Path(path), function, threshold)
    if spec.endswith(".py"):
        raise ConfigError(f"--detector {spec!r}: name the function too, as path.py:function")
    return _run(spec, threshold)


def _need_threshold(spec: str, threshold: float | None) -> float:
    if threshold is None:
        raise ConfigError(f"--detector {spec!r}: a callable or command detector needs a "
                          "--threshold (the score at or above which an image is defective)")
    return float(threshold)


def _callable(spec: str, path: Path, name: str, threshold: float | None) -> Detector:
    if not path.is_file():
        raise ConfigError(f"--detector {spec!r}: {str(path)!r} does not exist")
    module_name = f"synthgen_detector_{abs(hash(str(path.resolve())))}"
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as error:  # the user's file: report it, do not crash
        raise ConfigError(f"--detector {spec!r}: importing {path} failed: {error!r}") from None
    function = getattr(module, name, None)
    if not callable(function):
        found = sorted(k for k, v in vars(module).items()
                       if callable(v) and not k.startswith("_") and
                       getattr(v, "__module__", None) == module_name)
        raise ConfigError(f"--detector {spec!r}: {path} has no function {name!r}; it defines: "
                          f"{', '.join(found) or 'none'}")
    value = _need_threshold(spec, threshold)

    def scorer(paths, images):
        if images is None:
            from PIL import Image

            images = [np.asarray(Image.open(p).convert("RGB")) for p in paths]
        out = []
        for p, image in zip(paths, images, strict=True):
            try:
                out.append(float(function(image)))
            except Exception as error:
                raise DetectorError(f"detector {spec!r} failed on {p}: {error!r}") from error
        return np.array(out), None

    return Detector(f"{path.stem}:{name}", spec, "callable", value, scorer)


def _command(spec: str, threshold: float | None) -> Detector:
    text = spec[len("cmd:"):].strip()
    try:
        argv = shlex.split(text)
    except ValueError as error:
        raise ConfigError(f"--detector {spec!r}: cannot split the command: {error}") from None
    if not argv:
        raise ConfigError(f"--detector {spec!r}: no command after cmd:")
    if shutil.which(argv[0]) is None and not Path(argv[0]).is_file():
        raise ConfigError(f"--detector {spec!r}: program {argv[0]!r} not found")
    missing = [a for a in argv[1:] if a.endswith(".py") and not Path(a).is_file()]
    if missing:
        raise ConfigError(f"--detector {spec!r}: {missing[0]!r} does not exist")
    value = _need_threshold(spec, threshold)

    def scorer(paths, images):
        stdin = "".join(f"{Path(p).resolve()}\n" for p in paths)
        try:
            done = subprocess.run(argv, input=stdin, capture_output=True, text=True,
                                  check=False)
        except OSError as error:
            raise DetectorError(f"detector {spec!r} could not start: {error}") from None
        if done.returncode != 0:
            raise DetectorError(f"detector {spec!r} exited with {done.returncode}: "
                                f"{done.stderr.strip()[-500:]}")
        lines = [line for line in done.stdout.splitlines() if line.strip()]
        try:
            return np.array([float(line.split()[-1]) for line in lines]), None
        except ValueError:
            raise DetectorError(f"detector {spec!r}: expected one number per line, got "
                                f"{done.stdout[:200]!r}") from None

    return Detector(Path(argv[-1]).stem if len(argv) > 1 else argv[0], spec, "command",
                    value, scorer)


def _run(spec: str, threshold: float | None) -> Detector:
    """A run folder of the bundled trainer (run.json + best.pt or last.pt)."""
    folder = Path(spec)
    if not folder.is_dir():
        raise ConfigError(f"--detector {spec!r}: no such run folder, .py:function or cmd: "
                          "command (a run folder comes from synthgen train)")
    run_file = folder / "run.json"
    if not run_file.is_file():
        raise ConfigError(f"--detector {spec!r}: not a training run (no run.json); "
                          "run synthgen train first")
    if not ((folder / "best.pt").is_file() or (folder / "last.pt").is_file()):
        raise ConfigError(f"--detector {spec!r}: the run has no checkpoint (best.pt, last.pt)")
    try:
        run = json.loads(run_file.read_text())
        own = float(run["thresholds"]["image"])
    except (ValueError, KeyError, TypeError) as error:
        raise ConfigError(f"--detector {spec!r}: run.json has no image threshold "
                          f"({error!r})") from None
    value = own if threshold is None else float(threshold)
    pixel = run.get("thresholds", {}).get("pixel")

    def scorer(paths, images):
        return _predict(folder, paths, pixel is not None)

    label = f"{folder.name} ({run.get('model', '?')})"
    return Detector(label, spec, "run", value, scorer)


def _predict(folder: Path, paths: Sequence[Path], with_maps: bool
             ) -> tuple[np.ndarray, list | None]:
    """The trainer's predict_run on chunks of images (into a scratch folder); its map PNGs
    (0-255 over [0, 2 x pixel threshold]) read back as (h, w) float32 in [0, 1]."""
    import tempfile

    from PIL import Image

    from synthgen.detect.run import predict_run

    scores: list[float] = []
    maps: list | None = [] if with_maps else None
    with tempfile.TemporaryDirectory(prefix="synthgen_validate_") as scratch:
        target = Path(scratch)
        for start in range(0, len(paths), CHUNK):
            chunk = paths[start:start + CHUNK]
            try:
                found = predict_run(folder, chunk, target)
            except SynthgenError:
                raise
            except Exception as error:  # the model failed on these images
                raise DetectorError(f"run {folder} failed to score {chunk[0]} ...: "
                                    f"{error!r}") from error
            scores += [float(entry["score"]) for entry in found]
            if maps is not None:
                for p in chunk:
                    file = target / f"{Path(p).stem}_map.png"
                    maps.append(np.asarray(Image.open(file), dtype=np.float32) / 255.0
                                if file.is_file() else None)
    return np.array(scores), maps


def parse_detectors(specs: Sequence[str], thresholds: Sequence[float]) -> list[Detector]:
    """Detectors from --detector texts and --threshold values.

    Thresholds go to the detectors that need one (callables and commands), in order: give
    one value (shared by all of them) or exactly one per such detector. Run folders use
    the threshold their training chose on its validation split.

    Raises:
        ConfigError: a bad detector, or a number of thresholds that does not match.
    """
    if not specs:
        raise ConfigError("give at least one --detector")
    needing = [s for s in specs if s.startswith("cmd:") or ".py:" in s]
    if thresholds and len(thresholds) not in (1, len(needing)):
        raise ConfigError(f"{len(thresholds)} --threshold values for {len(needing)} callable "
                          "or command detectors: give one shared value or one per detector")
    values = iter(thresholds if len(thresholds) != 1 else list(thresholds) * len(needing))
    detectors = []
    for spec in specs:
        detectors.append(parse_detector(spec, next(values, None) if spec in needing else None))
    labels = [d.label for d in detectors]
    out = []
    for i, detector in enumerate(detectors):  # labels unique for legends
        if labels.count(detector.label) > 1:
            detector = Detector(f"{detector.label} #{i + 1}", detector.spec, detector.kind,
                                detector.threshold, detector.scorer)
        out.append(detector)
    return out
