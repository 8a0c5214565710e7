from bench.engine import EngineBench, render_engine_tables, run_engine_bench


def test_engine_bench_measures_every_path_and_renders_ratios() -> None:
    bench = EngineBench(
        long_frames=4, short_frames=4, feature_dim=8, repeats=1, engine_batches=(1, 3)
    )
    rows = run_engine_bench("tiny", bench)
    paths = [(r.path, r.batch) for r in rows]
    assert paths == [
        ("generative decode", 1),
        ("head", 1),
        ("head (onnxruntime)", 1),
        ("head (onnxruntime)", 3),
    ]
    assert all(r.median_s > 0 and len(r.runs) == 1 for r in rows)
    assert "decode steps" in rows[0].note
    table = render_engine_tables(rows, bench)
    assert "| tiny | head | 1 |" in table and "vs naive loop" in table
    assert "| tiny | engine (onnxruntime) | 3 |" in table
