"""The region-read part runs end to end at tiny sizes and reports every mode."""

from __future__ import annotations

import json


def test_region_read_tiny_writes_json(tmp_path):
    from benchmarks.__main__ import main

    assert main(["region-read", "--tiny", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "region_read-cpu-tiny.json").read_text())
    assert report["pixels_equal"] is True and report["tiny"] is True
    for pattern in ("blocks", "random"):
        for mode in ("zarr", "direct_nocache", "direct"):
            for threads in ("threads_1", "threads_2"):
                r = report["results"][pattern][mode][threads]
                assert r["mp_per_s"] > 0 and r["regions"] > 0
                assert (r["cache_hit_rate"] is None) == (mode != "direct")
        assert report["results"][pattern]["direct"]["threads_1"]["cache_hit_rate"] > 0  # overlapping regions
        assert set(report["speedup_direct_vs_zarr"][pattern]) == {"threads_1", "threads_2"}
