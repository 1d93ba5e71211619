"""Regenerate ``sample_data/``: the offline demo slide, its sample and the bundled ``quick`` model.

Deterministic (seeded) and offline.  Run from the repository root::

    python scripts/make_sample_data.py            # everything (a few minutes on 2 CPU cores)
    python scripts/make_sample_data.py --no-model # only the slide and the sample

Files written (see ``sample_data/README.md``): ``demo_slide.ome.tif`` (tiled pyramidal JPEG
OME-TIFF, 1 µm/px), ``demo_sample.h5ad`` (spots, counts, regions, train/test split; image path
relative to the folder) and ``demo_quick.mclst`` (model trained on the left two thirds).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from napari_mclstexp.atomic import atomic_write_path
from napari_mclstexp.progress import run_with_progress
from napari_mclstexp.synthetic import make_demo_slide
from napari_mclstexp.workflows.demo import (
    SAMPLE_BUNDLE,
    SAMPLE_H5AD,
    SAMPLE_IMAGE,
    load_demo_sample,
    split_demo_sample,
    train_demo_bundle,
)

REPO = Path(__file__).resolve().parents[1]
#: Size budget of the whole folder (the wheel ships it).
MAX_TOTAL_MB = 30.0
JPEG_QUALITY = 85


def write_slide_and_sample(out: Path) -> None:
    """Render the slide, write it as a pyramid OME-TIFF and the sample as a compressed ``.h5ad``."""
    from napari_mclstexp.io.wsi_write import write_pyramid_tiff

    t0 = time.perf_counter()
    image, adata = make_demo_slide(image_name=SAMPLE_IMAGE)
    mpp = adata.uns["spatial"]["DEMO1"]["metadata"]["microns_per_pixel"]
    write_pyramid_tiff(out / SAMPLE_IMAGE, image, mpp=mpp, quality=JPEG_QUALITY)
    with atomic_write_path(out / SAMPLE_H5AD) as tmp:
        adata.write_h5ad(tmp, compression="gzip")
    split = adata.obs["demo_split"].value_counts().to_dict()
    print(
        f"slide {image.shape[1]}x{image.shape[0]} px, {adata.n_obs} spots ({split}), "
        f"{adata.n_vars} genes, {time.perf_counter() - t0:.1f} s"
    )


def write_model(out: Path, epochs: int | None, device: str) -> None:
    """Train the ``quick`` model on the training spots and save it as the bundled model."""
    from napari_mclstexp.bundle import save_bundle

    t0 = time.perf_counter()
    train_part, _ = split_demo_sample(load_demo_sample(out))
    bundle = run_with_progress(train_demo_bundle(train_part, epochs=epochs, device=device))
    save_bundle(bundle, out / SAMPLE_BUNDLE)
    print(f"model trained on {train_part.n_obs} spots in {time.perf_counter() - t0:.1f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "sample_data", help="folder (default: %(default)s)")
    parser.add_argument("--no-model", dest="model", action="store_false", help="skip training the bundled model")
    parser.add_argument("--model-only", action="store_true", help="only retrain the model (slide and sample kept)")
    parser.add_argument(
        "--epochs", type=int, default=None, help="training epochs (default: napari_mclstexp.workflows.demo.DEMO_EPOCHS)"
    )
    parser.add_argument("--device", default="cpu", help="training device (default: cpu, for reproducibility)")
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    if not args.model_only:
        write_slide_and_sample(out)
    if args.model or args.model_only:
        write_model(out, args.epochs, args.device)
    sizes = {p.name: p.stat().st_size / 1e6 for p in sorted(out.iterdir()) if p.is_file()}
    for name, mb in sizes.items():
        print(f"  {name:24s} {mb:7.2f} MB")
    total = sum(sizes.values())
    print(f"  {'total':24s} {total:7.2f} MB (budget {MAX_TOTAL_MB:.0f} MB)")
    return 0 if total <= MAX_TOTAL_MB else 1


if __name__ == "__main__":
    sys.exit(main())
