"""Synthgen for Blender: a sidebar panel over the synthgen library.

Installs as a Blender 4.2+ extension (blender_manifest.toml) or as a legacy add-on (the
`bl_info` below); `scripts/build_addon.py` builds the zip. The zip carries the synthgen
package and the packages it needs that Blender does not ship in `_vendor/`, which
`register` appends to `sys.path` (appended, so a synthgen or numpy already importable in
Blender's Python wins) and `unregister` removes again.

Panel: View3D > Sidebar > Synthgen. Everything it does goes through the library: recipes
are validated by `synthgen.job.parse_recipe`, samples made by `synthgen.generate.JobRunner`
and written by the same writers and manifest as the CLI.
"""

from __future__ import annotations

import sys
from pathlib import Path

bl_info = {
    "name": "Synthgen",
    "author": "synthgen developers",
    "version": (0, 1, 0),
    "blender": (4, 2, 0),
    "location": "View3D > Sidebar > Synthgen",
    "description": "Labelled synthetic datasets of products with geometric defects",
    "category": "Render",
}

VENDOR = Path(__file__).resolve().parent / "_vendor"
_added_paths: list[str] = []
_modules: list = []


def _add_vendor_path() -> None:
    if VENDOR.is_dir() and str(VENDOR) not in sys.path:
        sys.path.append(str(VENDOR))
        _added_paths.append(str(VENDOR))


def register() -> None:
    """Make the library importable, then register properties, operators and panels."""
    _add_vendor_path()
    from . import operators, panels, properties

    _modules[:] = [properties, operators, panels]
    for module in _modules:
        module.register()


def unregister() -> None:
    """Unregister everything `register` did, in reverse, and forget the vendor path."""
    for module in reversed(_modules):
        module.unregister()
    _modules.clear()
    for path in _added_paths:
        if path in sys.path:
            sys.path.remove(path)
    _added_paths.clear()
