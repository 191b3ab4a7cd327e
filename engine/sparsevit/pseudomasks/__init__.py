"""Stage 2 pseudomasks from attention/evidence maps: arrays in, label masks out."""
from .assignment import assign_by_matching, assign_by_order, correlation_matrix, predicted_classes
from .fill import nearest_fill, nearest_fill_reference, nearest_indices
from .postprocess import (
    IGNORE,
    METHODS,
    PseudoMask,
    attention,
    attention_faithful,
    attention_weighted,
    from_class_attention,
    from_class_maps,
    make_pseudomask,
    top1_fill,
)

__all__ = [
    "IGNORE", "METHODS", "PseudoMask", "assign_by_matching", "assign_by_order",
    "attention", "attention_faithful", "attention_weighted", "correlation_matrix",
    "from_class_attention", "from_class_maps", "make_pseudomask", "nearest_fill", "nearest_fill_reference",
    "nearest_indices", "predicted_classes", "top1_fill",
]
