"""Many scenes: one ``predict`` per scene, each into ``OUT/<scene>/``, finished scenes skipped.

Workers split the list statically (scene ``i`` belongs to worker ``i mod N``), so any number of
processes or machines sharing the output folder cooperate without talking to each other, and a
rerun of the same command resumes: a scene counts as finished when its run record is there
(``predict`` commits it only with every other output). ``torchrun`` launches the workers and
sets ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK``; ``--worker I/N`` does the same by hand (a
cluster scheduler's array index, for example).
"""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

from ..errors import InputError, SparseVitError
from ..io.atomic import write_text_atomic
from ..progress import Progress, null_progress
from .scene import PredictOptions, predict_scene

# files a scene folder may be: rasters, zipped SAFE products, GDAL's text formats
_SCENE_SUFFIXES = {".tif", ".tiff", ".vrt", ".jp2", ".img", ".zip", ".xml"}


@dataclass(frozen=True)
class Worker:
    rank: int = 0
    count: int = 1

    def owns(self, index: int) -> bool:
        return index % self.count == self.rank


def worker_from(text: str | None, env: dict | None = None) -> Worker:
    """``--worker I/N`` (0-based), else torchrun's ``RANK``/``WORLD_SIZE``, else the only worker."""
    env = os.environ if env is None else env
    if text:
        try:
            rank, count = (int(v) for v in text.split("/"))
        except ValueError:
            raise InputError(f"--worker must look like I/N (e.g. 0/4), got '{text}'") from None
    else:
        rank, count = int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1))
    if count < 1 or not 0 <= rank < count:
        raise InputError(f"worker {rank} of {count} does not exist",
                         fix="use 0 <= I < N in --worker I/N")
    return Worker(rank, count)


def read_scene_list(source: str | Path) -> list[Path]:
    """The scenes named by a text file (one path per line, relative to the file; ``#`` comments)
    or held by a folder (its rasters, SAFE products and band folders, sorted by name)."""
    src = Path(source)
    if src.is_dir():
        scenes = [p for p in sorted(src.iterdir()) if not p.name.startswith(".")
                  and (p.is_dir() or p.suffix.lower() in _SCENE_SUFFIXES)
                  and not p.name.endswith(".aux.xml")]
    elif src.is_file():
        scenes = []
        for n, line in enumerate(src.read_text(encoding="utf-8").splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            p = Path(line).expanduser()
            p = p if p.is_absolute() else src.parent / p
            if not p.exists():
                raise InputError(f"line {n} names a scene that does not exist: {line}", path=src,
                                 fix="fix or remove the line (paths are relative to the list file)")
            scenes.append(p)
    else:
        raise InputError("the scene list does not exist", path=src,
                         fix="give a text file with one scene per line, or a folder of scenes")
    if not scenes:
        raise InputError("the scene list names no scene", path=src,
                         fix="add scenes (rasters, SAFE products or band folders)")
    return scenes


def scene_stem(path: Path) -> str:
    name = path.name
    for suffix in (".zip", ".SAFE"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return Path(name).stem if path.is_file() and not path.name.endswith(".zip") else name


def predict_scenes(bundle, scenes: Sequence[Path], out_dir: str | Path, opts: PredictOptions | None = None,
                   worker: Worker = Worker(), progress: Progress | None = None) -> dict:
    """Predict this worker's share of ``scenes``; returns (and writes to
    ``OUT/.batch/worker-I-of-N.json``) what was done, skipped and failed."""
    opts = opts or PredictOptions()
    progress = progress or null_progress()
    out_dir = Path(out_dir)
    stems = [scene_stem(p) for p in scenes]
    dup = sorted({s for s in stems if stems.count(s) > 1})
    if dup:
        raise InputError(f"several scenes would write the same outputs: {', '.join(dup[:5])}",
                         fix="give scenes distinct names (each gets OUT/<name>/)")
    mine = [i for i in range(len(scenes)) if worker.owns(i)]
    record = {"worker": worker.rank, "workers": worker.count, "scenes": len(scenes), "mine": len(mine),
              "done": [], "skipped": [], "failed": []}
    t0 = time.perf_counter()
    progress.log(f"worker {worker.rank + 1} of {worker.count}: {len(mine)} of {len(scenes)} scenes")
    with progress.stage("scenes", total=len(mine)) as st:
        for i in mine:
            progress.check_cancelled()
            scene, stem = scenes[i], stems[i]
            dest = out_dir / stem
            if (dest / f"{stem}_run.json").is_file() and not opts.overwrite:
                record["skipped"].append(stem)
                st.advance()
                continue
            dest.mkdir(parents=True, exist_ok=True)
            for stale in dest.glob(f".{stem}.partial-*"):  # left by a killed worker
                shutil.rmtree(stale, ignore_errors=True)
            try:
                # a half-finished scene (some files, no run record) is redone from the start
                summary = predict_scene(bundle, scene, dest, opts=replace(opts, overwrite=True),
                                        progress=progress, stem=stem)
            except SparseVitError as exc:
                record["failed"].append({"scene": str(scene), "error": str(exc)})
                progress.log(f"{scene}: {exc}", level="error")
            else:
                record["done"].append({"scene": stem, "seconds": summary.get("seconds"),
                                       "km2": summary.get("km2")})
            st.advance()
    record["seconds"] = round(time.perf_counter() - t0, 1)
    (out_dir / ".batch").mkdir(exist_ok=True)
    write_text_atomic(out_dir / ".batch" / f"worker-{worker.rank}-of-{worker.count}.json",
                      json.dumps(record, indent=1))
    return record
