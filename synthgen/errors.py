"""The exceptions synthgen raises. Each carries one sentence a user can act on."""

from __future__ import annotations


class SynthgenError(Exception):
    """Base class of every error synthgen raises on purpose."""


class ConfigError(SynthgenError, ValueError):
    """A recipe or parameter is invalid; the message names the field and what is accepted."""


class MeshError(SynthgenError, ValueError):
    """A mesh is empty, broken or not watertight; the message names the file and the fault."""


class DefectNotApplicable(SynthgenError, ValueError):
    """A defect cannot be applied to this part (no notch, no face in the region, ...)."""


class MissingDependency(SynthgenError, ImportError):
    """An optional package is missing; the message gives the pip command that installs it."""

    def __init__(self, feature: str, extra: str, package: str | None = None):
        self.feature = feature
        self.extra = extra
        what = f" (needs {package})" if package else ""
        super().__init__(
            f"{feature} is not available{what}: install it with "
            f'pip install "synthgen[{extra}]"'
        )
