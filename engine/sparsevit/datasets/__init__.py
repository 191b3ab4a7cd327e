"""Dataset readers (numpy only). Every reader yields :class:`Sample` and exposes ``scheme``,
``s2_bands`` and ``has_s1``; see each module for the layout it expects."""
from ..schemes import IGNORE
from .base import Dataset, Sample, labels_from_mask
from .bigearthnet import BigEarthNetV1Dataset, BigEarthNetV2Dataset
from .dfc2020 import DFC2020Dataset
from .eurosat import EuroSATDataset, list_eurosat, load_patch_bank, source_split
from .mosaic import EuroSatMosaic, MosaicFolderDataset

__all__ = ["IGNORE", "Dataset", "Sample", "labels_from_mask", "BigEarthNetV1Dataset",
           "BigEarthNetV2Dataset", "DFC2020Dataset", "EuroSATDataset", "list_eurosat",
           "load_patch_bank", "source_split", "EuroSatMosaic", "MosaicFolderDataset"]
