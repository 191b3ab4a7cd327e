"""Segmentation networks for refinement, from segmentation_models_pytorch.

A registry of named configurations so a checkpoint can record one string and be rebuilt
exactly. Encoders are always built without pretrained weights: nothing is downloaded, and
ImageNet weights would not fit 12-14 band multispectral input anyway.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from .. import compat  # noqa: F401  (torchvision import shim, before smp/timm)
from ..errors import InputError
from ..models.vit import band_presence


@dataclass(frozen=True)
class SegmenterConfig:
    arch: str = "Unet"
    encoder_name: str = "resnet18"
    encoder_depth: int = 5
    decoder_channels: tuple[int, ...] = (256, 128, 64, 32, 16)
    extra: dict = field(default_factory=dict)
    # Band-flexible input: bands the raster lacks arrive as all-NaN channels; the network sees
    # the zero-filled bands plus one constant presence plane per band (see BandFlexible).
    band_flexible: bool = False

    def to_dict(self) -> dict:
        d = asdict(self)
        d["decoder_channels"] = list(self.decoder_channels)
        return d


SEGMENTERS: dict[str, SegmenterConfig] = {
    # CPU default: MobileNetV3 U-Net, 4.5 M parameters; on 2 cores it trained 2.6x and
    # predicted 3x faster than a ResNet-18 U-Net in one side-by-side run, and fits the
    # 20 MB budget of the bundled model in fp16.
    "unet-mnv3": SegmenterConfig(encoder_name="tu-mobilenetv3_large_100",
                                 decoder_channels=(128, 64, 32, 16, 8)),
    # the same, band-flexible (the default model's): any band subset, missing bands as NaN
    "unet-mnv3-flex": SegmenterConfig(encoder_name="tu-mobilenetv3_large_100",
                                      decoder_channels=(128, 64, 32, 16, 8), band_flexible=True),
    "unet-r18-small": SegmenterConfig(encoder_depth=4, decoder_channels=(128, 64, 32, 16)),
    "unet-r18": SegmenterConfig(),
    "unet-r34": SegmenterConfig(encoder_name="resnet34"),
    "deeplabv3plus-r50": SegmenterConfig(arch="DeepLabV3Plus", encoder_name="resnet50",
                                         decoder_channels=(256,)),
}


class BandFlexible(nn.Module):
    """Wraps a segmentation network built for ``2 x C`` input channels: the ``C`` bands with
    missing (all-NaN) ones set to 0, the band mean after normalisation, and ``C`` planes that
    are 1 where the band exists, so the network can tell a dark band from an absent one."""

    def __init__(self, net: nn.Module, in_channels: int):
        super().__init__()
        self.net, self.in_channels = net, in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, present = band_presence(x)
        return self.net(torch.cat([x, present.to(x.dtype)[:, :, None, None].expand_as(x)], dim=1))


def build_segmenter(name_or_config: str | SegmenterConfig | dict, in_channels: int,
                    num_classes: int) -> nn.Module:
    import segmentation_models_pytorch as smp

    if isinstance(name_or_config, str):
        if name_or_config not in SEGMENTERS:
            raise InputError(f"unknown segmenter '{name_or_config}'",
                             fix=f"use one of {', '.join(sorted(SEGMENTERS))}")
        cfg = SEGMENTERS[name_or_config]
    elif isinstance(name_or_config, dict):
        d = dict(name_or_config)
        d["decoder_channels"] = tuple(d.get("decoder_channels", SegmenterConfig.decoder_channels))
        cfg = SegmenterConfig(**d)
    else:
        cfg = name_or_config
    net_in = 2 * in_channels if cfg.band_flexible else in_channels
    kwargs = dict(encoder_name=cfg.encoder_name, encoder_weights=None, in_channels=net_in,
                  classes=num_classes, **cfg.extra)
    if cfg.arch == "Unet":
        kwargs.update(encoder_depth=cfg.encoder_depth, decoder_channels=cfg.decoder_channels)
    elif cfg.arch == "DeepLabV3Plus":
        kwargs.update(decoder_channels=cfg.decoder_channels[0])
    model = smp.create_model(cfg.arch, **kwargs)
    if cfg.band_flexible:
        model = BandFlexible(model, in_channels)
    model.sparsevit_config = cfg  # recorded in checkpoints
    return model


def with_num_classes(model: nn.Module, num_classes: int, seed: int = 0) -> nn.Module:
    """A copy of ``model`` whose last layer predicts ``num_classes`` (new, seeded weights), the
    rest kept: fine-tuning a trained segmenter for another class scheme (``sparsevit fit``)."""
    import copy

    new = copy.deepcopy(model)
    net = new.net if isinstance(new, BandFlexible) else new
    head = getattr(net, "segmentation_head", None)
    conv = head[0] if isinstance(head, nn.Sequential) and isinstance(head[0], nn.Conv2d) else None
    if conv is None:
        raise ValueError(f"cannot find the segmentation head of {type(net).__name__}")
    torch.manual_seed(seed)
    head[0] = nn.Conv2d(conv.in_channels, num_classes, conv.kernel_size, conv.stride, conv.padding,
                        bias=conv.bias is not None)
    return new


@torch.no_grad()
def predict_logits_padded(model: nn.Module, x: torch.Tensor, multiple: int = 32) -> torch.Tensor:
    """Run ``model`` on inputs whose size is not a multiple of the encoder stride.

    U-Net encoders halve the size ``depth`` times; reflect-pad up to the next multiple and crop
    the logits back, so any raster window size works.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        mode = "reflect" if (ph < h and pw < w) else "replicate"
        x = torch.nn.functional.pad(x, (0, pw, 0, ph), mode=mode)
    return model(x)[..., :h, :w]
