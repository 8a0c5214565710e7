from bench.engine import (
    ADAPTERS,
    DECODE,
    HEAD,
    MERGED,
    NAIVE,
    ONNX,
    EngineBench,
    Timing,
    _interleaved,
    render_engine_tables,
    run_engine_bench,
)


def test_engine_bench_times_every_path_in_both_lora_states() -> None:
    # Both sides of every head-vs-decoding ratio are timed with LoRA as adapters and merged
    # (issue 17: the GPU headline had set a merged head against unmerged decoding).
    bench = EngineBench(
        long_frames=4, short_frames=4, feature_dim=8, repeats=1, engine_batches=(1, 3)
    )
    rows = run_engine_bench("tiny", bench)
    paths = [(r.path, r.lora, r.batch) for r in rows]
    assert paths == [
        (DECODE, ADAPTERS, 1),
        (HEAD, ADAPTERS, 1),
        (DECODE, MERGED, 1),
        (HEAD, MERGED, 1),
        (ONNX, MERGED, 1),
        (ONNX, MERGED, 3),
    ]
    assert all(r.median_s > 0 and len(r.runs) == 1 for r in rows)
    assert "decode steps" in rows[0].note and rows[0].note == rows[2].note  # same labels
    table = render_engine_tables(rows, bench)
    assert "| tiny | 1 | adapters |" in table and "| tiny | 1 | merged |" in table
    assert "vs naive loop, merged" in table
    assert "| tiny | engine (onnxruntime) | merged | 3 |" in table


def _timing(path: str, lora: str, batch: int, ms: float) -> Timing:
    note = "3.0 decode steps" if path == DECODE else ""
    return Timing("b", path, lora, batch, ms / 1e3, note=note)


def test_ratios_never_mix_lora_states() -> None:
    # Hand-made medians: adapters 40 vs 20 ms (2×), merged 30 vs 10 ms (3×). The mixed
    # ratio (40 / 10 = 4×, the old headline's kind) must not appear anywhere.
    bench = EngineBench(latency_batches=(1,), engine_batches=(4,), repeats=1)
    rows = [
        _timing(DECODE, ADAPTERS, 1, 40.0),
        _timing(DECODE, MERGED, 1, 30.0),
        _timing(HEAD, ADAPTERS, 1, 20.0),
        _timing(HEAD, MERGED, 1, 10.0),
        _timing(ONNX, MERGED, 1, 5.0),
        _timing(ONNX, MERGED, 4, 8.0),  # 500 windows/s
    ]
    table = render_engine_tables(rows, bench)
    assert "| b | 1 | adapters | 40.0 | 20.0 | 2.00× | 3.0 decode steps |" in table
    assert "| b | 1 | merged | 30.0 | 10.0 | 3.00× | 3.0 decode steps |" in table
    assert "4.00×" not in table
    # The served head against the merged PyTorch head (10 vs 5 ms), never against decoding.
    assert "| b | 10.0 | 5.0 | 2.00× |" in table
    # Adapters come first (as trained), then merged; batch 1 before larger batches.
    assert table.index("| b | 1 | adapters |") < table.index("| b | 1 | merged |")
    # Throughput against the merged naive loop (100 windows/s), the engine's own state;
    # the unmerged loop (50 windows/s) is shown with no ratio.
    assert "| b | naive loop (PyTorch) | adapters | 1 | 50.0 | — |" in table
    assert "| b | naive loop (PyTorch) | merged | 1 | 100.0 | 1.00× |" in table
    assert "| b | engine (onnxruntime) | merged | 4 | 500.0 | 5.00× |" in table
    assert "10.00×" not in table  # 500 / 50: the engine against the unmerged loop


def test_larger_latency_batches_follow_batch_one() -> None:
    bench = EngineBench(latency_batches=(32, 1), onnx=False, repeats=1)
    rows = [
        _timing(DECODE, lora, batch, 64.0) for batch in (32, 1) for lora in (ADAPTERS, MERGED)
    ] + [_timing(HEAD, lora, batch, 32.0) for batch in (32, 1) for lora in (ADAPTERS, MERGED)]
    table = render_engine_tables(rows, bench)
    lines = [line for line in table.splitlines() if line.startswith("| b |")]
    assert [line.split(" | ")[1:3] for line in lines] == [
        ["1", "adapters"],
        ["1", "merged"],
        ["32", "adapters"],
        ["32", "merged"],
    ]
    assert "| b | 32 | merged | 2.0 | 1.0 | 2.00× |" in table  # per window: 64 / 32 ms
    assert "Throughput" not in table  # no engine rows without onnxruntime


def test_naive_loop_rows_are_the_batch_one_head_when_batch_one_is_not_asked() -> None:
    bench = EngineBench(
        long_frames=4,
        short_frames=4,
        feature_dim=8,
        repeats=1,
        latency_batches=(2,),
        onnx=False,
    )
    rows = run_engine_bench("tiny", bench)
    assert [(r.path, r.lora, r.batch) for r in rows] == [
        (NAIVE, ADAPTERS, 1),
        (NAIVE, MERGED, 1),
        (DECODE, ADAPTERS, 2),
        (HEAD, ADAPTERS, 2),
        (DECODE, MERGED, 2),
        (HEAD, MERGED, 2),
    ]


def test_calls_are_timed_round_robin_after_one_warm_up_each() -> None:
    # Run r of every call before run r + 1 of any: load changes hit both sides of a ratio.
    order: list[str] = []
    calls = {name: (lambda name=name: order.append(name)) for name in ("decode", "head")}
    runs = _interleaved(calls, repeats=2, sync=lambda: order.append("sync"))
    warm_up = ["decode", "head", "sync"]
    one_round = ["decode", "sync", "head", "sync"]
    assert order == warm_up + one_round + one_round
    assert {key: len(times) for key, times in runs.items()} == {"decode": 2, "head": 2}
