"""Build the Synthgen Blender add-on zip (a Blender 4.2+ extension and a legacy add-on).

    python scripts/build_addon.py                      # dist/synthgen_blender-<version>.zip
    python scripts/build_addon.py --deps none          # the add-on and synthgen only

The zip holds one folder, `synthgen_blender/`: the add-on (synthgen/blender_addon/, with
blender_manifest.toml and bl_info, so both "Install from Disk" for extensions and the legacy
add-on installer accept it) and `_vendor/`, which the add-on appends to sys.path:

- the synthgen package itself;
- with `--deps bundle` (the default), every installed distribution synthgen's core needs,
  transitively, except those Blender ships (numpy, requests, zstandard, cython, ...) and
  the command-line / plotting ones the add-on never imports (typer, rich, matplotlib).
  They are copied from this Python environment, file by file from each distribution's
  RECORD (dist-info included), so the build works offline; compiled packages are for this
  platform and Python, which must match Blender's (Python 3.11 for Blender 4.2-5.0), and
  the manifest's `platforms` is set to this one.

The alternative Blender documents for extensions, wheels listed in the manifest's `wheels`
field, needs the wheel files themselves (a download, or a local wheelhouse); the vendored
folder needs neither and works the same for legacy installs.
"""

from __future__ import annotations

import argparse
import importlib.metadata as metadata
import platform
import re
import sys
import tomllib
import zipfile
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
ADDON = ROOT / "synthgen" / "blender_addon"
FOLDER = "synthgen_blender"

#: Distributions Blender's own Python ships (Blender 4.2-5.0), never bundled.
BLENDER_SHIPS = {"numpy", "requests", "zstandard", "cython", "certifi", "idna", "urllib3",
                 "charset-normalizer", "autopep8", "pycodestyle", "bpy"}
#: Core requirements only the CLI or the plots use (the add-on never imports them).
NOT_NEEDED = {"typer", "rich", "matplotlib"}
SKIP_PARTS = {"__pycache__"}


def _platform_tag() -> str:
    machine = platform.machine().lower()
    arch = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(
        machine, machine)
    system = {"linux": "linux", "darwin": "macos", "win32": "windows"}.get(sys.platform,
                                                                          sys.platform)
    return f"{system}-{arch}"


def vendored_distributions(include: list[str] | None = None) -> list[str]:
    """Canonical names of the installed distributions the add-on needs, sorted.

    Synthgen's core requirements (pyproject.toml's dependencies, no extras), transitively,
    minus `BLENDER_SHIPS` and `NOT_NEEDED`, plus `include`.

    Raises:
        SystemExit: a needed distribution is not installed here.
    """
    env = default_environment() | {"extra": ""}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    todo = [Requirement(r) for r in project["dependencies"]]
    todo += [Requirement(name) for name in include or []]
    seen: set[str] = set()
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in seen or name in BLENDER_SHIPS or name in NOT_NEEDED:
            continue
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            raise SystemExit(f"{name} is needed by the add-on but not installed here") from None
        todo += [Requirement(r) for r in requires]
    return sorted(seen)


def _distribution_files(name: str) -> list[tuple[Path, str]]:
    """(source file, path inside _vendor) of one installed distribution."""
    dist = metadata.distribution(name)
    out = []
    for entry in dist.files or []:
        parts = Path(entry).parts
        if parts[0] == ".." or SKIP_PARTS & set(parts) or entry.suffix == ".pyc":
            continue  # console scripts outside site-packages, byte code
        source = Path(dist.locate_file(entry))
        if source.is_file():
            out.append((source, "/".join(parts)))
    return out


def _manifest_text() -> str:
    text = (ADDON / "blender_manifest.toml").read_text()
    return re.sub(r"^platforms = .*$", f'platforms = ["{_platform_tag()}"]', text,
                  flags=re.MULTILINE)


def _tree(folder: Path, skip: set[str]) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()
                  and not (SKIP_PARTS | skip) & set(p.relative_to(folder).parts)
                  and p.suffix != ".pyc")


def build(out: Path, deps: str = "bundle", include: list[str] | None = None,
          compress: bool = True) -> dict[str, int]:
    """Write the add-on zip; returns counts of files per part."""
    out.parent.mkdir(parents=True, exist_ok=True)
    mode = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    counts = {"addon": 0, "synthgen": 0, "dependencies": 0}
    tmp = out.with_suffix(".zip.part")
    with zipfile.ZipFile(tmp, "w", mode, compresslevel=6 if compress else None) as archive:
        for path in _tree(ADDON, skip=set()):
            rel = path.relative_to(ADDON).as_posix()
            if rel == "blender_manifest.toml":
                archive.writestr(f"{FOLDER}/{rel}", _manifest_text())
            else:
                archive.write(path, f"{FOLDER}/{rel}")
            counts["addon"] += 1
        package = ROOT / "synthgen"
        for path in _tree(package, skip={"blender_addon"}):
            archive.write(path, f"{FOLDER}/_vendor/synthgen/{path.relative_to(package).as_posix()}")
            counts["synthgen"] += 1
        if deps == "bundle":
            for name in vendored_distributions(include):
                for source, rel in _distribution_files(name):
                    archive.write(source, f"{FOLDER}/_vendor/{rel}")
                    counts["dependencies"] += 1
    tmp.replace(out)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None,
                        help="zip to write (default dist/synthgen_blender-<version>.zip)")
    parser.add_argument("--deps", choices=("bundle", "none"), default="bundle",
                        help="bundle the needed packages (default) or only synthgen")
    parser.add_argument("--include", action="append", default=[],
                        help="also bundle this installed distribution (repeatable)")
    parser.add_argument("--store", action="store_true", help="no compression (faster)")
    parser.add_argument("--list", action="store_true",
                        help="print the distributions that would be bundled and exit")
    args = parser.parse_args()
    if args.list:
        print("\n".join(vendored_distributions(args.include)))
        return
    version = re.search(r'^version = "(.+)"', (ADDON / "blender_manifest.toml").read_text(),
                        re.MULTILINE).group(1)
    out = args.out or ROOT / "dist" / f"{FOLDER}-{version}.zip"
    counts = build(out, args.deps, args.include, compress=not args.store)
    size = out.stat().st_size / 2**20
    print(f"wrote {out} ({size:.1f} MiB): {counts['addon']} add-on files, "
          f"{counts['synthgen']} synthgen files, {counts['dependencies']} dependency files")


if __name__ == "__main__":
    main()
