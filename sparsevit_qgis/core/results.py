"""Prediction results as map layers: one group per run, styled, in the output raster's CRS.

Main-thread only (layers and the layer tree are not thread-safe).
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsLayerTreeGroup,
    QgsMapLayer,
    QgsProject,
    QgsRasterLayer,
    QgsVectorLayer,
)

from . import protocol as roles
from . import settings
from .imagery import TRUE_COLOUR_ROLE, true_colour_layer
from .schemes import SchemeError, as_scheme, find_scheme
from .styling import (
    add_basemap,
    add_layers_to_group,
    run_group_name,
    style_for_role,
)

BASEMAP_PROPERTY = "sparsevit/basemap"
ROLE_PROPERTY = "sparsevit/role"
# On a run's layer group: marks it as a run (older runs are folded when a new one comes) and
# holds what the short group name leaves out. QGIS shows no tooltip for a group (its layer tree
# model has tooltips for layers only), so the same text is each layer's abstract, which the
# layer's tooltip and its Properties > Metadata show.
RUN_GROUP_PROPERTY = "sparsevit/run"
RUN_INFO_PROPERTY = "sparsevit/run_info"
RUN_SCENE_PROPERTY = "sparsevit/scene"
RUN_MODEL_PROPERTY = "sparsevit/model"
RUN_DIR_PROPERTY = "sparsevit/run_dir"
VIEW_LANDCOVER, VIEW_PSEUDOMASK, VIEW_BASEMAP = roles.LANDCOVER, roles.PSEUDOMASK, "basemap"
VIEW_IMAGERY = TRUE_COLOUR_ROLE  # the results hidden, the run's input in true colour shown
VIEW_COARSE = roles.LANDCOVER_COARSE
MAP_VIEWS = (VIEW_COARSE, VIEW_LANDCOVER, VIEW_PSEUDOMASK)


@dataclass
class RunLayers:
    group: QgsLayerTreeGroup | None = None
    layers: dict[str, QgsMapLayer] = field(default_factory=dict)  # role -> layer
    warnings: list[str] = field(default_factory=list)

    def get(self, role: str) -> QgsMapLayer | None:
        return self.layers.get(role)

    @property
    def main_role(self) -> str:
        """The map shown first: the coarse land cover when the run has one, else the detailed."""
        return VIEW_COARSE if VIEW_COARSE in self.layers else VIEW_LANDCOVER

    @property
    def main_map(self) -> QgsMapLayer | None:
        return self.layers.get(self.main_role)


def class_area_line(row: dict) -> str:
    """One class-area row of the engine (``name``, ``hectares``, ``percent``) for a log:
    ``Forest                      12.3 ha   4.5 %`` (pixels when the area is unknown)."""
    ha = row.get("hectares")
    amount = f"{ha:>10.1f} ha" if ha is not None else f"{row.get('pixels', 0):>10} px"
    return f"{row.get('name', row.get('value'))!s:<22} {amount}  {row.get('percent', 0.0):5.1f} %"


S1_IGNORED = "Sentinel-1 input ignored: this model reads Sentinel-2 only"


def result_warnings(result: dict) -> list[str]:
    """What a ``predict`` result says the user must know, not only read in the log: a
    Sentinel-1 input the model did not read (``counts.bands.s1_ignored``)."""
    bands = ((result or {}).get("counts") or {}).get("bands") or {}
    out = []
    if isinstance(bands, dict) and bands.get("s1_ignored"):
        out.append(S1_IGNORED)
    return out


def summary_line(result: dict, label: str = "", seconds: float | None = None) -> str:
    """One line about a run: ``"Spain: 170 x 170 px on CPU (2 threads) in 3.1 s"`` followed by
    the :func:`result_warnings` (``" — ⚠ Sentinel-1 input ignored: ..."``)."""
    result = result or {}
    parts = [f"{label}:" if label else "Done:"]
    window = result.get("window")
    if isinstance(window, (list, tuple)) and len(window) == 4:
        parts.append(f"{window[2]} x {window[3]} px")
    if result.get("device"):
        parts.append(f"on {result['device']}")
    if seconds is not None:
        parts.append(f"in {seconds:.1f} s")
    line = " ".join(parts)
    for warning in result_warnings(result):
        line += f" — ⚠ {warning}"
    return line


def expected_crs(result: dict) -> QgsCoordinateReferenceSystem:
    crs = QgsCoordinateReferenceSystem()
    value = (result.get("grid") or {}).get("crs")
    if value:
        crs.createFromUserInput(str(value))
    return crs


def check_crs(layer: QgsMapLayer, expected: QgsCoordinateReferenceSystem) -> str | None:
    """None when ``layer`` is in ``expected``; otherwise fix it and say so. A GDAL build that
    reads a CRS differently must not shift results on the map silently."""
    if not expected.isValid():
        return None
    got = layer.crs()
    if got.isValid() and (got == expected or (got.authid() and got.authid() == expected.authid())):
        return None
    layer.setCrs(expected)
    return (f"{layer.name()}: QGIS read the CRS as '{got.authid() or got.description() or 'none'}', "
            f"the engine wrote {expected.authid() or expected.description()}; using the engine's.")


def _result_model(result: dict) -> str:
    model = result.get("model")
    if isinstance(model, dict):
        model = model.get("path")
    return str(model) if model else ""


def _result_run_dir(result: dict) -> str:
    """The run folder: the run record's folder, else the first map's."""
    outputs = result.get("outputs") or {}
    path = outputs.get(roles.RUN)
    if not path:
        path = next((outputs[r] for r in roles.RASTER_ROLES if outputs.get(r)), None)
    return str(Path(str(path)).parent) if path else ""


def run_info(result: dict, label: str, scene: str | None = None,
             when: _dt.datetime | None = None) -> dict[str, str]:
    """What the short group name leaves out: ``scene`` (the full input path, else the label),
    ``model``, ``run_dir``, ``time`` and ``text`` (all of it, one line each)."""
    info = {"scene": str(scene or label or ""), "model": _result_model(result),
            "run_dir": _result_run_dir(result),
            "time": f"{when:%Y-%m-%d %H:%M:%S}" if when is not None else ""}
    lines = [f"Scene: {info['scene']}"]
    if info["model"]:
        lines.append(f"Model: {info['model']}")
    if info["run_dir"]:
        lines.append(f"Run folder: {info['run_dir']}")
    if info["time"]:
        lines.append(f"Run: {info['time']}")
    info["text"] = "\n".join(lines)
    return info


def _set_layer_abstract(layer: QgsMapLayer, text: str) -> None:
    """The layer's abstract, where the layer tree's tooltip reads it: the server abstract (QGIS
    3.22-3.x) and the metadata abstract (newer QGIS prefers it; Properties > Metadata)."""
    server = layer.serverProperties() if hasattr(layer, "serverProperties") else None
    if server is not None and hasattr(server, "setAbstract"):
        server.setAbstract(text)
    else:
        layer.setAbstract(text)
    metadata = layer.metadata()
    metadata.setAbstract(text)
    layer.setMetadata(metadata)


def _unique_group_name(parent: QgsLayerTreeGroup, name: str) -> str:
    """``name``, or ``name (2)``... when a sibling group has it (two runs in one minute)."""
    taken = {child.name() for child in parent.children() if isinstance(child, QgsLayerTreeGroup)}
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name} ({n})", n + 1
    return candidate


def _set_expanded(node, expanded: bool) -> None:
    """Expand or fold ``node``; always a real change, so that a view that shows it otherwise
    than the node says follows (the layer tree view re-expands a paletted layer's legend once
    its style is applied)."""
    if node.isExpanded() == expanded:
        node.setExpanded(not expanded)
    node.setExpanded(expanded)


def run_groups(project: QgsProject | None = None) -> list[QgsLayerTreeGroup]:
    """The layer groups of the plugin's runs, anywhere in the layer tree, top first."""
    project = project or QgsProject.instance()
    return [g for g in project.layerTreeRoot().findGroups(True) if g.customProperty(RUN_GROUP_PROPERTY)]


