"""Which bands a model reads, told from its JSON alone, and what ``info`` says about it."""
from __future__ import annotations

import json

import pytest

from sparsevit.commands.info import describe
from sparsevit.errors import InputError
from sparsevit.model_bands import read_model_bands


@pytest.fixture(scope="module")
def flexible(tmp_path_factory):
    from fixtures.bundle import write_tiny_bundle
    return write_tiny_bundle(tmp_path_factory.mktemp("flex"), band_flexible=True)


@pytest.fixture(scope="module")
def rigid(tmp_path_factory):
    from fixtures.bundle import write_tiny_bundle
    return write_tiny_bundle(tmp_path_factory.mktemp("rigid"))


def test_flexible_model_reads_subsets_holding_its_required_bands(flexible):
    mb = read_model_bands(flexible)
    assert mb.flexible and mb.required == ("B02", "B03", "B04") and len(mb.s2_bands) == 12
    plan = mb.plan(["B02", "B03", "B04", "B08", "B10"])
    assert plan["used"] == ["B02", "B03", "B04", "B08"] and plan["ignored"] == ["B10"]
    assert not plan["lacking_required"] and "B11" in plan["missing"]
    assert mb.plan(["B03", "B04", "B08"])["lacking_required"] == ["B02"]
    # the checkpoint file itself (not only the bundle folder) works too
    assert read_model_bands(flexible / "classifier.safetensors") == mb


def test_rigid_model_needs_all_its_bands(rigid):
    mb = read_model_bands(rigid)
    assert not mb.flexible and mb.required == mb.s2_bands
    assert "cannot run" in mb.describe(["B02", "B03", "B04"])


def test_info_reports_the_model_plan(flexible, rigid, tmp_path, repo_root):
    import numpy as np
    import rasterio
    rgb = tmp_path / "rgb.tif"
    with rasterio.open(rgb, "w", driver="GTiff", width=16, height=16, count=3, dtype="uint16",
                       crs="EPSG:32633", transform=rasterio.transform.from_origin(0, 0, 10, 10)) as ds:
        ds.write(np.full((3, 16, 16), 900, np.uint16))
        ds.descriptions = ("B04", "B03", "B02")
    info = describe([rgb], model=flexible)
    assert info["model_bands"]["used"] == ["B02", "B03", "B04"]
    assert any("uses 3 of its 12 bands" in a and "missing B01" in a for a in info["actions"])
    info = describe([rgb], model=rigid)
    assert any(a.startswith("the model cannot run on this input") for a in info["actions"])


def test_unreadable_model_description_is_a_clear_error(tmp_path):
    (tmp_path / "bundle.json").write_text(json.dumps({"classifier": "c"}))
    (tmp_path / "c.json").write_text("{not json")
    with pytest.raises(InputError, match="model description"):
        read_model_bands(tmp_path)


def test_to_model_bands_orders_fills_and_drops():
    import numpy as np

    from sparsevit.model_bands import to_model_bands

    data = np.stack([np.full((2, 2), v, np.float32) for v in (4.0, 2.0, 9.0)])  # B04, B02, B10
    out = to_model_bands(data, ("B04", "B02", "B10"), ("B02", "B03", "B04"))
    assert out.shape == (3, 2, 2)
    assert (out[0] == 2).all() and np.isnan(out[1]).all() and (out[2] == 4).all()  # B10 dropped
    same = to_model_bands(data, ("B02", "B03", "B04"), ("B02", "B03", "B04"))
    assert same is data  # nothing to reorder: no copy of a big tile
