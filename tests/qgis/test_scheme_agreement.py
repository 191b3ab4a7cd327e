"""The engine and the plugin each read class schemes themselves (the plugin never imports the
engine); both must read every bundled scheme to the same classes, values and colours."""
from __future__ import annotations

import pytest
from conftest import REPO

SCHEMES = sorted((REPO / "resources" / "schemes").glob("*.json"))


@pytest.mark.parametrize("path", SCHEMES, ids=[p.stem for p in SCHEMES])
def test_engine_and_plugin_read_the_same_scheme(path):
    from sparsevit.schemes import IGNORE
    from sparsevit.schemes import load_scheme as engine_load
    from sparsevit_qgis.core.schemes import load_scheme as plugin_load

    engine, plugin = engine_load(path), plugin_load(path)
    assert engine.name == plugin.name
    assert [(c.value, c.name, c.color.lower()) for c in engine.classes] == \
        [(c.value, c.name, c.color.lower()) for c in plugin.classes]
    assert engine.ignore_value == plugin.ignore_value == IGNORE


def test_every_scheme_is_checked():
    assert {"eurosat", "eurosat_coarse", "dfc2020"} <= {p.stem for p in SCHEMES}
