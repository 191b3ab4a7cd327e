"""Predict a Sentinel-2 (+ Sentinel-1) raster of any size, tile by tile.

Overlapping tiles are read and predicted in batches; their per-class scores (the segmenter's
softmax, the pseudomask method's class evidence) are blended with weights that fade out across
each overlap (:mod:`.blend`), so no tile's own decision stops at a straight line, and the label
is the arg-max of the blend. Memory is bounded by one batch of tiles plus one full-width band of
tile rows, flushed to the output files as soon as no later tile touches it. ``blend=False``
writes each tile's *core* (the part it owns, overlaps cut in the middle) instead, with
tile-shaped seams, the behaviour before blending. All outputs are written
into a staging folder and moved into place only when the whole run succeeded: a failed or
cancelled run leaves nothing behind, and existing outputs are only replaced with ``overwrite``.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from rasterio.windows import Window, from_bounds

from ..bundle import ModelBundle
from ..devices import auto_precision, check_threads, describe_device, resolve_device
from ..errors import InputError, OutputError
from ..io.clouds import CLOUD_CONFIDENCE, NO_SHADOWS, SHADOW_HEIGHTS_M
from ..io.processing_level import LevelPlan, plan_for_scene
from ..io.scene import Grid, open_s1, open_s2, true_colour
from ..io.tiles import tile_windows
from ..io.writers import ClassifiedWriter, FloatWriter
from ..model_bands import to_model_bands
from ..progress import Progress, null_progress
from ..pseudomasks.extract import classifier_evidence
from ..pseudomasks.generate import NEEDS_HEADS, needs_gradcam
from ..pseudomasks.postprocess import make_pseudomask
from ..refine.segmenter import predict_logits_padded
from ..schemes import IGNORE
from .blend import BandBlender, TileWeights, argmax_confidence, pseudomask_scores


@dataclass
class PredictOptions:
    tile: int | None = None  # default: the bundle's
    overlap: int | None = None
    # blend overlapping tiles (weighted per-class scores, see predict/blend.py); False: each
    # tile's core cut out and written as it is (tile-shaped seams)
    blend: bool = True
    batch_size: int = 8
    area: tuple[float, float, float, float] | None = None  # bounds in the raster's CRS
    attention: bool = False  # also write per-head attention maps
    polygons: bool = False
    stats: bool = True
    overview: bool = True
    overwrite: bool = False
    device: str | None = None  # default: cuda when available
    precision: str = "auto"  # fp32 | bf16 | auto (bf16 on GPUs and CPUs with native bf16, else fp32)
    threads: int | None = None
    band_order: Sequence[str] | None = None
    # how to convert the values (io/radiometry.py OVERRIDE_HELP); None: detected from the product
    radiometry: str | None = None
    # smooth 20/60 m bands an export upsampled by nearest neighbour (io/blocky_bands.py)
    smooth_blocky: bool = True
    # cloudy pixels -> no data in the maps, -1 in the confidence, out of the areas (io/clouds.py)
    cloud_mask: bool = True
    # detailed (the model's classes) | coarse (their coarse view, see predict/levels.py) | both;
    # None: both where the model's scheme has a coarse mapping, else detailed
    level: str | None = None


@dataclass
class _Outputs:
    landcover: Path | None
    pseudomask: Path
    confidence: Path
    landcover_coarse: Path | None = None
    attention: Path | None = None
    areas_csv: Path | None = None
    areas_json: Path | None = None
    areas_coarse_csv: Path | None = None
    areas_coarse_json: Path | None = None
    polygons: Path | None = None
    overview: Path | None = None
    run: Path | None = None

    def as_dict(self) -> dict:
        return {k: str(v) for k, v in asdict(self).items() if v is not None}


def _output_names(out_dir: Path, stem: str, opts: PredictOptions) -> _Outputs:
    o = _Outputs(out_dir / f"{stem}_landcover.tif", out_dir / f"{stem}_pseudomask.tif",
                 out_dir / f"{stem}_confidence.tif")
    if opts.attention:
        o.attention = out_dir / f"{stem}_attention.tif"
    coarse, detailed = opts.level != "detailed", opts.level != "coarse"
    if coarse:  # dropped again in _finish when the model's scheme has no coarse level
        o.landcover_coarse = out_dir / f"{stem}_landcover_coarse.tif"
    if opts.stats and detailed:
        o.areas_csv, o.areas_json = out_dir / f"{stem}_class_areas.csv", out_dir / f"{stem}_class_areas.json"
    if opts.stats and coarse:
        o.areas_coarse_csv = out_dir / f"{stem}_class_areas_coarse.csv"
        o.areas_coarse_json = out_dir / f"{stem}_class_areas_coarse.json"
    if opts.polygons:
        o.polygons = out_dir / f"{stem}_landcover.gpkg"
    if opts.overview:
        o.overview = out_dir / f"{stem}_overview.png"
    o.run = out_dir / f"{stem}_run.json"
    return o


_SHADOW_RANGE = "{0}-{1} m".format(*SHADOW_HEIGHTS_M)
MIN_TILE, MAX_TILE = 16, 8192  # px; Processing's TILE has the same bounds


def _tiling(opts: PredictOptions, bundle: ModelBundle) -> tuple[int, int]:
    """(tile, overlap) of the run; a value the user gave that cannot work is an error, never a
    quiet substitute. The model's own overlap still shrinks to fit a smaller tile."""
    if opts.batch_size is None or opts.batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, not {opts.batch_size}",
                         fix="e.g. --batch-size 8 (fewer tiles per batch use less memory)")
    check_threads(opts.threads)
    if opts.tile and not MIN_TILE <= opts.tile <= MAX_TILE:
        raise InputError(f"--tile must be {MIN_TILE} to {MAX_TILE} px, not {opts.tile}",
                         fix=f"omit --tile for the model's own ({bundle.tile} px)")
    tile = opts.tile or bundle.tile
    most = max(tile // 2 - 1, 0)
    if opts.overlap is not None and not 0 <= opts.overlap <= most:
        raise InputError(f"--overlap must be 0 to {most} px for {tile} px tiles, not {opts.overlap}",
                         fix=f"omit --overlap for the model's own ({min(bundle.overlap, most)} px here)")
    return tile, min(opts.overlap if opts.overlap is not None else bundle.overlap, most)


def _check_name_length(outputs: _Outputs, out_dir: Path, stem: str) -> None:
    """Every output (and the staging folder) must fit the file system's name limit, found
    before any tile is computed rather than at the end of the run."""
    try:
        limit = os.pathconf(out_dir, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    names = [Path(p).name for p in outputs.as_dict().values()] + [f".{stem}.partial-{os.getpid()}-xxxxxxxx"]
    longest = max(names, key=lambda n: len(n.encode()))
    size = len(longest.encode())
    if size > limit:
        raise InputError(f"the output name {longest[:40]}... is {size} bytes long; "
                         f"this file system takes at most {limit}", path=out_dir,
                         fix=f"pass a shorter --name (at most {limit - size + len(stem.encode())} bytes)")


def _area_window(grid: Grid, area, where: str) -> Window:
    full = Window(0, 0, grid.width, grid.height)
    if area is None:
        return full
    win = from_bounds(*area, transform=grid.transform).round_offsets().round_lengths()
    try:
        win = win.intersection(full)
    except Exception:  # rasterio raises WindowError when they do not intersect
        win = None
    if win is None or win.width < 1 or win.height < 1:
        raise InputError(f"the area {tuple(round(a, 6) for a in area)} does not overlap the raster",
                         path=where, fix="give bounds in the raster's CRS that overlap it")
    return Window(int(win.col_off), int(win.row_off), int(win.width), int(win.height))


def predict_scene(bundle: ModelBundle, s2: str | Path | Sequence[str | Path], out_dir: str | Path,
                  s1: str | Path | Sequence[str | Path] | None = None,
                  opts: PredictOptions | None = None, progress: Progress | None = None,
                  stem: str | None = None) -> dict:
    """Run the whole pipeline on one scene; returns a JSON-safe summary with the output paths."""
    opts = opts or PredictOptions()
    progress = progress or null_progress()
    t_start = time.perf_counter()
    _tiling(opts, bundle)
    if opts.threads:
        torch.set_num_threads(opts.threads)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError("the output folder is a file, not a folder", path=out_dir,
                          fix="choose a folder for --out")
    if not out_dir.is_dir():
        raise OutputError("output folder does not exist", path=out_dir, fix="create it first")
    if not os.access(out_dir, os.W_OK):
        raise OutputError("output folder is not writable", path=out_dir, fix="choose another folder")
    if bundle.has_s1 and s1 is None:
        raise InputError("this model needs Sentinel-1 (VV, VH) as well", path=bundle.path,
                         fix="give the S1 raster (--s1) or use an S2-only model")
    first = Path(s2[0] if isinstance(s2, (list, tuple)) else s2)
    stem = stem or (first.stem if first.is_file() else first.name)
    outputs = _output_names(out_dir, stem, opts)
    _check_name_length(outputs, out_dir, stem)
    existing = [p for p in outputs.as_dict().values() if Path(p).exists()]
    if existing and not opts.overwrite:
        raise OutputError("outputs already exist", path=existing[0],
                          fix="choose another output folder or pass --overwrite")

    from .levels import coarse_mapping
    coarse_mapping(bundle, opts.level)  # an impossible level fails now, not after the tiles
    device = resolve_device(opts.device)
    with open_s2(s2, band_order=opts.band_order, required=bundle.min_bands,
                 radiometry=opts.radiometry, smooth_blocky=opts.smooth_blocky) as scene:
        s1_scene = open_s1(s1, target=scene) if (s1 is not None and bundle.has_s1) else None
        progress.log(f"device: {describe_device(device)}")
        band_plan, level_plan = _band_plan(bundle, scene, s1 is not None, progress)
        try:
            window = _area_window(scene.grid, opts.area, str(first))
            grid = Grid(scene.grid.crs, scene.grid.window_transform(window),
                        int(window.width), int(window.height))
            try:
                _remove_stale_partials(out_dir, stem, progress)
                # the pid in the name tells a later run whether this one is still alive
                stage_dir = Path(tempfile.mkdtemp(prefix=f".{stem}.partial-{os.getpid()}-", dir=out_dir))
            except OSError as exc:
                raise OutputError(f"cannot write into the output folder ({exc.strerror or exc})",
                                  path=out_dir, fix="choose a folder you can write to") from exc
            try:
                staged = _output_names(stage_dir, stem, opts)
                stats = _run_tiles(bundle, scene, s1_scene, window, grid, staged, opts, device, progress,
                                   band_plan["used"], level_plan)
                stats["bands"] = band_plan
                if stats.get("valid_pixels") and "cloud_pixels" in stats:
                    stats["cloud_share"] = round(stats["cloud_pixels"] / stats["valid_pixels"], 4)
                    progress.log(f"clouds: {100 * stats['cloud_share']:.1f} % of the valid pixels masked "
                                 "(no data in the maps, -1 in the confidence, not in the class areas)",
                                 level="warning" if stats["cloud_share"] > 0 else "info")
                if stats["valid_pixels"] == 0:
                    raise InputError("the raster holds only no-data pixels"
                                     + (" inside --area" if opts.area is not None else ""),
                                     path=str(first), fix="check the nodata value of the file or "
                                     "choose another scene or area")
                try:
                    summary = _finish(bundle, scene, window, grid, staged, outputs, opts, progress,
                                      stats, device, t_start)
                    # A cancel during the last stages still leaves nothing behind.
                    progress.check_cancelled()
                    _commit(staged, out_dir, opts.overwrite)
                except OSError as exc:
                    raise OutputError(f"could not write the outputs ({exc.strerror or exc})",
                                      path=out_dir, fix="check free disk space and permissions") from exc
            finally:
                shutil.rmtree(stage_dir, ignore_errors=True)
        finally:
            if s1_scene is not None:
                s1_scene.close()
    progress.result(**summary)
    return summary


def _remove_stale_partials(out_dir: Path, stem: str, progress) -> None:
    """Staging folders of earlier runs that were killed (the plugin's hard stop 0.8 s after a
    cancel cannot let them clean up): removed once their process is gone."""
    for d in out_dir.glob(f".{stem}.partial-*"):
        try:
            pid = int(d.name[len(f".{stem}.partial-"):].split("-", 1)[0])
        except ValueError:
            continue  # not one of ours
        try:
            os.kill(pid, 0)
            continue  # that run is still going
        except ProcessLookupError:
            pass
        except (PermissionError, OSError):
            continue
        shutil.rmtree(d, ignore_errors=True)
        progress.log(f"removed {d.name}: the staging folder of a run that was stopped")


def _commit(staged: _Outputs, out_dir: Path, overwrite: bool) -> None:
    """Move the staged files into ``out_dir``.

    Without ``overwrite`` each file is hard-linked into place, which fails when the name exists:
    a second run writing the same names at the same time then stops with an error instead of
    silently replacing the first run's outputs (and both runs' files never get mixed).
    """
    moves = []
    # as_dict() ends with the run record, so it is the last file to appear: a folder holding it
    # holds the whole result (the many-scenes batch counts such a scene as finished)
    for p in staged.as_dict().values():
        for side in [Path(p), Path(p + ".aux.xml")] + ([Path(p).with_suffix(".qml")] if p.endswith(".tif") else []):
            if side.exists():
                moves.append((side, out_dir / side.name))
    if overwrite:
        for src, dst in moves:
            os.replace(src, dst)
        return
    done: list[Path] = []
    try:
        for src, dst in moves:
            try:
                os.link(src, dst)
            except FileExistsError:
                raise
            except OSError:  # file systems without hard links (FAT, some shares)
                if dst.exists():
                    raise FileExistsError(dst) from None
                os.replace(src, dst)
            done.append(dst)
    except FileExistsError:
        for dst in done:
            dst.unlink(missing_ok=True)
        taken = next((dst for _, dst in moves if dst.exists()), out_dir)
        raise OutputError("outputs already exist (another run wrote them meanwhile)", path=taken,
                          fix="choose another output folder or name, or pass --overwrite") from None


def _band_plan(bundle: ModelBundle, scene, s1_given: bool, progress: Progress) -> dict:
    """Which of the model's bands this input has; said in the log and kept in the run record,
    together with how the bands were identified (a guess by position is never silent)."""
    used = [b for b in bundle.s2_bands if b in scene.bands]
    missing = [b for b in bundle.s2_bands if b not in scene.bands]
    how = {b: scene.bands[b].how for b in used}
    radio = scene.radiometry.to_dict() if scene.radiometry is not None else None
    trained = bundle.card.get("trained_on_level") if isinstance(bundle.card, dict) else None
    levels, judged = plan_for_scene(scene, used, trained, bundle.band_flexible)
    level = levels.level
    used = [b for b in used if b not in levels.dropped]
    progress.log(f"bands: using {len(used)} of the model's {len(bundle.s2_bands)} "
                 f"({', '.join(used)})" + (f"; missing {', '.join(missing)} (the model is "
                                            "band-flexible and reads the input without them)"
                                            if missing else ""))
    if levels.describe():
        progress.log(levels.describe(), level="warning")
    for note in scene.warnings:
        progress.log(note, level="warning")
    s1_ignored = s1_given and not bundle.has_s1
    if s1_ignored:
        progress.log("Sentinel-1 input ignored: this model reads Sentinel-2 only", level="warning")
    level_note = None
    if level and trained and level != trained:
        level_note = (f"one fixed conversion cannot know this scene's atmosphere: expect more "
                      f"confusion between similar classes than on {trained} input")
        progress.log(level_note, level="warning")
    return {"used": used, "missing": missing, "identified_by": how,
            "input_warnings": list(scene.warnings), "s1_ignored": s1_ignored,
            "radiometry": radio, "level_warning": level_note, "levels": levels.to_dict(),
            "level_from_pixels": judged}, levels


def _run_tiles(bundle: ModelBundle, scene, s1_scene, window: Window, grid: Grid, staged: _Outputs,
               opts: PredictOptions, device: torch.device, progress: Progress,
               used_bands: Sequence[str] | None = None, levels: LevelPlan | None = None) -> dict:
    tile, overlap = _tiling(opts, bundle)
    tiles = tile_windows(grid.width, grid.height, tile, overlap)
    scheme = bundle.scheme
    lut = np.full(256, IGNORE, np.uint8)
    lut[: scheme.num_classes] = np.asarray(scheme.values, dtype=np.uint8)
    pm = bundle.pseudomask
    need_heads = pm.method in NEEDS_HEADS
    need_cam = needs_gradcam([pm.method], bundle.classifier)
    attn_blocks = pm.attn_blocks or len(bundle.classifier.blocks)
    vit = bundle.classifier.to(device).eval()
    seg = bundle.segmenter.to(device).eval() if bundle.segmenter is not None else None
    if seg is not None:
        # NHWC convolutions: 1.5x faster on this CPU in a side-by-side run, same outputs
        seg = seg.to(memory_format=torch.channels_last)
    precision = opts.precision if opts.precision != "auto" else auto_precision(device)
    counts_precision = precision
    counts = {"tiles": len(tiles), "fallback_tiles": 0, "valid_pixels": 0}
    head_desc: list[str] | None = None
    used = list(used_bands) if used_bands is not None else list(bundle.s2_bands)

    clouds = scene.clouds if opts.cloud_mask else None
    shadows = scene.cloud_shadows(window) if clouds is not None else None
    n_s2 = len(bundle.s2_bands)

    def read(batch):
        out = []
        for t in batch:
            data, valid = _read_tile(t, scene, s1_scene, window, used, bundle.s2_bands)
            cloud = None
            if clouds is not None:
                w = Window(t.window.col_off + window.col_off, t.window.row_off + window.row_off,
                           t.window.width, t.window.height)
                cloud = scene.read_clouds(w, data[:n_s2], bundle.s2_bands, valid)
                if shadows is not None:
                    cloud |= shadows.crop(int(w.row_off), int(w.col_off), int(w.height), int(w.width))
                cloud &= valid
            if levels is not None and levels.converts:  # after the cloud tests, which read the input's level
                data[:n_s2] = levels.apply(data[:n_s2], bundle.s2_bands, valid)
            out.append((t, data, valid, cloud))
        return out

    batches = [tiles[i:i + opts.batch_size] for i in range(0, len(tiles), opts.batch_size)]
    writers = [ClassifiedWriter(staged.landcover, grid, scheme),
               ClassifiedWriter(staged.pseudomask, grid, scheme),
               FloatWriter(staged.confidence, grid, descriptions=["confidence"])]
    lc_w, pm_w, cf_w = writers
    at_w = None
    if clouds is not None:
        counts["cloud_pixels"] = 0
        counts["clouds"] = clouds.to_dict()
        progress.log(f"clouds: masked from {clouds.describe()} (--no-cloud-mask maps them)")
        if shadows is not None:
            counts["clouds"]["shadows"] = {**scene.sun.to_dict(), "pixel_m": shadows.factor * max(grid.res_m()),
                                           "pixels": int(shadows.mask.sum()) * shadows.factor ** 2}
            progress.log(f"cloud shadows: projected from the sun's position (zenith {scene.sun.zenith:.1f} deg, "
                         f"azimuth {scene.sun.azimuth:.1f} deg, from {Path(scene.sun.source).name}) for cloud "
                         f"heights of {_SHADOW_RANGE}: dark land pixels there are masked too")
        elif clouds.kind in NO_SHADOWS:
            progress.log("cloud shadows: not masked (the input does not say where the sun was)")
    blender = _make_blender(tiles, grid, scheme.num_classes, seg is not None, lut,
                            (lc_w, pm_w, cf_w), counts, clouds is not None) if opts.blend else None
    weights = TileWeights(tiles) if blender is not None else None
    # one reader thread: the next batch is read while this one is predicted
    with ThreadPoolExecutor(max_workers=1) as pool, lc_w, pm_w, cf_w, \
            progress.stage("predict", total=len(tiles)) as st:
        pending = pool.submit(read, batches[0]) if batches else None
        for bi in range(len(batches)):
            items = pending.result()
            pending = pool.submit(read, batches[bi + 1]) if bi + 1 < len(batches) else None
            x = _model_input(bundle, items).to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                ev = classifier_evidence(vit, x, attn_blocks=attn_blocks if need_heads else 0,
                                         gradcam=need_cam)
                seg_probs = None
                if seg is not None:
                    with torch.no_grad():
                        xs = x.contiguous(memory_format=torch.channels_last)
                        seg_probs = torch.softmax(predict_logits_padded(seg, xs).float(), 1).cpu()
            if opts.attention and at_w is None:
                head_desc = [f"block{b}_head{h}" for b, h in ev.head_ids] or ["none"]
                at_w = FloatWriter(staged.attention, grid, count=len(head_desc), descriptions=head_desc)
                at_w.open()
            for k, (t, _, v, cloud) in enumerate(items):
                size = tuple(v.shape)
                if blender is not None:  # scores blended across tiles, written row band by band
                    scores, classes, fallback = pseudomask_scores(
                        pm.method, ev.probs[k], size, **ev.maps_for(pm.method, k),
                        threshold=pm.threshold, **pm.options)
                    counts["fallback_tiles"] += fallback
                    parts = {"pm": (scores, classes)}
                    if seg_probs is not None:
                        parts["seg"] = (seg_probs[k].numpy(), None)
                    if cloud is not None:
                        parts["cloud"] = (cloud[None].astype(np.float32), None)
                    blender.add(t, weights(t), v, parts)
                else:
                    _write_core(t, v, pm, ev, k, size, seg_probs, lut, (lc_w, pm_w, cf_w), counts, cloud)
                if at_w is not None:
                    at_w.write(t.crop(_head_maps_at(ev.head_maps[k], size)), t.core)
            st.advance(len(items))
        if blender is not None:
            blender.finish()
        if at_w is not None:
            at_w.close()
    counts.update(tile=tile, overlap=overlap, precision=counts_precision, blend=blender is not None)
    return counts


def _read_tile(t, scene, s1_scene, window: Window, used: Sequence[str], model_bands: Sequence[str]
               ) -> tuple[np.ndarray, np.ndarray]:
    """``(data, valid)`` of one tile: the bands the input has in the model's order (the others
    NaN, see :func:`~sparsevit.model_bands.to_model_bands`), then S1 when given."""
    w = Window(t.window.col_off + window.col_off, t.window.row_off + window.row_off,
               t.window.width, t.window.height)
    part, valid = scene.read(w, used)
    data = to_model_bands(part, used, model_bands)
    if s1_scene is not None:
        d1, v1 = s1_scene.read(w)
        data, valid = np.concatenate([data, d1]), valid & v1
    return data, valid


def _model_input(bundle: ModelBundle, items) -> torch.Tensor:
    """The normalised batch; no-data pixels -> 0 (the band means); absent bands stay NaN (the
    band-flexible models' convention)."""
    n_s2 = len(bundle.s2_bands)
    x = torch.stack([bundle.normalizer(d[:n_s2], d[n_s2:] if bundle.has_s1 else None) for _, d, *_ in items])
    invalid = torch.from_numpy(~np.stack([it[2] for it in items])).unsqueeze(1)
    if not bool(invalid.any()):
        return x
    # an absent band is a whole NaN channel (to_model_bands) and stays one; the bands read are
    # finite (the reader zeroes no-data), so one pixel tells which is which
    present = ~torch.isnan(x[:, :, :1, :1])
    return x.masked_fill(invalid & present, 0.0)


def _head_maps_at(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Per-head attention maps [heads, h, w] upsampled to the tile; one zero band without heads."""
    if not maps.shape[0]:
        return np.zeros((1,) + size, np.float32)
    return torch.nn.functional.interpolate(torch.from_numpy(maps)[None], size=size, mode="bilinear",
                                           align_corners=False)[0].numpy()


def _make_blender(tiles, grid: Grid, num_classes: int, has_seg: bool, lut: np.ndarray, writers,
                  counts: dict, has_clouds: bool = False) -> BandBlender:
    """A :class:`BandBlender` whose finished rows become the land-cover map (the segmenter's
    blended softmax, else the pseudomask), the pseudomask (its blended scores) and the
    confidence (the winning blended score); no-data pixels 255 and NaN."""
    lc_w, pm_w, cf_w = writers

    def emit(row_off: int, sums: dict, weight: np.ndarray, valid: np.ndarray) -> None:
        win = Window(0, row_off, grid.width, valid.shape[0])
        pm_lab, pm_conf = argmax_confidence(sums["pm"], weight)
        if "seg" in sums:
            lab, conf = argmax_confidence(sums["seg"], weight)
        else:
            lab, conf = pm_lab, pm_conf
        lc, pmv = lut[lab], lut[pm_lab]
        lc[~valid], pmv[~valid] = IGNORE, IGNORE
        conf[~valid] = np.nan
        if "cloud" in sums:  # cloudy where most of the blended tiles said so
            cloud = valid & (sums["cloud"][0] >= 0.5 * weight)
            lc[cloud], pmv[cloud], conf[cloud] = IGNORE, IGNORE, CLOUD_CONFIDENCE
            counts["cloud_pixels"] += int(cloud.sum())
        counts["valid_pixels"] += int(valid.sum())
        lc_w.write(lc, win)
        pm_w.write(pmv, win)
        cf_w.write(conf, win)

    channels = {"pm": num_classes} | ({"seg": num_classes} if has_seg else {}) | ({"cloud": 1} if has_clouds else {})
    band = max(int(t.window.height) for t in tiles)
    return BandBlender(grid.width, grid.height, band, channels, emit)


def _write_core(t, v, pm, ev, k, size, seg_probs, lut, writers, counts, cloud=None) -> None:
    """Without blending: the tile's own pseudomask and land cover, its core cut out."""
    lc_w, pm_w, cf_w = writers
    mask = make_pseudomask(pm.method, ev.probs[k], size, **ev.maps_for(pm.method, k),
                           threshold=pm.threshold, **pm.options)
    counts["fallback_tiles"] += bool(mask.info.get("fallback"))
    if seg_probs is not None:
        conf_t, lab_t = seg_probs[k].max(0)
        labels, conf = lab_t.numpy().astype(np.uint8), conf_t.numpy()
    else:
        labels, conf = mask.labels.astype(np.uint8), mask.confidence
    lc = lut[labels]
    pmv = lut[mask.labels.astype(np.uint8)]
    lc[~v], pmv[~v] = IGNORE, IGNORE
    conf = np.where(v, conf, np.nan).astype(np.float32)
    if cloud is not None:
        lc[cloud], pmv[cloud], conf[cloud] = IGNORE, IGNORE, CLOUD_CONFIDENCE
        counts["cloud_pixels"] += int(t.crop(cloud).sum())
    counts["valid_pixels"] += int(t.crop(v).sum())
    lc_w.write(t.crop(lc), t.core)
    pm_w.write(t.crop(pmv), t.core)
    cf_w.write(t.crop(conf), t.core)


def _finish(bundle, scene, window, grid, staged, outputs, opts, progress, counts, device, t_start) -> dict:
    from ..export import area_summary, vectorize, write_areas_csv, write_areas_json
    from .levels import coarse_mapping, write_coarse

    mapping = coarse_mapping(bundle, opts.level)
    detailed = opts.level != "coarse"
    if mapping is None:
        if opts.level is None:
            progress.log(f"no coarse level for the model's scheme '{bundle.scheme.name}': "
                         "detailed land-cover map only")
        for o in (staged, outputs):
            o.landcover_coarse = o.areas_coarse_csv = o.areas_coarse_json = None
    if not detailed:  # staged.landcover stays until the end: the coarse map is made from it
        outputs.landcover = None
    summary: dict = {"outputs": outputs.as_dict(), "scheme": bundle.scheme.name,
                     "level": "both" if mapping is not None and detailed
                     else ("coarse" if mapping is not None else "detailed"),
                     "model": bundle.describe(), "device": describe_device(device),
                     "grid": grid.to_dict(), "window": [int(window.col_off), int(window.row_off),
                                                        int(window.width), int(window.height)],
                     "counts": counts, "true_colour": true_colour(scene)}
    if mapping is not None:
        summary.update(coarse_scheme=mapping.target.name, coarse_mapping=mapping.name)
        write_coarse(staged.landcover, staged.landcover_coarse, grid, mapping, progress=progress)

    def rows(areas):
        return [{k: r[k] for k in ("value", "name", "hectares", "percent")} for r in areas["classes"]]

    if opts.stats and detailed:
        areas = area_summary(staged.landcover, bundle.scheme, progress=progress)
        write_areas_csv(staged.areas_csv, areas)
        write_areas_json(staged.areas_json, areas)
        summary["class_areas"] = rows(areas)
    if opts.stats and mapping is not None:
        areas = area_summary(staged.landcover_coarse, mapping.target, progress=progress)
        write_areas_csv(staged.areas_coarse_csv, areas)
        write_areas_json(staged.areas_coarse_json, areas)
        summary["class_areas_coarse"] = rows(areas)
    if opts.polygons:  # of the detailed map, or of the coarse one when that is the only map
        vectorize(staged.landcover if detailed else staged.landcover_coarse, staged.polygons,
                  bundle.scheme if detailed else mapping.target, progress=progress)
    if opts.overview:
        from .overview import write_overview
        with progress.stage("overview"):
            write_overview(scene, window, staged, bundle.scheme, staged.overview,
                           coarse_scheme=None if mapping is None else mapping.target,
                           detailed=detailed)
    if not detailed:
        staged.landcover = None  # not committed: removed with the staging folder
    seconds = time.perf_counter() - t_start
    px = grid.width * grid.height
    res = grid.res_m() if grid.crs is not None else None
    km2 = px * res[0] * res[1] / 1e6 if res else None
    summary["seconds"] = round(seconds, 2)
    summary["km2"] = None if km2 is None else round(km2, 3)
    summary["km2_per_min"] = None if km2 is None else round(km2 / (seconds / 60), 2)
    staged.run.write_text(json.dumps(summary, indent=2, default=float), encoding="utf-8")
    return summary
