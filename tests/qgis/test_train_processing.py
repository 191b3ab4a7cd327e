"""sparsevit:grid and sparsevit:fit in the Processing registry: their parameters and outputs (what
the model builder, batch mode and qgis_process see) and the engine arguments they build; no engine
needed."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SAMPLE_S2
from qgis.core import (
    QgsApplication,
    QgsFeature,
    QgsGeometry,
    QgsPointXY,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingParameterDefinition,
    QgsProject,
    QgsVectorLayer,
)
from test_qgis_process import qgis_process_env  # noqa: F401 - the fixture, used below
from test_tile_grid import write_grid_gpkg


def _alg(alg_id):
    alg = QgsApplication.processingRegistry().createAlgorithmById(alg_id)
    assert alg is not None, alg_id
    return alg


def _args(alg, params, project=None):
    context = QgsProcessingContext()
    if project is not None:
        context.setProject(project)
    return alg.engine_args(params, context, QgsProcessingFeedback())


def _params(alg) -> dict[str, tuple[str, bool, bool]]:
    """name -> (type, optional, advanced)"""
    return {p.name(): (p.type(), bool(p.flags() & QgsProcessingParameterDefinition.FlagOptional),
                       bool(p.flags() & QgsProcessingParameterDefinition.FlagAdvanced))
            for p in alg.parameterDefinitions()}


def test_grid_and_fit_are_registered_with_their_parameters(provider):
    ids = {a.id() for a in provider.algorithms()}
    assert {"sparsevit:grid", "sparsevit:fit"} <= ids
    grid = _alg("sparsevit:grid")
    assert grid.group() == "Training" and len(grid.shortHelpString()) > 80
    assert _params(grid) == {
        "INPUT": ("raster", False, False), "TILE": ("number", False, False),
        "EXTENT": ("extent", True, False), "MODEL": ("file", True, True),
        "BAND_ORDER": ("string", True, True), "OUTPUT": ("vectorDestination", False, False)}
    assert {o.name(): o.type() for o in grid.outputDefinitions()} == {
        "OUTPUT": "outputVector", "CELLS": "outputNumber", "TILE_USED": "outputNumber"}

    fit = _alg("sparsevit:fit")
    params = _params(fit)
    assert params["INPUT"] == ("multilayer", False, False)
    assert params["LABELS"] == ("vector", False, False)
    assert params["FIELD"] == ("field", True, False)
    assert fit.parameterDefinition("FIELD").parentLayerParameterName() == "LABELS"
    assert params["CLASSES"] == ("file", True, False)
    assert fit.parameterDefinition("CLASSES").extension() == "json"
    assert params["EPOCHS"][:2] == ("number", False) and params["REFINE_EPOCHS"][:2] == ("number", False)
    assert params["OUTPUT_FOLDER"] == ("folderDestination", False, False)
    for advanced in ("ITERATIONS", "THREADS", "TILE", "BASE", "FROM_SCRATCH", "HOLDOUT", "SEED", "DEVICE",
                     "BAND_ORDER"):
        assert params[advanced][2], advanced
    outputs = {o.name(): o.type() for o in fit.outputDefinitions()}
    assert outputs["MODEL"] == "outputFolder" and outputs["LANDCOVER"] == "outputRaster"
    assert {"PSEUDOMASK", "CONFIDENCE", "AREAS", "RUN", "METRICS", "TAGGED"} <= set(outputs)


def test_grid_parameters_become_engine_arguments(provider, tmp_path):
    alg = _alg("sparsevit:grid")
    args = _args(alg, {"INPUT": str(SAMPLE_S2), "TILE": 32, "OUTPUT": str(tmp_path / "g.shp"),
                       "EXTENT": "-0.78,-0.765,38.11,38.125 [EPSG:4326]"})
    assert args[:5] == [str(SAMPLE_S2), "--out", str(tmp_path / "g.gpkg"), "--tile", "32"]
    area = next(a for a in args if a.startswith("--area="))
    assert area == "--area=-0.78,38.11,-0.765,38.125"  # xmin,ymin,xmax,ymax for the engine
    assert args[args.index("--area-crs") + 1] == "EPSG:4326"
    assert "--model" not in args
    args = _args(alg, {"INPUT": str(SAMPLE_S2), "OUTPUT": str(tmp_path / "g.gpkg")})
    assert args == [str(SAMPLE_S2), "--out", str(tmp_path / "g.gpkg")]


def test_fit_parameters_become_engine_arguments(provider, tmp_path, qgis_new_project):
    alg = _alg("sparsevit:fit")
    grid = write_grid_gpkg(tmp_path / "g.gpkg", rows=2, cols=2, tags={(0, 0): "Water"})
    scheme = tmp_path / "classes.json"
    scheme.write_text(json.dumps({"name": "u", "classes": [{"value": 1, "name": "Water", "color": "#0000ff"},
                                                           {"value": 2, "name": "Forest", "color": "#00ff00"}]}))
    out = tmp_path / "run"
    args = _args(alg, {"INPUT": [str(SAMPLE_S2)], "LABELS": f"{grid}|layername=tiles", "CLASSES": str(scheme),
                       "EPOCHS": 1, "REFINE_EPOCHS": 1, "OUTPUT_FOLDER": str(out)})
    assert args == [str(SAMPLE_S2), "--labels", str(grid), "--layer", "tiles", "--classes", str(scheme),
                    "--out", str(out), "--epochs", "1", "--refine-epochs", "1", "--holdout", "0.2",
                    "--seed", "0"]
    assert out.is_dir()
    args = _args(alg, {"INPUT": [str(SAMPLE_S2), str(SAMPLE_S2)], "LABELS": str(grid), "PREDICT": False,
                       "FROM_SCRATCH": True, "DEVICE": "cpu", "HOLDOUT": 0.1, "SEED": 3, "TILE": 64,
                       "ITERATIONS": 1, "THREADS": 1,
                       "OUTPUT_FOLDER": str(out)})
    assert args[:2] == [str(SAMPLE_S2), str(SAMPLE_S2)]
    for flag in ("--from-scratch", "--no-predict"):
        assert flag in args
    assert args[args.index("--device") + 1] == "cpu" and args[args.index("--tile") + 1] == "64"
    assert args[args.index("--iterations") + 1] == "1" and args[args.index("--threads") + 1] == "1"
    assert args[args.index("--holdout") + 1] == "0.1" and args[args.index("--seed") + 1] == "3"
    with pytest.raises(QgsProcessingException, match="no field 'classes'"):
        points = QgsVectorLayer("Point?crs=EPSG:4326&field=class:string", "pts", "memory")
        QgsProject.instance().addMapLayer(points)
        _args(alg, {"INPUT": [str(SAMPLE_S2)], "LABELS": points.id(), "OUTPUT_FOLDER": str(out)},
              QgsProject.instance())


def test_fit_snapshots_a_memory_layer_for_the_engine(provider, tmp_path, qgis_new_project):
    alg = _alg("sparsevit:fit")
    points = QgsVectorLayer("Point?crs=EPSG:4326&field=class:string", "pts", "memory")
    f = QgsFeature(points.fields())
    f.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(-0.77, 38.12)))
    f.setAttributes(["Water"])
    points.dataProvider().addFeature(f)
    project = QgsProject.instance()
    project.addMapLayer(points)
    out = tmp_path / "run"
    args = _args(alg, {"INPUT": [str(SAMPLE_S2)], "LABELS": points.id(), "FIELD": "class",
                       "OUTPUT_FOLDER": str(out)}, project)
    labels = Path(args[args.index("--labels") + 1])
    assert labels == out / "input_labels.gpkg" and labels.is_file()
    assert args[args.index("--layer") + 1] == "labels" and args[args.index("--field") + 1] == "class"
    copy = QgsVectorLayer(f"{labels}|layername=labels", "copy", "ogr")
    assert [ft["class"] for ft in copy.getFeatures()] == ["Water"]


def test_qgis_process_knows_grid_and_fit(qgis_process_env):  # noqa: F811 - the imported fixture
    import subprocess

    from test_qgis_process import QGIS_PROCESS
    for alg, names in (("sparsevit:grid", ("INPUT", "TILE", "EXTENT", "OUTPUT", "CELLS")),
                       ("sparsevit:fit", ("INPUT", "LABELS", "FIELD", "CLASSES", "EPOCHS", "OUTPUT_FOLDER",
                                          "MODEL", "LANDCOVER"))):
        proc = subprocess.run([QGIS_PROCESS, "help", alg], env=qgis_process_env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        for name in names:
            assert name in proc.stdout, (alg, name)
