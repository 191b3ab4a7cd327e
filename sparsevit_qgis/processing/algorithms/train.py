"""``sparsevit:train``: train the gated ViT classifier on image-level labels (Stage 1)."""
from __future__ import annotations

from pathlib import Path

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputFile,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
)

from .base import EngineAlgorithm

DATASETS = ("eurosat-mosaic", "dfc2020", "bigearthnet-v2")
CONFIGS = ("tiny", "small", "base", "paper")


class TrainAlgorithm(EngineAlgorithm):
    engine_command = "train"
    group_id, group_title = "training", "Training"
    DATASET, DATA, CONFIG, EPOCHS, LAMBDA_L0, S1 = "DATASET", "DATA", "CONFIG", "EPOCHS", "LAMBDA_L0", "S1"
    BATCH_SIZE, CROP, TRAIN_SCENES, VAL_SCENES, SEED = "BATCH_SIZE", "CROP", "TRAIN_SCENES", "VAL_SCENES", "SEED"
    OUTPUT = "OUTPUT"
    CHECKPOINT, PRUNED_CHECKPOINT, PRUNED_SHARE, MACRO_F1 = (
        "CHECKPOINT", "PRUNED_CHECKPOINT", "PRUNED_SHARE", "MACRO_F1")

    display_name = "Train classifier"
    help_text = (
        "Trains the gated multimodal Vision Transformer on image-level labels (Stage 1 of "
        "SparseViT). LAMBDA_L0 weights the L0 penalty that closes attention heads (0: no "
        "pruning). eurosat-mosaic builds training scenes from EuroSAT-MS patches (no "
        "Sentinel-1); dfc2020 and bigearthnet-v2 may use Sentinel-1. The checkpoint is written "
        "to the output folder and can be used as the model of 'Map land cover'. Training on "
        "a CPU is slow: start with the tiny configuration and few epochs.")

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterEnum(
            self.DATASET, self.tr("Dataset layout"), options=list(DATASETS),
            defaultValue="eurosat-mosaic", usesStaticStrings=True))
        self.addParameter(QgsProcessingParameterFile(
            self.DATA, self.tr("Dataset folder"), behavior=QgsProcessingParameterFile.Folder))
        self.addParameter(QgsProcessingParameterEnum(
            self.CONFIG, self.tr("Architecture"), options=list(CONFIGS), defaultValue="tiny",
            usesStaticStrings=True))
        self.addParameter(QgsProcessingParameterNumber(
            self.EPOCHS, self.tr("Epochs"), type=QgsProcessingParameterNumber.Integer,
            defaultValue=10, minValue=1))
        self.addParameter(QgsProcessingParameterNumber(
            self.LAMBDA_L0, self.tr("L0 penalty weight (head pruning; 0: none)"),
            type=QgsProcessingParameterNumber.Double, defaultValue=0.0, minValue=0.0))
        self.addParameter(QgsProcessingParameterBoolean(
            self.S1, self.tr("Also use Sentinel-1 (VV, VH)"), defaultValue=False))
        advanced = [
            QgsProcessingParameterNumber(self.BATCH_SIZE, self.tr("Batch size"),
                                         type=QgsProcessingParameterNumber.Integer,
                                         defaultValue=32, minValue=1),
            QgsProcessingParameterNumber(self.CROP, self.tr("Training crop in px (0: none)"),
                                         type=QgsProcessingParameterNumber.Integer,
                                         defaultValue=128, minValue=0),
            QgsProcessingParameterNumber(self.TRAIN_SCENES, self.tr("eurosat-mosaic: scenes per epoch"),
                                         type=QgsProcessingParameterNumber.Integer,
                                         defaultValue=1000, minValue=1),
            QgsProcessingParameterNumber(self.VAL_SCENES, self.tr("eurosat-mosaic: test scenes"),
                                         type=QgsProcessingParameterNumber.Integer,
                                         defaultValue=200, minValue=0),
            QgsProcessingParameterNumber(self.SEED, self.tr("Random seed"),
                                         type=QgsProcessingParameterNumber.Integer, defaultValue=0),
        ]
        for p in advanced:
            p.setFlags(p.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
            self.addParameter(p)
        self.addParameter(QgsProcessingParameterFolderDestination(self.OUTPUT, self.tr("Output folder")))
        self.addOutput(QgsProcessingOutputFile(self.CHECKPOINT, self.tr("Model checkpoint")))
        self.addOutput(QgsProcessingOutputFile(self.PRUNED_CHECKPOINT, self.tr("Pruned checkpoint")))
        self.addOutput(QgsProcessingOutputNumber(self.PRUNED_SHARE, self.tr("Share of heads pruned")))
        self.addOutput(QgsProcessingOutputNumber(self.MACRO_F1, self.tr("Validation macro F1")))

    def engine_args(self, parameters, context, feedback):
        dataset = self.parameterAsEnumString(parameters, self.DATASET, context)
        data = self.parameterAsFile(parameters, self.DATA, context)
        if not data or not Path(data).is_dir():
            raise QgsProcessingException(self.tr("{0}: the dataset folder does not exist.").format(data))
        out = self.parameterAsString(parameters, self.OUTPUT, context)
        args = ["--dataset", dataset, "--data", data, "--out", out,
                "--config", self.parameterAsEnumString(parameters, self.CONFIG, context),
                "--epochs", str(self.parameterAsInt(parameters, self.EPOCHS, context)),
                "--lambda-l0", repr(self.parameterAsDouble(parameters, self.LAMBDA_L0, context)),
                "--batch-size", str(self.parameterAsInt(parameters, self.BATCH_SIZE, context)),
                "--crop", str(self.parameterAsInt(parameters, self.CROP, context)),
                "--seed", str(self.parameterAsInt(parameters, self.SEED, context))]
        if dataset == "eurosat-mosaic":
            args += ["--train-scenes", str(self.parameterAsInt(parameters, self.TRAIN_SCENES, context)),
                     "--val-scenes", str(self.parameterAsInt(parameters, self.VAL_SCENES, context))]
        if self.parameterAsBoolean(parameters, self.S1, context):
            args.append("--s1")
        return args

    def engine_outputs(self, outcome, parameters, context, feedback):
        r = outcome.result or {}
        return {self.OUTPUT: self.parameterAsString(parameters, self.OUTPUT, context),
                self.CHECKPOINT: r.get("checkpoint"), self.PRUNED_CHECKPOINT: r.get("pruned_checkpoint"),
                self.PRUNED_SHARE: r.get("pruned_share"), self.MACRO_F1: r.get("macro_f1")}
