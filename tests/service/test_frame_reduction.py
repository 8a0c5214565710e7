"""Camera frames decoded at reduced size where the pose encoder needs no more pixels
(service/frames.py `decode_image(reduce=...)`, service/encoding.py `frame_reduction`): a
JPEG at 1/2, 1/4 or 1/8 while libjpeg decodes it, every other format whole; the divisor
keeps a tracked ROI at least the landmark model's 256 pixels and an untracked frame at
least the package's 512 on its longer side."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from runtime.pose.encoder import PoseFrames
from runtime.pose.roi import Roi
from runtime.preprocess import SHORTER_SIDE_CROP, Preprocess
from service.encoding import frame_reduction, pose_divisor
from service.frames import decode_image

LIMITS = {"max_bytes": 1 << 24, "max_pixels": 1 << 24}


def encoded(ext: str, height: int = 721, width: int = 1281) -> bytes:
    gradient = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    frame = np.broadcast_to(gradient, (height, width, 3)).astype(np.uint8)
    ok, data = cv2.imencode(ext, frame)
    assert ok
    return data.tobytes()


@pytest.mark.parametrize(
    "divisor, shape", [(1, (721, 1281)), (2, (361, 641)), (4, (181, 321)), (8, (91, 161))]
)
def test_a_jpeg_decodes_at_the_divisor_each_side_rounded_up(
    divisor: int, shape: tuple[int, int]
) -> None:
    rgb = decode_image(encoded(".jpg"), reduce=lambda w, h: divisor, **LIMITS)
    assert rgb.shape == (*shape, 3)
    full = decode_image(encoded(".jpg"), **LIMITS)
    small = cv2.resize(full, shape[::-1], interpolation=cv2.INTER_AREA)
    assert np.abs(rgb.astype(int) - small).mean() < 2  # the same picture, fewer pixels


def test_other_formats_decode_whole_and_the_rule_sees_the_header_size() -> None:
    seen: list[tuple[int, int]] = []

    def rule(width: int, height: int) -> int:
        seen.append((width, height))
        return 4

    assert decode_image(encoded(".png"), reduce=rule, **LIMITS).shape == (721, 1281, 3)
    assert seen == []  # a PNG is not asked: it cannot be decoded reduced
    assert decode_image(encoded(".jpg"), reduce=rule, **LIMITS).shape == (181, 321, 3)
    assert seen == [(1281, 721)]


def test_the_pose_divisor_keeps_what_the_encoder_reads() -> None:
    # No ROI (a stream's first frame, nobody in view): at least 512 on the longer side.
    assert [pose_divisor(side, 512, None) for side in (320, 640, 1280, 1768, 3840)] == [
        1, 1, 2, 2, 4
    ]  # fmt: skip
    # Tracked: the ROI at least 256 pixels, the frame at least 256 on its longer side.
    big = Roi(0.5, 0.8, 1.2, 0.0)  # head and shoulders: the ROI wider than the frame
    assert [pose_divisor(side, 512, big) for side in (320, 640, 1280, 1768, 3840)] == [
        1, 2, 4, 4, 8
    ]  # fmt: skip
    small = Roi(0.5, 0.5, 0.1, 0.0)  # a person far away: every pixel counts
    assert [pose_divisor(side, 512, small) for side in (1280, 3840)] == [1, 1]
    assert pose_divisor(5120, 512, small) == 2


def test_only_the_pose_encoder_reduces() -> None:
    assert (
        frame_reduction(Preprocess(224, SHORTER_SIDE_CROP, 256, (0.5,) * 3, (0.5,) * 3), None)
        is None
    )
    assert frame_reduction(None, None) is None
    reduce = frame_reduction(PoseFrames(512), None)
    assert reduce is not None and reduce(1280, 720) == 2 and reduce(720, 1280) == 2
