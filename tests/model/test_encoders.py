"""Frame encoders on real photos and tiny random weights, and their ONNX parity.

The photos are scikit-image's sample data (installed with --no-deps by scripts/setup.sh);
they are read with cv2 from the package folder, never by importing skimage.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from transformers import Dinov2Config, Dinov2Model

from model.encoders import (
    EFFICIENTNET_LITE0,
    IMAGENET_MEAN,
    IMAGENET_STD,
    ResNet50,
    load_encoder,
)
from model.export.encoder import (
    INPUT_NAME,
    OUTPUT_NAME,
    export_encoder,
    onnx_session,
    sample_frames,
)
from runtime.errors import CheckpointError, ConfigError
from runtime.preprocess import SHORTER_SIDE_CROP, Preprocess

pytestmark = pytest.mark.integration  # real pretrained encoders and their ONNX export

CATS = (281, 282, 285)  # ImageNet: tabby, tiger cat, Egyptian cat
ESPRESSO = 967
TORCHVISION_RESNET50_PARAMS = 25_557_032


def photo(name: str) -> np.ndarray:
    spec = importlib.util.find_spec("skimage")
    assert spec is not None and spec.origin, "scikit-image is installed by scripts/setup.sh"
    image = cv2.imread(str(Path(spec.origin).parent / "data" / name), cv2.IMREAD_COLOR)
    assert image is not None, name
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    """chelsea.png (a tabby cat) and coffee.png (an espresso), centre-cropped to 300×400."""
    frames = []
    for image in (photo("chelsea.png"), photo("coffee.png")):
        top, left = (image.shape[0] - 300) // 2, (image.shape[1] - 400) // 2
        frames.append(image[top : top + 300, left : left + 400])
    return np.stack(frames)


@pytest.fixture(scope="module")
def lite0():
    return load_encoder(EFFICIENTNET_LITE0)


@pytest.fixture(scope="module")
def resnet_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("resnet") / "resnet50.safetensors"
    save_file(ResNet50().state_dict(), str(path))
    return path


@pytest.fixture(scope="module")
def dinov2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("dinov2") / "tiny"
    config = Dinov2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64
    )
    torch.manual_seed(0)
    Dinov2Model(config).save_pretrained(folder)
    return folder


def test_efficientnet_lite0_is_pretrained_on_imagenet(lite0, photos: np.ndarray) -> None:
    logits = lite0.imagenet_logits(photos)
    assert logits.shape == (2, 1000)
    assert logits[0].argmax() in CATS
    assert logits[1].argmax() == ESPRESSO


def test_efficientnet_lite0_wants_pixels_in_minus_one_to_one(lite0, photos: np.ndarray) -> None:
    """The TF-trained Lite weights are more sure of the right classes with (x-127)/128 than
    with ImageNet mean/std: the preprocessing recorded in the encoder is the right one."""
    imagenet = Preprocess(224, SHORTER_SIDE_CROP, 256, IMAGENET_MEAN, IMAGENET_STD)
    right = [list(CATS), [ESPRESSO]]

    def p_right(preprocess: Preprocess) -> np.ndarray:
        pixels = torch.from_numpy(preprocess.apply(photos))
        with torch.inference_mode():
            probs = lite0.classifier(lite0.module(pixels)).softmax(-1).numpy()
        return np.array([probs[i, right[i]].sum() for i in range(2)])

    lite, imagenet_p = p_right(lite0.preprocess), p_right(imagenet)
    assert lite0.preprocess.mean == pytest.approx((127 / 255,) * 3)
    assert lite0.preprocess.std == pytest.approx((128 / 255,) * 3)
    assert (lite > 0.9).all() and (lite > imagenet_p).all(), (lite, imagenet_p)


def test_encode_is_batched_and_takes_one_frame(lite0, photos: np.ndarray) -> None:
    frames = np.concatenate([photos, photos[::-1], photos[:1]])  # 5 frames
    one_batch = lite0.encode(frames, batch_size=16)
    assert one_batch.shape == (5, 1280) and one_batch.dtype == np.float32
    np.testing.assert_allclose(lite0.encode(frames, batch_size=2), one_batch, atol=1e-4)
    np.testing.assert_allclose(lite0.encode(photos[1]), one_batch[1:2], atol=1e-4)
    assert lite0.encode(photos[:0]).shape == (0, 1280)
    assert lite0.describe() == {
        "spec": "efficientnet-lite0",
        "name": "efficientnet-lite0",
        "feature_dim": 1280,
        "preprocess": lite0.preprocess.to_dict(),
    }
    assert lite0.describe()["preprocess"]["resize_to"] == 256


def test_efficientnet_lite0_onnx_matches_pytorch(lite0, photos: np.ndarray, tmp_path) -> None:
    report = export_encoder(lite0, tmp_path / "encoder.onnx", frames=photos)
    assert report["batch_sizes"] == [1, 3] and report["opset"] >= 17
    assert report["max_abs_diff"] < 1e-3, report
    session = onnx_session(tmp_path / "encoder.onnx")
    (pixels,), (features,) = session.get_inputs(), session.get_outputs()
    assert (pixels.name, pixels.shape[1:], pixels.type) == (
        INPUT_NAME,
        [3, 224, 224],
        "tensor(float)",
    )
    assert (features.name, features.shape[1]) == (OUTPUT_NAME, 1280)
    assert isinstance(pixels.shape[0], str)  # dynamic batch
    (out,) = session.run(None, {INPUT_NAME: lite0.preprocess.apply(photos)})
    assert out.shape == (2, 1280)


def test_resnet50_loads_torchvision_names_strictly(resnet_file: Path, tmp_path) -> None:
    encoder = load_encoder(f"resnet50:{resnet_file}")
    assert sum(p.numel() for p in encoder.module.parameters()) == TORCHVISION_RESNET50_PARAMS
    keys = set(encoder.module.state_dict())
    assert {"conv1.weight", "layer1.0.downsample.0.weight", "layer4.2.bn3.running_var"} <= keys
    assert {"fc.weight", "fc.bias", "layer1.0.downsample.1.num_batches_tracked"} <= keys
    assert encoder.describe()["feature_dim"] == 2048
    assert encoder.preprocess.to_dict()["mean"] == list(IMAGENET_MEAN)
    assert encoder.encode(np.zeros((2, 240, 320, 3), np.uint8)).shape == (2, 2048)
    # A .pth training checkpoint saved from DataParallel loads too.
    state = {f"module.{k}": v for k, v in ResNet50().state_dict().items()}
    torch.save({"state_dict": state, "epoch": 3}, tmp_path / "resnet50.pth")
    assert load_encoder(f"resnet50:{tmp_path / 'resnet50.pth'}").feature_dim == 2048
    # A Kinetics-400 classifier, or none at all: the features are the same 2048-d.
    save_file(ResNet50(num_classes=400).state_dict(), str(tmp_path / "kinetics.safetensors"))
    kinetics = load_encoder(f"resnet50:{tmp_path / 'kinetics.safetensors'}")
    assert kinetics.imagenet_logits(np.zeros((1, 64, 64, 3), np.uint8)).shape == (1, 400)
    save_file(ResNet50(num_classes=None).state_dict(), str(tmp_path / "trunk.safetensors"))
    trunk = load_encoder(f"resnet50:{tmp_path / 'trunk.safetensors'}")
    assert trunk.classifier is None and trunk.feature_dim == 2048


def test_resnet50_onnx_matches_pytorch(resnet_file: Path, tmp_path) -> None:
    encoder = load_encoder(f"resnet50:{resnet_file}")
    report = export_encoder(encoder, tmp_path / "encoder.onnx")
    assert report["max_abs_diff"] < 1e-3 and report["batch_sizes"] == [1, 3]
    # Random weights give small features: the difference is small relative to them too.
    scale = np.abs(encoder.encode(sample_frames(3))).max()
    assert report["max_abs_diff"] < 1e-4 * scale, (report, scale)


def test_dinov2_features_are_cls_and_mean_patch(dinov2_dir: Path) -> None:
    encoder = load_encoder(f"dinov2:{dinov2_dir}")
    assert encoder.feature_dim == 64 and encoder.classifier is None
    frames = np.random.default_rng(0).integers(0, 256, (2, 240, 320, 3), dtype=np.uint8)
    features = encoder.encode(frames)
    assert features.shape == (2, 64)
    with torch.inference_mode():
        hidden = encoder.module.model(torch.from_numpy(encoder.preprocess.apply(frames)))
    tokens = hidden.last_hidden_state.numpy()
    assert tokens.shape[1] == 1 + (224 // 14) ** 2
    np.testing.assert_allclose(features[:, :32], tokens[:, 0], atol=1e-5)
    np.testing.assert_allclose(features[:, 32:], tokens[:, 1:].mean(axis=1), atol=1e-5)
    assert encoder.preprocess == Preprocess(
        224, SHORTER_SIDE_CROP, 256, IMAGENET_MEAN, IMAGENET_STD
    )


def test_dinov2_reads_preprocessor_config_and_exports(dinov2_dir: Path, tmp_path) -> None:
    folder = tmp_path / "dinov2"
    folder.mkdir()
    for file in dinov2_dir.iterdir():
        (folder / file.name).write_bytes(file.read_bytes())
    (folder / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "image_processor_type": "BitImageProcessor",
                "do_resize": True,
                "size": {"shortest_edge": 128},
                "do_center_crop": True,
                "crop_size": {"height": 112, "width": 112},
                "do_rescale": True,
                "rescale_factor": 1 / 255,
                "do_normalize": True,
                "image_mean": [0.5, 0.5, 0.5],
                "image_std": [0.25, 0.25, 0.25],
            }
        )
    )
    encoder = load_encoder(f"dinov2:{folder}")
    assert encoder.preprocess == Preprocess(112, SHORTER_SIDE_CROP, 128, (0.5,) * 3, (0.25,) * 3)
    report = export_encoder(encoder, tmp_path / "encoder.onnx")
    assert report["max_abs_diff"] < 1e-4, report
    with pytest.raises(CheckpointError, match="more than atol"):
        export_encoder(encoder, tmp_path / "strict.onnx", atol=1e-12)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dinov2", "encoder.onnx"]
    assert encoder.encode(np.zeros((3, 120, 160, 3), np.uint8)).shape == (3, 64)


@pytest.mark.parametrize("spec", ["resnet18", "resnet50", "resnet50:", "dinov2", "efficientnet-b0"])
def test_bad_specs_list_the_valid_ones(spec: str) -> None:
    with pytest.raises(ConfigError, match=r"efficientnet-lite0 \| resnet50:PATH \| dinov2:PATH"):
        load_encoder(spec)


def test_bad_device_is_refused() -> None:
    with pytest.raises(ConfigError, match="on device 'bogus'"):
        load_encoder(EFFICIENTNET_LITE0, device="bogus")


def test_missing_and_corrupt_weights_are_refused(tmp_path, dinov2_dir: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_encoder(f"resnet50:{tmp_path / 'nope.pth'}")
    (tmp_path / "corrupt.pth").write_bytes(b"not a pickle at all")
    with pytest.raises(ConfigError, match="cannot read weights"):
        load_encoder(f"resnet50:{tmp_path / 'corrupt.pth'}")
    (tmp_path / "corrupt.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage")
    with pytest.raises(ConfigError, match="cannot read weights"):
        load_encoder(f"resnet50:{tmp_path / 'corrupt.safetensors'}")
    with pytest.raises(ConfigError, match=r"dinov2 folder .* not found"):
        load_encoder(f"dinov2:{tmp_path / 'nope'}")
    with pytest.raises(ConfigError, match=r"no config\.json"):
        load_encoder(f"dinov2:{tmp_path}")
    weights = dinov2_dir / "model.safetensors"
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_bytes((dinov2_dir / "config.json").read_bytes())
    (broken / "model.safetensors").write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ConfigError, match="cannot load DINOv2"):
        load_encoder(f"dinov2:{broken}")
    (broken / "config.json").write_text(json.dumps({"model_type": "vit"}))
    with pytest.raises(ConfigError, match="expected 'dinov2'"):
        load_encoder(f"dinov2:{broken}")


def test_resnet50_key_mismatch_names_the_keys(tmp_path) -> None:
    state = ResNet50().state_dict()
    state["head.weight"] = state.pop("fc.weight")
    save_file(state, str(tmp_path / "renamed.safetensors"))
    with pytest.raises(
        ConfigError,
        match=r"not a torchvision ResNet-50 .*missing 1: fc.weight; unexpected 1: head.weight",
    ):
        load_encoder(f"resnet50:{tmp_path / 'renamed.safetensors'}")
