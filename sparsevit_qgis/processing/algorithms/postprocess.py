"""Styling of layers that Processing loads when an algorithm finishes.

Post-processors run on the main thread (in Processing's result handling), so they may touch
layers; the algorithm itself, on a worker thread, only records what to style and how.
"""
from __future__ import annotations

from qgis.core import QgsProcessingContext, QgsProcessingLayerPostProcessorInterface

from ...core.schemes import SchemeError
from ...core.styling import style_for_role


class StyleOnLoad(QgsProcessingLayerPostProcessorInterface):
    """Applies the SparseViT style of one result role to the layer Processing just loaded."""

    # LayerDetails does not keep the Python wrapper alive; without a reference here sip would
    # delete the post-processor before Processing calls it.
    _alive: list["StyleOnLoad"] = []

    def __init__(self, role: str, scheme=None, classes=None):
        super().__init__()
        self.role, self.scheme, self.classes = role, scheme, classes

    @classmethod
    def create(cls, role: str, scheme=None, classes=None) -> "StyleOnLoad":
        inst = cls(role, scheme, classes)
        cls._alive = cls._alive[-63:] + [inst]
        return inst

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802
        try:
            style_for_role(layer, self.role, self.scheme, self.classes)
        except (SchemeError, RuntimeError) as exc:
            if feedback is not None:
                feedback.pushWarning(f"{layer.name()}: could not be styled ({exc})")


def load_on_completion(context: QgsProcessingContext, path: str, name: str, output_name: str,
                       role: str, scheme=None, classes=None) -> None:
    details = QgsProcessingContext.LayerDetails(name, context.project(), output_name)
    details.setPostProcessor(StyleOnLoad.create(role, scheme, classes))
    context.addLayerToLoadOnCompletion(path, details)
