"""synthgen: labelled synthetic images of manufactured products with geometric defects.

Importing the package is cheap: it pulls in numpy, trimesh and pydantic only. Renderers,
training and augmentation live in sub-packages that import their heavy dependencies lazily.
"""

from synthgen.errors import (
    ConfigError,
    DefectNotApplicable,
    MeshError,
    MissingDependency,
    SynthgenError,
)

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DefectNotApplicable",
    "MeshError",
    "MissingDependency",
    "SynthgenError",
    "__version__",
]
