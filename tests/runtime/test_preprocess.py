from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from runtime.errors import ConfigError
from runtime.preprocess import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    SHORTER_SIDE_CROP,
    STRETCH,
    FrameError,
    Preprocess,
)


def identity(size: int, resize_to: int, resize: str = SHORTER_SIDE_CROP) -> Preprocess:
    """No normalisation: output * 255 gives back the resized pixels."""
    return Preprocess(size, resize, resize_to, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))


def random_frames(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)


def test_apply_gives_float32_nchw_for_a_batch_and_for_one_frame() -> None:
    prep = Preprocess(224, SHORTER_SIDE_CROP, 256, IMAGENET_MEAN, IMAGENET_STD)
    batch = prep.apply(random_frames(2, 480, 640))
    assert batch.shape == (2, 3, 224, 224) and batch.dtype == np.float32
    assert batch.flags["C_CONTIGUOUS"]
    assert prep.apply(random_frames(300, 200)).shape == (1, 3, 224, 224)  # portrait, one frame
    assert prep.apply(random_frames(100, 150)).shape == (1, 3, 224, 224)  # enlarged


def test_crop_is_the_centre_of_the_shorter_side_resize() -> None:
    frame = random_frames(480, 640)
    # Shorter side already 480: no resampling, the 224 crop starts at (128, 208).
    out = identity(224, 480).apply(frame)[0].transpose(1, 2, 0) * 255
    np.testing.assert_allclose(out, frame[128:352, 208:432], atol=1e-4)


def test_downscale_averages_the_covered_pixels_then_crops_the_centre() -> None:
    small = random_frames(240, 320)
    frame = np.repeat(np.repeat(small, 2, axis=0), 2, axis=1)  # 480×640 of 2×2 blocks
    # 640×480 → shorter side 240 (320×240, INTER_AREA gives back `small`) → crop at (8, 48).
    out = identity(224, 240).apply(frame)[0].transpose(1, 2, 0) * 255
    np.testing.assert_allclose(out, small[8:232, 48:272], atol=1e-4)


def test_stretch_keeps_the_whole_frame() -> None:
    frame = np.zeros((100, 50, 3), np.uint8)
    frame[:50] = 255  # top half white, bottom half black
    out = identity(32, 32, STRETCH).apply(frame)[0, 0] * 255
    np.testing.assert_allclose(out[:16], 255, atol=1e-3)
    np.testing.assert_allclose(out[16:], 0, atol=1e-3)


def test_mean_and_std_apply_per_rgb_channel_on_the_unit_scale() -> None:
    frame = np.empty((8, 8, 3), np.uint8)
    frame[...] = (0, 51, 255)
    prep = Preprocess(4, SHORTER_SIDE_CROP, 8, (0.5, 0.2, 0.5), (0.25, 0.5, 0.5))
    out = prep.apply(frame)[0]
    np.testing.assert_allclose(out[0], (0.0 - 0.5) / 0.25, atol=1e-6)  # R
    np.testing.assert_allclose(out[1], (0.2 - 0.2) / 0.5, atol=1e-6)  # G
    np.testing.assert_allclose(out[2], (1.0 - 0.5) / 0.5, atol=1e-6)  # B


def test_to_dict_from_dict_round_trip_through_json() -> None:
    prep = Preprocess(224, SHORTER_SIDE_CROP, 256, IMAGENET_MEAN, IMAGENET_STD)
    data = json.loads(json.dumps(prep.to_dict()))
    assert data["resize"] == SHORTER_SIDE_CROP and data["color"] == "RGB"
    assert Preprocess.from_dict(data) == prep


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        (np.zeros((2, 32, 32, 3), np.float32), "uint8"),
        (np.zeros((2, 32, 32, 4), np.uint8), r"\[N, H, W, 3\]"),
        (np.zeros((32, 32), np.uint8), r"\[N, H, W, 3\]"),
        (np.zeros((1, 0, 32, 3), np.uint8), "empty"),
        ([[0, 0, 0]], "numpy array"),
    ],
)
def test_bad_frames_are_refused_with_what_arrived(frames: object, message: str) -> None:
    prep = Preprocess(16, SHORTER_SIDE_CROP, 16, IMAGENET_MEAN, IMAGENET_STD)
    with pytest.raises(FrameError, match=message):
        prep.apply(frames)  # type: ignore[arg-type]


def test_bad_settings_are_refused() -> None:
    good = Preprocess(224, SHORTER_SIDE_CROP, 256, IMAGENET_MEAN, IMAGENET_STD).to_dict()
    with pytest.raises(ConfigError, match=r"unknown preprocess keys \['interp'\]"):
        Preprocess.from_dict(good | {"interp": "cubic"})
    with pytest.raises(ConfigError, match="missing"):
        Preprocess.from_dict({"size": 224})
    with pytest.raises(ConfigError, match="resize must be one of"):
        Preprocess.from_dict(good | {"resize": "letterbox"})
    with pytest.raises(ConfigError, match="must be >= size"):
        Preprocess.from_dict(good | {"resize_to": 200})
    with pytest.raises(ConfigError, match="must equal size"):
        Preprocess.from_dict(good | {"resize": STRETCH})
    with pytest.raises(ConfigError, match="std must be positive"):
        Preprocess.from_dict(good | {"std": [0.2, 0.0, 0.2]})
    with pytest.raises(ConfigError, match="BGR"):
        Preprocess.from_dict(good | {"color": "BGR"})
    with pytest.raises(ConfigError, match="positive integer"):
        Preprocess.from_dict(good | {"size": 224.0})


def test_preprocess_does_not_import_torch() -> None:
    code = "import sys, runtime.preprocess; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
