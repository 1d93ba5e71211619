"""Add the tissue-descriptor novelty calibration to the shipped demo bundle, changing nothing else.

    python scripts/add_descriptor_novelty.py            # sample_data/demo_quick.mclst, in place
    python scripts/add_descriptor_novelty.py --check    # compute and compare, write nothing

The demo bundle (``sample_data/demo_quick.mclst``) was made before novelty read the spots' tissue descriptors
(issue 25).  This reruns only the novelty part of the finishing pass
(:func:`~napari_mclstexp.predict.novelty.calibrate_reference`, as
:func:`~napari_mclstexp.workflows.reliability.iter_gene_reliability` calls it) on the demo slide's training
part (the left two thirds, as :mod:`napari_mclstexp.workflows.demo` splits it: the bank's spots, in its
order), with the bundle's stored version-1 descriptors.  Before writing it checks that the recomputed image
reference and image calibration equal the stored ones, then adds ``metadata['novelty']['descriptors']`` and
saves the bundle atomically.  Weights, bank, descriptors, reference and every other key stay as they were, so
the bundle's gene predictions are unchanged bit for bit.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    from napari_mclstexp.bundle import load_bundle, save_bundle
    from napari_mclstexp.predict import novelty
    from napari_mclstexp.progress import run
    from napari_mclstexp.sample import section_name
    from napari_mclstexp.workflows.demo import SAMPLE_BUNDLE, load_demo_sample, sample_data_dir, split_demo_sample
    from napari_mclstexp.workflows.reliability import (
        _group_ids,
        _group_kind,
        _held_out_groups,
        _iter_query_embeddings,
    )

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=None, help="default: the shipped demo bundle")
    parser.add_argument("--check", action="store_true", help="compute and compare only; write nothing")
    args = parser.parse_args()
    path = args.bundle or Path(sample_data_dir()) / SAMPLE_BUNDLE
    bundle = load_bundle(path)
    train_part, _ = split_demo_sample(load_demo_sample())
    if train_part.n_obs != len(bundle.bank) or bundle.descriptors is None:
        raise SystemExit(f"{path}: not the demo bundle (bank {len(bundle.bank)} spots, training {train_part.n_obs})")
    query = run(_iter_query_embeddings(bundle, [train_part], "cpu", None, None))
    sections = np.asarray([section_name(train_part, 0)] * train_part.n_obs)
    groups = _held_out_groups(sections)
    ref, cal = novelty.calibrate_reference(
        query,
        _group_ids(groups),
        direct=False,
        groups=_group_kind(sections),
        descriptors=np.asarray(bundle.descriptors)[: len(query)],
    )
    stored = bundle.metadata["novelty"]
    if not np.allclose(ref, bundle.novelty_reference, atol=1e-5) or not np.allclose(
        cal["quantiles"], stored["quantiles"], atol=1e-4
    ):
        raise SystemExit("the recomputed image reference or calibration differs from the stored one: not faithful")
    d = cal["descriptors"]
    print(f"descriptor calibration: {d['n_spots']} held-out spots ({d['groups']}), threshold {d['threshold']:.3f}")
    if args.check:
        return
    bundle.metadata["novelty"] = {**stored, "descriptors": d}
    save_bundle(bundle, path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