def fold_older_runs(keep: QgsLayerTreeGroup | None, project: QgsProject | None = None) -> None:
    """Fold every run group but ``keep``, and the legends of their layers."""
    for group in run_groups(project):
        if group is keep:
            continue
        for node in group.findLayers():
            node.setExpanded(False)
        group.setExpanded(False)


def _run_dir_path(result: dict) -> Path | None:
    run_dir = _result_run_dir(result)
    return Path(run_dir) if run_dir and Path(run_dir).is_dir() else None


def _raster(path: str, name: str) -> QgsRasterLayer | None:
    layer = QgsRasterLayer(path, name, "gdal")
    return layer if layer.isValid() else None


def add_predict_results(result: dict, label: str, project: QgsProject | None = None,
                        when: _dt.datetime | None = None,
                        log: Callable[[str], None] | None = None,
                        scene: str | None = None) -> RunLayers:
    """Add a ``predict`` result event's outputs as one layer group at the top of the tree.

    The group is named by :func:`~.styling.run_group_name` (short scene name and time); the
    full ``scene`` path (else ``label``), the model and the run folder are the group's custom
    properties and each layer's abstract (its tooltip). The new group and its shown map's
    legend are expanded; the groups of older runs are folded."""
    project = project or QgsProject.instance()
    when = when or _dt.datetime.now()
    log = log or (lambda _m: None)
    outputs = result.get("outputs") or {}
    schemes: dict[str, object] = {}
    for key in ("scheme", "coarse_scheme"):
        if result.get(key):
            try:
                schemes[key] = as_scheme(result[key])
            except SchemeError as exc:
                log(str(exc))
    scheme = schemes.get("scheme")
    crs = expected_crs(result)
    opacity = settings.result_opacity()
    run = RunLayers()
    ordered: list[tuple[str, QgsMapLayer]] = []
    names = {roles.LANDCOVER_COARSE: "Land cover, coarse", roles.LANDCOVER: "Land cover",
             roles.PSEUDOMASK: "Attention pseudomask", roles.CONFIDENCE: "Confidence",
             roles.ATTENTION: "Attention (per head)"}
    # top to bottom in the group: the coarse map over the detailed one
    for role in roles.RASTER_ROLES:
        path = outputs.get(role)
        if not path:
            continue
        layer = _raster(str(path), f"{names[role]} — {label}")
        if layer is None:
            run.warnings.append(f"Cannot open the result {path}")
            continue
        how = style_for_role(layer, role, schemes.get("coarse_scheme") if role == VIEW_COARSE else scheme,
                             opacity=opacity)
        if role in roles.CLASS_MAP_ROLES and not how:
            run.warnings.append(f"{path}: no .qml and no known class scheme; left unstyled.")
        ordered.append((role, layer))
    polygons = outputs.get(roles.POLYGONS)
    if polygons and Path(str(polygons)).is_file():
        vlayer = QgsVectorLayer(str(polygons), f"Land-cover polygons — {label}", "ogr")
        if vlayer.isValid():
            # the engine vectorizes the detailed map, or the coarse one when that is the only map
            poly_scheme = schemes.get("coarse_scheme") if result.get("level") == "coarse" else scheme
            style_for_role(vlayer, roles.POLYGONS, poly_scheme)
            vlayer.setOpacity(opacity)
            maps = sum(1 for r, _l in ordered if r in (VIEW_COARSE, VIEW_LANDCOVER))
            ordered.insert(maps, (roles.POLYGONS, vlayer))  # just below the land-cover map(s)
        else:
            run.warnings.append(f"Cannot open the polygons {polygons}")
    if ordered:
        # the input under the results: the map at its opacity over the image it was made from
        imagery = true_colour_layer(result, f"Sentinel-2 true colour — {label}", _run_dir_path(result))
        if imagery is not None:
            ordered.append((TRUE_COLOUR_ROLE, imagery))
    for role, layer in ordered:
        problem = check_crs(layer, crs)
        if problem:
            run.warnings.append(problem)
        layer.setCustomProperty(ROLE_PROPERTY, role)
        run.layers[role] = layer
    if ordered:
        info = run_info(result, label, scene, when)
        for _role, layer in ordered:
            _set_layer_abstract(layer, info["text"])
        name = _unique_group_name(project.layerTreeRoot(), run_group_name(label, when, scene))
        run.group = add_layers_to_group([lyr for _r, lyr in ordered], name, project)
        run.group.setCustomProperty(RUN_GROUP_PROPERTY, True)
        run.group.setCustomProperty(RUN_INFO_PROPERTY, info["text"])
        run.group.setCustomProperty(RUN_SCENE_PROPERTY, info["scene"])
        run.group.setCustomProperty(RUN_MODEL_PROPERTY, info["model"])
        run.group.setCustomProperty(RUN_DIR_PROPERTY, info["run_dir"])
        # The main map (coarse over detailed) on; the rest one click away (and drawn only
        # when asked for).
        main = run.main_role
        for role, layer in ordered:
            node = run.group.findLayer(layer.id())
            if node is not None:
                node.setItemVisibilityChecked(role in (main, TRUE_COLOUR_ROLE))
        fold_older_runs(run.group, project)
        # A real change: the view kept the group folded when it was inserted still empty.
        _set_expanded(run.group, True)
        sync_legends(run)  # one legend at a time, the shown map's; the others a click away
    for w in run.warnings:
        log(w)
    return run


