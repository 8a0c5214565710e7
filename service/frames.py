"""Encoded camera frames (JPEG/PNG bytes) → RGB arrays, refusing what would hurt the service.

The image header is read first (Pillow, no pixel decoding) so a decompression bomb — a
small file that claims a huge canvas — is refused before any memory is spent on it; only
then does OpenCV decode. Every refusal is a `FrameError` (runtime.preprocess's: one error
for a frame the service cannot use, decoded here or preprocessed there) with a message for
the client; the stream goes on without the frame.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import warnings
from collections.abc import Callable

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from runtime.preprocess import FrameError

FORMATS = ("JPEG", "MPO", "PNG", "WEBP", "BMP")  # MPO: a phone camera's multi-picture JPEG
# Corrupt frames are answered with a FrameError; OpenCV's own stderr warnings add nothing.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


def decode_json(text: str | bytes) -> object:
    """A parsed JSON document, or ValueError "not valid JSON: ..." (also for nesting
    too deep to parse, and for integers over Python's 4300-digit limit)."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"not valid JSON: {str(exc)[:120]}") from exc


# A JPEG decoded at 1/2, 1/4 or 1/8 of its size: libjpeg scales while it decodes (an 8×8
# block's DCT read at 4×4, 2×2 or 1×1), for a fraction of the full decode's time.
REDUCED = {
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}
JPEG_KINDS = ("JPEG", "MPO")
Reduction = Callable[[int, int], int]  # (width, height) from the header → 1, 2, 4 or 8


def decode_image(
    data: bytes, *, max_bytes: int, max_pixels: int, reduce: Reduction | None = None
) -> np.ndarray:
    """JPEG/PNG/WebP/BMP bytes → RGB uint8 [H, W, 3] (a JPEG's EXIF orientation applied).

    `reduce` (the caller's rule: the frame's size → a divisor, 1, 2, 4 or 8) decodes a JPEG
    at that fraction of its size, each side rounded up; other formats decode whole."""
    if not data:
        raise FrameError("empty frame")
    if len(data) > max_bytes:
        raise FrameError(f"frame of {len(data)} bytes is over the {max_bytes}-byte limit")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as header:  # reads the header only
                kind, (width, height) = header.format, header.size
    except (UnidentifiedImageError, Image.DecompressionBombWarning, OSError, ValueError) as exc:
        raise FrameError(f"not a readable image ({type(exc).__name__})") from exc
    except Image.DecompressionBombError as exc:
        raise FrameError("image dimensions are absurd (decompression bomb)") from exc
    if kind not in FORMATS:
        raise FrameError(f"image format {kind} is not accepted; send one of {FORMATS}")
    if width < 1 or height < 1 or width * height > max_pixels:
        raise FrameError(f"image of {width}×{height} pixels is over the {max_pixels}-pixel limit")
    divisor = reduce(width, height) if reduce is not None and kind in JPEG_KINDS else 1
    flag = REDUCED.get(divisor, cv2.IMREAD_COLOR)
    if flag == cv2.IMREAD_COLOR:
        divisor = 1
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    # OpenCV applies a JPEG's EXIF orientation: a portrait phone photo comes out turned.
    height, width = -(-height // divisor), -(-width // divisor)
    if bgr is None or bgr.shape[:2] not in ((height, width), (width, height)):
        raise FrameError(f"{kind} data is corrupt or truncated")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def decode_base64(text: object, *, field: str, max_bytes: int | None = None) -> bytes:
    """base64 text → bytes; `max_bytes` refuses longer text before decoding it (an image's
    own size limit is decode_image's, the one rule for binary and base64 frames alike)."""
    if not isinstance(text, str):
        raise FrameError(f"'{field}' must be a base64 string")
    if max_bytes is not None and len(text) > (max_bytes * 4) // 3 + 4:
        raise FrameError(f"'{field}' is over the {max_bytes}-byte limit")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise FrameError(f"'{field}' is not valid base64") from exc


def feature_rows(values: np.ndarray, *, dim: int) -> np.ndarray:
    """Feature rows [N, dim] as finite float32, or a FrameError naming what is wrong: the one
    check of feature input, for a stream's feature message and a /classify clip alike."""
    if values.ndim != 2 or values.shape[1] != dim:
        raise FrameError(f"features must be [frames, {dim}], got {list(values.shape)}")
    if not np.isfinite(values).all():
        raise FrameError("features contain NaN or infinity")
    return values.astype(np.float32)


def rows_from_bytes(raw: bytes, *, dim: int) -> np.ndarray:
    """Little-endian float32 bytes → rows [N, dim], unchecked: `feature_rows` checks them
    where they are used."""
    if len(raw) % (4 * dim):
        raise FrameError(
            f"features must be whole rows of {dim} float32 values ({dim * 4} bytes each), "
            f"got {len(raw)} bytes"
        )
    return np.frombuffer(raw, "<f4").reshape(-1, dim)


def decode_features(text: object, *, dim: int) -> np.ndarray:
    """base64 of `dim` little-endian float32 values → one finite feature row [dim]."""
    raw = decode_base64(text, field="data", max_bytes=dim * 4 + 1024)
    rows = feature_rows(rows_from_bytes(raw, dim=dim), dim=dim)
    if len(rows) != 1:
        raise FrameError(
            f"a feature message holds one row of {dim} float32 values, got {len(rows)}"
        )
    row: np.ndarray = rows[0]
    return row
