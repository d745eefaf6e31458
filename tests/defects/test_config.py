"""Defect configs: defaults, validated limits, errors that name the field."""

from __future__ import annotations

import pytest

from synthgen.defects import DEFECTS, make_defect
from synthgen.errors import ConfigError

SIZE_FIELD = {
    "bulge": "height", "dent": "depth", "short_notch": "length", "chip": "width",
    "hole": "diameter", "crack": "length", "scratch": "width",
}


@pytest.mark.parametrize("name", DEFECTS.names())
def test_defaults_validate(name):
    defect = make_defect(name)
    assert defect.name == name and defect.config.regions is None


@pytest.mark.parametrize("name", DEFECTS.names())
def test_bad_settings_raise_config_error(name):
    field = SIZE_FIELD[name]
    with pytest.raises(ConfigError, match=f"defect {name}: {field}: .*must lie within"):
        make_defect(name, **{field: [-1.0, 1.0]})
    with pytest.raises(ConfigError, match=f"defect {name}: {field}: .*low > high"):
        make_defect(name, **{field: [2.0, 1.0]})
    with pytest.raises(ConfigError, match=f"defect {name}: colour: unknown key"):
        make_defect(name, colour="red")
    with pytest.raises(ConfigError, match=f"{field}: .*must lie within"):
        make_defect(name, **{field: 1e6})


def test_other_limits():
    with pytest.raises(ConfigError, match="through_probability"):
        make_defect("hole", through_probability=1.5)
    with pytest.raises(ConfigError, match="jag"):
        make_defect("crack", jag=90.0)
    with pytest.raises(ConfigError, match="min_edge_angle"):
        make_defect("chip", min_edge_angle=0.0)
    with pytest.raises(ConfigError, match="'blob' is not a defect type"):
        make_defect("blob")