def has_map_outputs(result: dict) -> bool:
    """Whether a result (``predict``, or ``fit`` that mapped its rasters) names a raster to add."""
    outputs = result.get("outputs") or {}
    return any(outputs.get(role) for role in roles.RASTER_ROLES)


def sync_legends(run: RunLayers) -> None:
    """Expand the legend of the run's shown layer(s), fold those of the hidden ones."""
    if run.group is None:
        return
    try:
        for node in run.group.findLayers():
            # The view may show a legend otherwise than the node says: _set_expanded makes a
            # real change, which the view follows.
            imagery = node.layer() is not None and node.layer().customProperty(ROLE_PROPERTY) == TRUE_COLOUR_ROLE
            _set_expanded(node, node.itemVisibilityChecked() and not imagery)
    except RuntimeError:  # the group was removed meanwhile
        pass


collapse_hidden = sync_legends  # its former name


def find_basemap(project: QgsProject | None = None) -> QgsMapLayer | None:
    project = project or QgsProject.instance()
    for layer in project.mapLayers().values():
        if layer.customProperty(BASEMAP_PROPERTY):
            return layer
    return None


def ensure_basemap(project: QgsProject | None = None) -> QgsMapLayer:
    """The plugin's basemap layer, added at the bottom of the layer tree on first use."""
    project = project or QgsProject.instance()
    layer = find_basemap(project)
    if layer is None:
        layer = add_basemap(project)
        layer.setCustomProperty(BASEMAP_PROPERTY, True)
    return layer


