"""Base class of every SparseViT Processing algorithm: one engine command per algorithm.

A subclass names the engine command, declares its parameters and turns parameters into CLI
arguments; running, progress, cancel (``feedback.isCanceled()``), logging and error reporting
live here. Processing may run algorithms on a worker thread: nothing here touches widgets,
and the engine runs in its own process.
"""
from __future__ import annotations

import json

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProviderRegistry,
    QgsRasterLayer,
)
from qgis.PyQt.QtCore import QCoreApplication

from ...core.engine_locator import engine_environment, locate_engine
from ...core.engine_runner import EngineOutcome, EngineRunner, build_command


class EngineAlgorithm(QgsProcessingAlgorithm):
    #: engine sub-command (``sparsevit <command>``)
    engine_command: str = ""
    #: Processing group shown in the toolbox
    group_id: str = "tools"
    group_title: str = "Tools"
    #: toolbox title and help panel text (translated when shown); the algorithm id is the
    #: engine command, so ``sparsevit:predict`` runs ``sparsevit predict``
    display_name: str = ""
    help_text: str = ""

    # --- to implement ------------------------------------------------------------------
    def engine_args(self, parameters: dict, context: QgsProcessingContext,
                    feedback: QgsProcessingFeedback) -> list[str]:
        raise NotImplementedError

    def engine_outputs(self, outcome: EngineOutcome, parameters: dict,
                       context: QgsProcessingContext, feedback: QgsProcessingFeedback) -> dict:
        """Algorithm outputs from the engine's ``result`` event; default: none."""
        return {}

    # --- QgsProcessingAlgorithm ---------------------------------------------------------
    def tr(self, text: str) -> str:
        return QCoreApplication.translate("SparseViT", text)

    def createInstance(self):  # noqa: N802
        return type(self)()

    def name(self) -> str:
        return self.engine_command

    def displayName(self) -> str:  # noqa: N802
        return self.tr(self.display_name)

    def shortHelpString(self) -> str:  # noqa: N802
        return self.tr(self.help_text)

    def group(self) -> str:
        return self.tr(self.group_title)

    def groupId(self) -> str:  # noqa: N802
        return self.group_id

    # Processing may call this on a worker thread; that is safe because the engine is a
    # separate process and nothing here touches widgets.
    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        feedback = feedback or QgsProcessingFeedback()
        args = self.engine_args(parameters, context, feedback)
        info = locate_engine()
        if not info.ok:
            raise QgsProcessingException(info.message)
        feedback.pushInfo(self.tr("SparseViT engine {0} ({1})").format(info.version or "?", info.python))
        outcome = self.run_engine(info.python, args, feedback)
        if outcome.cancelled:
            raise QgsProcessingException(self.tr("Cancelled; no output was written."))
        if not outcome.ok:
            if outcome.stderr.strip():
                feedback.pushDebugInfo(outcome.stderr.strip())
            raise QgsProcessingException(outcome.message)
        return self.engine_outputs(outcome, parameters, context, feedback)

    def run_engine(self, python: str, args: list[str],
                   feedback: QgsProcessingFeedback) -> EngineOutcome:
        def on_progress(stage, fraction, done, total):
            if fraction is not None:
                feedback.setProgress(100.0 * fraction)

        def on_stage(stage, started):
            if started:
                feedback.setProgressText(stage)

        def on_log(level, message):
            if level in ("error", "critical"):
                feedback.reportError(message, False)
            elif level in ("warning", "warn"):
                feedback.pushWarning(message)
            elif level in ("debug", "stdout"):
                feedback.pushDebugInfo(message)
            else:
                feedback.pushInfo(message)

        def on_event(event):
            if event.get("event") == "start" and event.get("device"):
                feedback.pushInfo(self.tr("Engine device: {0}").format(
                    event.get("device_name") or event["device"]))

        runner = EngineRunner(python, self.engine_command, args, on_progress=on_progress,
                              on_stage=on_stage, on_log=on_log, on_event=on_event,
                              extra_env=engine_environment())
        feedback.pushCommandInfo(" ".join(build_command(python, self.engine_command, args)))
        return runner.run(should_cancel=feedback.isCanceled)


def raster_path(layer: QgsRasterLayer) -> str:
    """The file behind a GDAL raster layer (its source may carry ``|option`` suffixes)."""
    if layer.providerType() != "gdal":
        raise QgsProcessingException(
            f"{layer.name()}: the SparseViT engine reads raster files; this layer comes from "
            f"the '{layer.providerType()}' provider. Export it to a GeoTIFF first.")
    parts = QgsProviderRegistry.instance().decodeUri("gdal", layer.source())
    return parts.get("path") or layer.source()


def result_json(outcome: EngineOutcome) -> str:
    return json.dumps(outcome.result or {}, indent=2, sort_keys=True, default=str)
