import numpy as np
import pytest

from runtime.windowing import WindowSpec, build_window, build_windows, window_indices


def brute_force(rows: np.ndarray, t: int, spec: WindowSpec) -> tuple[np.ndarray, np.ndarray]:
    """The definition, spelled out one slot at a time."""
    slots = []
    for i in range(spec.long_frames):  # oldest long-memory slot first
        slots.append(t - spec.short_frames - spec.long_stride * (spec.long_frames - 1 - i))
    slots += [t - spec.short_frames + 1 + i for i in range(spec.short_frames)]
    window = np.zeros((len(slots), rows.shape[1]), np.float32)
    mask = np.zeros(len(slots), np.uint8)
    for j, index in enumerate(slots):
        if index >= 0:
            window[j], mask[j] = rows[index], 1
    return window, mask


@pytest.mark.parametrize(
    "spec",
    [WindowSpec(8, 4), WindowSpec(0, 5), WindowSpec(3, 2, long_stride=3), WindowSpec(128, 32)],
)
def test_equals_brute_force_at_every_frame(spec: WindowSpec) -> None:
    rows = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    for t in range(len(rows)):
        window, mask = build_window(rows, t, spec)
        expected_window, expected_mask = brute_force(rows, t, spec)
        np.testing.assert_array_equal(mask, expected_mask)
        np.testing.assert_array_equal(window, expected_window)
        assert window.shape == (spec.size, 3) and window.dtype == np.float32


def test_start_of_video_is_left_padded() -> None:
    rows = np.arange(10, dtype=np.float32)[:, None]
    window, mask = build_window(rows, 0, WindowSpec(4, 3))
    assert mask.tolist() == [0, 0, 0, 0, 0, 0, 1]
    assert window[:, 0].tolist() == [0, 0, 0, 0, 0, 0, 0]
    window, mask = build_window(rows, 5, WindowSpec(4, 3))
    assert mask.tolist() == [0, 1, 1, 1, 1, 1, 1]
    assert window[:, 0].tolist() == [0, 0, 1, 2, 3, 4, 5]


def test_exact_lengths_and_last_row_is_t() -> None:
    rows = np.arange(300, dtype=np.float32)[:, None]
    spec = WindowSpec(128, 32)
    window, mask = build_window(rows, 299, spec)
    assert mask.all() and window.shape == (160, 1)
    assert window[-1, 0] == 299 and window[0, 0] == 140
    strided = WindowSpec(4, 2, long_stride=4)
    assert window_indices(20, strided).tolist() == [6, 10, 14, 18, 19, 20]
    assert strided.span == 18


def test_a_stream_cache_of_span_rows_gives_the_same_window() -> None:
    rows = np.random.default_rng(1).normal(size=(50, 2)).astype(np.float32)
    spec = WindowSpec(6, 3, long_stride=2)
    for t in range(len(rows)):
        cache = rows[max(0, t + 1 - spec.span) : t + 1]
        live = build_window(cache, len(cache) - 1, spec)
        offline = build_window(rows, t, spec)
        np.testing.assert_array_equal(live[0], offline[0])
        np.testing.assert_array_equal(live[1], offline[1])


def test_batch_and_errors() -> None:
    rows = np.ones((5, 2), np.float32)
    features, mask = build_windows(rows, [0, 1, 4], WindowSpec(1, 2))
    assert features.shape == (3, 3, 2)
    assert mask.tolist() == [[0, 0, 1], [0, 1, 1], [1, 1, 1]]
    with pytest.raises(ValueError, match="frame 5 is beyond the 5 rows"):
        build_window(rows, 5, WindowSpec(1, 2))
    with pytest.raises(ValueError, match=r"rows must be \[frames, features\]"):
        build_window(np.ones(5), 0, WindowSpec(1, 2))
    with pytest.raises(ValueError, match="short_frames > 0"):
        WindowSpec(4, 0)