def set_view(run: RunLayers, view: str, project: QgsProject | None = None) -> None:
    """Show the coarse or detailed land-cover map, the pseudomask or only the basemap (group
    layers toggled)."""
    project = project or QgsProject.instance()
    root = project.layerTreeRoot()
    basemap = find_basemap(project)
    if view == VIEW_BASEMAP and basemap is None:
        basemap = ensure_basemap(project)
    for role, layer in run.layers.items():
        try:
            node = root.findLayer(layer.id())
        except RuntimeError:  # the user removed the layer
            continue
        if node is None:
            continue
        if role == TRUE_COLOUR_ROLE:  # under every map; hidden only to look at the basemap
            node.setItemVisibilityChecked(view != VIEW_BASEMAP)
        elif role in MAP_VIEWS + (roles.POLYGONS,):
            node.setItemVisibilityChecked(role == view)
    if run.group is not None and view != VIEW_BASEMAP:
        run.group.setItemVisibilityChecked(True)
    sync_legends(run)  # the shown map's legend open, the hidden ones folded
    if basemap is not None:
        node = root.findLayer(basemap.id())
        if node is not None:
            node.setItemVisibilityChecked(True)


def polygon_classes(source: QgsMapLayer | None, scheme_name: str | None = None,
                    class_names: list[str] | None = None):
    """Colours and names for exported polygons: the source raster's own palette (what the user
    sees), else the named scheme, else the bundled scheme holding all ``class_names``."""
    from .schemes import available_schemes, load_scheme
    from .styling import palette_classes
    if isinstance(source, QgsRasterLayer):
        classes = palette_classes(source)
        if classes:
            return classes
    if scheme_name:
        try:
            return find_scheme(scheme_name)
        except SchemeError:
            pass
    wanted = set(class_names or [])
    if wanted:
        for path in available_schemes().values():
            try:
                scheme = load_scheme(path)
            except SchemeError:
                continue
            if wanted <= {c.name for c in scheme.classes}:
                return scheme
    return None


def distinct_class_names(layer: QgsVectorLayer, field: str = "class_name") -> list[str]:
    idx = layer.fields().indexOf(field)
    return [] if idx < 0 else [str(v) for v in layer.uniqueValues(idx) if v is not None]


def export_layer(result: dict, fmt: str, source: QgsMapLayer | None = None,
                 log: Callable[[str], None] | None = None) -> QgsMapLayer | None:
    """The map layer of an ``export`` result (COG or polygons), styled; None for tables."""
    log = log or (lambda _m: None)
    path = result.get("path")
    if not path or fmt not in ("cog", "gpkg"):
        return None
    if fmt == "cog":
        layer = _raster(str(path), Path(str(path)).stem)
        if layer is None:
            log(f"Cannot open the exported raster {path}")
            return None
        style_for_role(layer, roles.LANDCOVER, result.get("scheme"), opacity=settings.result_opacity())
        problem = check_crs(layer, expected_crs(result))
        if problem:
            log(problem)
        return layer
    uri = str(path) + (f"|layername={result['layer']}" if result.get("layer") else "")
    layer = QgsVectorLayer(uri, Path(str(path)).stem, "ogr")
    if not layer.isValid():
        log(f"Cannot open the exported polygons {path}")
        return None
    classes = polygon_classes(source, result.get("scheme"), distinct_class_names(layer))
    if classes is None:
        log(f"{path}: no class colours found (no paletted source layer, no matching scheme); "
            "polygons keep the default style.")
    else:
        style_for_role(layer, roles.POLYGONS, classes=classes)
    return layer


def add_export_result(result: dict, fmt: str, source: QgsMapLayer | None = None,
                      project: QgsProject | None = None,
                      log: Callable[[str], None] | None = None) -> QgsMapLayer | None:
    """Add an exported COG / polygons to the project (top of the tree); log a class-area table."""
    project = project or QgsProject.instance()
    log = log or (lambda _m: None)
    if fmt in ("csv", "json"):
        for row in result.get("classes") or []:
            log("  " + class_area_line(row))
        return None
    layer = export_layer(result, fmt, source, log)
    if layer is not None:
        project.addMapLayer(layer, False)
        project.layerTreeRoot().insertLayer(0, layer)
    return layer
