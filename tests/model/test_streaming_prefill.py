"""Prefill: N steps of a stream in one banded pass, continuing from its rings — equal to
N single steps, chunk after chunk, whatever the chunk sizes."""

from __future__ import annotations

import pytest
import torch

from model.streaming.runner import StreamingGAD
from tests.model.helpers import FEATURE_DIM, tiny_streaming_model

pytestmark = pytest.mark.integration  # long streams through the step loop and chunked prefill


@pytest.mark.parametrize("chunks", [(37,), (1, 2, 3, 31), (5, 5, 27)])
def test_chunked_prefill_equals_the_step_loop(chunks: tuple[int, ...]) -> None:
    window = 6
    model = tiny_streaming_model(window=window)
    stream = StreamingGAD(model, window)
    features = torch.randn(2, sum(chunks), FEATURE_DIM, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        state = stream.start(2)
        stepped = torch.stack([stream.step(features[:, t], state) for t in range(sum(chunks))], 1)
        filled = stream.start(2)
        rings, mask, got, at = filled.rings, filled.mask, [], 0
        for size in chunks:
            logits, rings, mask = stream.prefill_rows(
                features[:, at : at + size], filled.prompt_kv, rings, mask
            )
            got.append(logits)
            at += size
    torch.testing.assert_close(torch.cat(got, 1), stepped, rtol=0, atol=1e-5)
    assert mask.bool().all()
    for layer, (k, v) in state.rings.items():  # the rings after it are the step loop's
        torch.testing.assert_close(rings[layer][0], k, rtol=0, atol=1e-5)
        torch.testing.assert_close(rings[layer][1], v, rtol=0, atol=1e-5)


def test_a_short_prefill_keeps_the_empty_slots_masked() -> None:
    model = tiny_streaming_model(window=8)
    stream = StreamingGAD(model, 8)
    state = stream.start(1)
    with torch.no_grad():
        _, _, mask = stream.prefill_rows(
            torch.randn(1, 3, FEATURE_DIM), state.prompt_kv, state.rings, state.mask
        )
    assert mask.tolist() == [[False] * 4 + [True] * 3]


def test_a_long_stream_scored_in_chunks_equals_one_pass() -> None:
    model = tiny_streaming_model(window=5)
    stream = StreamingGAD(model, 5)
    features = torch.randn(1, 70, FEATURE_DIM, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        whole = stream.frame_logits(features)
        chunked = stream.stream_logits(features, chunk=16)
    torch.testing.assert_close(chunked, whole, rtol=0, atol=1e-5)
