from bench.clip import (
    BATCHED,
    ONE,
    SEQUENTIAL,
    ClipBench,
    ClipTiming,
    render_clip_bench,
    run_clip_bench,
)
from bench.engine import ADAPTERS, MERGED


def test_clip_bench_times_each_question_shape_in_both_lora_states() -> None:
    bench = ClipBench(clip_frames=4, feature_dim=8, repeats=1)
    rows = run_clip_bench("tiny", bench)
    assert [(r.what, r.lora) for r in rows] == [
        (ONE, ADAPTERS),
        (ONE, MERGED),
        (SEQUENTIAL, ADAPTERS),
        (SEQUENTIAL, MERGED),
        (BATCHED, ADAPTERS),
        (BATCHED, MERGED),
    ]
    assert all(r.head_ms > 0 and r.generative_ms > 0 for r in rows)
    by = {(r.what, r.lora): r for r in rows}
    for lora in (ADAPTERS, MERGED):
        # The batched row sets the heads against the same three sequential decodes.
        assert by[(BATCHED, lora)].generative_ms == by[(SEQUENTIAL, lora)].generative_ms
    assert [r.answers for r in rows] == [1, 1, 3, 3, 3, 3]


def test_per_answer_table_comes_first_and_the_batched_figure_apart() -> None:
    # Hand-made medians, adapters: one answer 2 vs 10 ms (5×); three questions one at a
    # time 6 vs 30 ms (2 vs 10 per answer, 5×); batched heads 3 ms vs the same 30 ms (10×).
    # Merged: one answer 1 vs 8 ms (8×). A mixed ratio (10 / 1 = 10.0× per answer) must
    # not appear in the per-answer table.
    rows = [
        ClipTiming("b", ADAPTERS, ONE, 2.0, 10.0),
        ClipTiming("b", MERGED, ONE, 1.0, 8.0),
        ClipTiming("b", ADAPTERS, SEQUENTIAL, 6.0, 30.0),
        ClipTiming("b", MERGED, SEQUENTIAL, 3.0, 24.0),
        ClipTiming("b", ADAPTERS, BATCHED, 3.0, 30.0),
        ClipTiming("b", MERGED, BATCHED, 1.5, 24.0),
    ]
    table = render_clip_bench(rows, ClipBench(repeats=1))
    per_answer, batched = table.split("**Batched three-question pass**")
    assert "| b | adapters | step question | 2.00 | 10.00 | 5.0× |" in per_answer
    assert "| b | merged | step question | 1.00 | 8.00 | 8.0× |" in per_answer
    assert "| b | adapters | three questions, one at a time | 2.00 | 10.00 | 5.0× |" in per_answer
    assert "| b | merged | three questions, one at a time | 1.00 | 8.00 | 8.0× |" in per_answer
    assert "10.0×" not in per_answer and "16.0×" not in per_answer
    assert "| b | adapters | 3.00 | 6.00 | 30.00 | 10.0× |" in batched
    assert "| b | merged | 1.50 | 3.00 | 24.00 | 16.0× |" in batched
    assert "step question" not in batched
