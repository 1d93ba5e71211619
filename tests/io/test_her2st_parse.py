"""her2st counts are parsed a few rows per parser call (the C parser holds the GIL: a whole section in one
call froze a viewer loading the folder ~1 s); the values and the errors are those of one call."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from napari_mclstexp.errors import CountsError
from napari_mclstexp.io import her2st


def _write(path, header, rows):
    with gzip.open(path, "wb") as fh:
        fh.write(("\t".join(header) + "\n" + "\n".join("\t".join(map(str, r)) for r in rows) + "\n").encode())


def test_rows_parsed_in_chunks_equal_one_parse(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 50, size=(101, 7))
    rows = [[f"{i}x{i + 1}", *c] for i, c in enumerate(counts)]
    _write(tmp_path / "A1.tsv.gz", ["", *[f"G{j}" for j in range(7)]], rows)
    monkeypatch.setattr(her2st, "ROWS_PER_PARSE", 8)  # 13 calls, the last one partial
    X, spots, genes = her2st.read_counts_tsv(tmp_path / "A1.tsv.gz")
    assert np.array_equal(X.toarray(), counts) and len(spots) == 101 and genes[0] == "G0"


def test_a_ragged_chunk_is_still_reported(tmp_path, monkeypatch):
    rows = [["1x1", 1, 2, 3]] * 10 + [["2x2", 1, 2]] * 5
    _write(tmp_path / "A1.tsv.gz", ["", "G0", "G1", "G2"], rows)
    monkeypatch.setattr(her2st, "ROWS_PER_PARSE", 10)  # the short rows form a chunk of their own
    with pytest.raises(CountsError):
        her2st.read_counts_tsv(tmp_path / "A1.tsv.gz")
