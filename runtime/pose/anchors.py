"""SSD anchor centres of BlazePose's person detector (224×224 input).

The detector predicts, for each anchor, a box and four keypoints as offsets from the
anchor's centre. MediaPipe's pose-detection graph generates its anchors with these options:
five layers with strides 8, 16, 32, 32, 32, one aspect ratio (1.0) plus one interpolated
scale per layer, centres offset by half a cell, and a fixed anchor size. With a fixed size
the scales drop out: every anchor is a unit box, so only the centres and how many anchors
share a cell matter. Layers of equal stride share a feature map, so the 32-stride cells
carry 3 × 2 = 6 anchors: 28²·2 + 14²·2 + 7²·6 = 2254 anchors, the detector's output rows.
"""

from __future__ import annotations

from functools import cache

import numpy as np

INPUT_SIZE = 224
STRIDES = (8, 16, 32, 32, 32)
ANCHORS_PER_LAYER = 2  # aspect ratio 1.0, plus the interpolated scale
ANCHOR_OFFSET = 0.5
NUM_ANCHORS = 2254


@cache
def anchor_centres(input_size: int = INPUT_SIZE) -> np.ndarray:
    """float32 [NUM_ANCHORS, 2]: (x, y) anchor centres on the input, normalised to [0, 1],
    in the detector's output order (layer by layer, row-major cells, anchors of a cell)."""
    centres = []
    layer = 0
    while layer < len(STRIDES):
        stride = STRIDES[layer]
        same = sum(1 for s in STRIDES[layer:] if s == stride)
        cells = -(-input_size // stride)  # ceil
        grid = (np.arange(cells, dtype=np.float32) + ANCHOR_OFFSET) / cells
        ys, xs = np.meshgrid(grid, grid, indexing="ij")
        cell_centres = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(cell_centres, same * ANCHORS_PER_LAYER, axis=0))
        layer += same
    out = np.concatenate(centres)
    out.flags.writeable = False
    return out
