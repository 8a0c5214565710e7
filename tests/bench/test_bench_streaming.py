"""bench.streaming's PyTorch runner: both LoRA states, each like with like."""

from bench.streaming import bench_steps, render


def test_the_merged_runner_times_both_modes_with_lora_merged() -> None:
    rows = bench_steps("tiny", window=4, batches=(1, 2), repeats=2, feature_dim=8, merged=True)
    assert [(r.runner, r.batch) for r in rows] == [("pytorch, merged", 1), ("pytorch, merged", 2)]
    assert all(r.window_ms > 0 and r.step_ms > 0 for r in rows)
    table = render(rows, 2)
    assert "| tiny | pytorch, merged | 4 | 2 |" in table and "float32" in table
