"""Radiometry faults through the real CLI: the same scene in another convention gives the same
map, an input whose scaling is lost is refused, an unknown offset is said, never guessed."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import rasterio
from fixtures.cli_runs import T10, UTM, assert_clean_error, run_cli, s2_data, snapshot, write_s2

from sparsevit.bands import S2_BANDS_NO_CIRRUS


def _predict(capsys, s2, model, out, *extra):
    return run_cli(capsys, ["--json", "predict", str(s2), "--model", str(model), "--out", str(out),
                            "--tile", "32", "--overlap", "4", "--no-overview", *map(str, extra)])


def _events(stdout: str) -> list[dict]:
    return [json.loads(ln) for ln in stdout.splitlines() if ln.startswith("{")]


def _landcover(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read(1)


def _l1c_safe(root: Path, dn: np.ndarray) -> Path:
    """A baseline 04.00 L1C product: MTD_MSIL1C.xml with RADIO_ADD_OFFSET -1000, JP2 bands + 1000."""
    safe = root / "S2A_MSIL1C_20220601T101031_N0400_R022_T33UUP_20220601T121517.SAFE"
    img = safe / "GRANULE" / "L1C_T33UUP_A036190_20220601T101031" / "IMG_DATA"
    img.mkdir(parents=True)
    offsets = "".join(f'<RADIO_ADD_OFFSET band_id="{i}">-1000</RADIO_ADD_OFFSET>' for i in range(13))
    (safe / "MTD_MSIL1C.xml").write_text(
        '<?xml version="1.0"?><n1:Level-1C_User_Product xmlns:n1="urn:x"><n1:General_Info>'
        "<Product_Info><PROCESSING_LEVEL>Level-1C</PROCESSING_LEVEL><PROCESSING_BASELINE>04.00"
        "</PROCESSING_BASELINE></Product_Info><Product_Image_Characteristics>"
        '<QUANTIFICATION_VALUE unit="none">10000</QUANTIFICATION_VALUE><Radiometric_Offset_List>'
        f"{offsets}</Radiometric_Offset_List></Product_Image_Characteristics></n1:General_Info>"
        "</n1:Level-1C_User_Product>")
    for i, b in enumerate(S2_BANDS_NO_CIRRUS):
        with rasterio.open(img / f"T33UUP_20220601T101031_{b}.jp2", "w", driver="JP2OpenJPEG",
                           width=dn.shape[2], height=dn.shape[1], count=1, dtype="uint16", crs=UTM,
                           transform=T10, QUALITY=100, REVERSIBLE="YES") as ds:
            ds.write((dn[i] + 1000).astype("uint16"), 1)
    return safe


def test_baseline_04_safe_gives_the_dn_map(capsys, tmp_path, tiny_bundle, out_dir):
    """The same scene as plain DN and as a baseline 04.00 SAFE (+1000, metadata -1000): one map."""
    dn = s2_data()
    ref = write_s2(tmp_path / "dn.tif", data=dn)
    code, _, err = _predict(capsys, ref, tiny_bundle, out_dir)
    assert code == 0, err
    safe = _l1c_safe(tmp_path, dn)
    code, out, err = _predict(capsys, safe / "MTD_MSIL1C.xml", tiny_bundle, out_dir, "--name", "safe")
    assert code == 0, err
    assert (_landcover(out_dir / "safe_landcover.tif") == _landcover(out_dir / "dn_landcover.tif")).all()
    # info names level, baseline and the offsets applied
    code, out, err = run_cli(capsys, ["--json", "info", str(safe)])
    assert code == 0, err
    radio = [e for e in _events(out) if e["event"] == "result"][0]["products"][0]["radiometry"]
    assert (radio["level"], radio["baseline"], radio["input"]) == ("L1C", "04.00", "dn-offset-1000")
    assert {b["offset"] for b in radio["bands"].values()} == {-1000.0}


def test_8bit_input_is_refused(capsys, tmp_path, tiny_bundle, out_dir):
    f = write_s2(tmp_path / "quicklook.tif", data=(s2_data() // 12).astype("uint8"))
    for cmd in ("predict", "info"):
        before = snapshot(out_dir)
        code, _, err = (_predict(capsys, f, tiny_bundle, out_dir) if cmd == "predict"
                        else run_cli(capsys, ["info", str(f)]))
        line = assert_clean_error(code, err, cmd, f, exit_code=2)
        assert "8-bit" in line and "--radiometry" in line
        assert snapshot(out_dir) == before


def test_unknown_radiometry_override_is_refused(capsys, tmp_path):
    f = write_s2(tmp_path / "dn.tif")
    code, _, err = run_cli(capsys, ["info", str(f), "--radiometry", "toa"])
    line = assert_clean_error(code, err, "info", "--radiometry", exit_code=2)
    assert "dn-offset-1000" in line


def test_baseline_04_without_offsets_is_said_not_guessed(capsys, tmp_path, tiny_bundle, out_dir):
    """Tags say baseline 04.00 but no offset anywhere: predict runs on the values as they are and
    says in a warning that the map may be wrong and which --radiometry fixes it."""
    f = tmp_path / "b4.tif"
    write_s2(f, data=s2_data() + 1000)
    with rasterio.open(f, "r+") as ds:
        ds.update_tags(PROCESSING_BASELINE="04.00")
    code, out, err = _predict(capsys, f, tiny_bundle, out_dir)
    assert code == 0, err
    warned = [e["message"] for e in _events(out) if e["event"] == "log" and e.get("level") == "warning"]
    assert any("map may be wrong" in w and "dn-offset-1000" in w for w in warned), warned


def test_product_metadata_declaring_entities_is_refused_not_expanded(capsys, tmp_path, out_dir):
    """A 'billion laughs' MTD_MSIL1C.xml: refused before parsing, naming the file."""
    safe = _l1c_safe(tmp_path, s2_data())
    mtd = safe / "MTD_MSIL1C.xml"
    lol = "".join(f'<!ENTITY l{i} "{"&l%d;" % (i - 1) * 10}">' for i in range(1, 10))
    mtd.write_text(f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY l0 "lol">{lol}]><r>&l9;</r>')
    code, _, err = run_cli(capsys, ["info", str(mtd)])
    line = assert_clean_error(code, err, "info", "MTD_MSIL1C.xml", exit_code=2)
    assert "DTD or entities" in line
