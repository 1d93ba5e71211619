"""The embedded default: the offline demo slide, its bundled model, and the demo pipeline.

``sample_data/`` (made by ``scripts/make_sample_data.py``) holds a synthetic H&E-like slide (tiled
pyramidal JPEG OME-TIFF), its Visium-like sample (``.h5ad`` whose image path is *relative* to the
folder) and a small ``quick`` model trained on the left two thirds of the slide.  :func:`run_demo`
predicts the held-out right third from the image alone, evaluates it against the measured counts,
finds tissue domains and writes the predictions, a metrics JSON and a figure.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..analysis.report import write_json
from ..errors import BundleError, MissingInputError, SampleFormatError
from ..progress import CancelToken, Progress, ProgressGen
from ..sample import image_path, set_image_path

#: Files of the sample folder.
SAMPLE_H5AD = "demo_sample.h5ad"
SAMPLE_IMAGE = "demo_slide.ome.tif"
SAMPLE_BUNDLE = "demo_quick.mclst"
#: ``obs`` columns of the demo sample: the train/test split and the true tissue region.
SPLIT_KEY = "demo_split"
REGION_KEY = "annotation"
#: Preset of the bundled model and the retrieval neighbours it uses on the demo slide.
DEMO_PRESET = "quick"
DEMO_K = 50
#: Training epochs of the demo model: the demo slide is easy, and more epochs change little
#: (measured on 2 shared CPU cores: 5 epochs already give ACG ≈ 0.49, domain ARI ≈ 0.91).
DEMO_EPOCHS = 8
#: The demo model's notes on its card.
DEMO_NOTES = "left two thirds of the offline demo slide (sample_data/); made by scripts/make_sample_data.py"


def _candidate_dirs() -> list[Path]:
    """Where the sample folder may live: the installed package first, then the source tree."""
    installed = Path(str(resources.files("napari_mclstexp"))) / "sample_data"
    source_tree = Path(__file__).resolve().parents[3] / "sample_data"
    return [installed, source_tree]


def sample_data_dir() -> Path:
    """The folder holding the offline demo slide, sample and bundled model.

    Looks in the installed package (``napari_mclstexp/sample_data``, put there by the wheel) first,
    then in the source tree (``<repository>/sample_data``, editable installs).

    Raises
    ------
    MissingInputError
        When neither holds the demo sample (run ``python scripts/make_sample_data.py``).
    """
    candidates = _candidate_dirs()
    for folder in candidates:
        if (folder / SAMPLE_H5AD).is_file():
            return folder
    raise MissingInputError(
        "the offline demo data is missing (looked in "
        + " and ".join(str(c) for c in candidates)
        + "); regenerate it with: python scripts/make_sample_data.py",
        candidates[-1],
    )


def resolve_image_path(adata, folder: str | os.PathLike) -> Path:
    """Make the sample's ``source_image_path`` absolute, relative to ``folder`` (in place).

    The sample stores a relative path because absolute paths differ per machine.

    Returns
    -------
    pathlib.Path
        The absolute image path now stored in ``uns['spatial'][lib]['metadata']``.
    """
    libs = adata.uns.get("spatial", {})
    if len(libs) != 1:
        raise SampleFormatError("the demo sample must hold exactly one uns['spatial'] library", folder)
    stored = image_path(adata) or Path(SAMPLE_IMAGE)
    path = stored if stored.is_absolute() else (Path(folder) / stored).resolve()
    if not path.is_file():
        raise MissingInputError("the demo slide image is missing", path)
    return set_image_path(adata, path)


def load_demo_sample(folder: str | os.PathLike | None = None):
    """Read the demo sample with its image path resolved.

    Parameters
    ----------
    folder
        Sample folder; default :func:`sample_data_dir`.

    Returns
    -------
    anndata.AnnData
        Raw counts, ``obsm['spatial']`` (x, y) in full-resolution px, ``obs['annotation']`` (true
        region) and ``obs['demo_split']`` (``"train"``/``"test"``).
    """
    import anndata as ad

    folder = Path(folder) if folder is not None else sample_data_dir()
    path = folder / SAMPLE_H5AD
    if not path.is_file():
        raise MissingInputError("the demo sample is missing", path)
    adata = ad.read_h5ad(path)
    resolve_image_path(adata, folder)
    from ..sample import validate_sample

    validate_sample(adata, path, require_image=True)
    for key in (SPLIT_KEY, REGION_KEY):
        if key not in adata.obs:
            raise SampleFormatError(f"obs[{key!r}] is missing", path)
    return adata


def split_demo_sample(adata) -> tuple[Any, Any]:
    """Split the demo sample into its training (left) and held-out (right) spots.

    Returns
    -------
    train, test : anndata.AnnData
        Copies; ``obs['section']`` gets a ``-train`` / ``-test`` suffix so that the held-out part is
        never mistaken for a training section.
    """
    split = adata.obs[SPLIT_KEY].astype(str).to_numpy()
    parts = []
    for name in ("train", "test"):
        part = adata[split == name].copy()
        part.obs["section"] = part.obs["section"].astype(str) + f"-{name}"
        parts.append(part)
    return parts[0], parts[1]


def demo_config(epochs: int | None = None, seed: int = 0):
    """The ``quick`` preset as used by the demo: :data:`DEMO_EPOCHS` epochs, k = :data:`DEMO_K`."""
    from ..model.presets import get_preset

    return get_preset(DEMO_PRESET).replace(
        k=DEMO_K, seed=seed, epochs=int(epochs if epochs is not None else DEMO_EPOCHS)
    )


def train_demo_bundle(
    train_part, *, epochs: int | None = None, device: str = "auto", cancel: CancelToken | None = None
) -> ProgressGen[Any]:
    """Train the demo's ``quick`` model on the training spots and wrap it as a bundle.

    Yields the trainer's progress events (stages ``"patches"``, ``"train"``) and returns a
    :class:`~napari_mclstexp.bundle.Bundle` whose reference bank holds the training spots only, finished as
    ``train`` finishes bundles (descriptors, blend and neighbour weights, per-gene reliability).
    """
    from ..bundle import make_bundle
    from ..train.trainer import train
    from .reliability import iter_finish_bundle

    result = yield from train([train_part], demo_config(epochs), device=device, cancel=cancel)
    yield Progress("bank", 0, 1, "embedding the reference spots")
    about = {"tissue": "synthetic H&E-like demo slide (five regions), not human tissue", "notes": DEMO_NOTES}
    bundle = make_bundle(result, [train_part], result.device, about=about)
    yield Progress("bank", 1, 1)
    return (yield from iter_finish_bundle(bundle, [train_part], device=result.device, cancel=cancel))


def load_demo_bundle(path: str | os.PathLike):
    """Load the bundled demo model, checking that its weights fit this version's model code.

    Raises
    ------
    BundleError
        With the commands that retrain it, when the model code changed since it was made.
    """
    from ..bundle import load_bundle

    bundle = load_bundle(path)
    try:
        bundle.build_model("cpu")
    except BundleError as err:
        raise BundleError(
            "the bundled demo model does not fit this version's model code; retrain it with "
            "'mclstexp demo --train' or 'python scripts/make_sample_data.py --model-only'",
            path,
        ) from err
    return bundle


@dataclass
class DemoResult:
    """What :func:`run_demo` wrote and measured."""

    out_dir: Path
    prediction_path: Path
    metrics_path: Path
    figure_path: Path | None
    metrics: dict[str, Any]
    genes_shown: list[str]
    prediction: Any = field(repr=False, default=None)
    sample: Any = field(repr=False, default=None)


def image_driven_genes(genes: list[str]) -> list[str]:
    """Genes of the demo panel that the image determines (region markers and ``NUCDENS``)."""
    return [g for g in genes if not g.startswith("NOISE_")]


def run_demo(
    out_dir: str | os.PathLike,
    *,
    train: bool = False,
    epochs: int | None = None,
    device: str = "auto",
    folder: str | os.PathLike | None = None,
    figure: bool = True,
    cancel: CancelToken | None = None,
) -> ProgressGen[DemoResult]:
    """Predict the held-out third of the demo slide, evaluate it and write the results.

    Parameters
    ----------
    out_dir
        Output folder (created): ``predictions.h5ad``, ``metrics.json``, ``measured_vs_predicted.png``
        and, with ``train=True``, ``model.mclst``.
    train
        Train the ``quick`` model again on the training spots instead of using the bundled one.
    epochs
        Epochs when training (default :data:`DEMO_EPOCHS`).
    device
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"mps"``.
    folder
        Sample folder (default :func:`sample_data_dir`).
    figure
        Write the PNG figure (needs matplotlib).
    cancel
        Checked between steps.

    Returns
    -------
    DemoResult
        Paths and metrics (``acg``, ``heg50``, ``hvg50``, ``mse``, ``mae``, ``acg_image_genes``,
        ``acg_noise_genes``, ``ari``, ``nmi``, ``ari_measured``, ...).
    """
    from ..analysis.domains import find_domains, score_domains
    from ..analysis.metrics import evaluate, measured_matrix, summary
    from ..bundle import save_bundle
    from ..io.h5ad import write_h5ad
    from ..predict.options import PredictOptions
    from ..predict.spots import predict_at_spots

    start = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    folder = Path(folder) if folder is not None else sample_data_dir()
    yield Progress("demo", 0, 4, "loading the demo sample")
    sample = load_demo_sample(folder)
    train_part, test_part = split_demo_sample(sample)
    if cancel is not None:
        cancel.raise_if_cancelled()

    if train:
        bundle = yield from train_demo_bundle(train_part, epochs=epochs, device=device, cancel=cancel)
        bundle_path = out / "model.mclst"
        save_bundle(bundle, bundle_path)
    else:
        bundle_path = folder / SAMPLE_BUNDLE
        bundle = load_demo_bundle(bundle_path)
    yield Progress("demo", 1, 4, "predicting the held-out spots from the image")
    pred = yield from predict_at_spots(bundle, test_part, PredictOptions(device=device), cancel=cancel)

    yield Progress("demo", 2, 4, "evaluating")
    result = evaluate(pred, test_part)
    per_gene = result["per_gene"]
    image_genes = image_driven_genes(list(per_gene.index))
    noise_genes = [g for g in per_gene.index if g not in image_genes]
    k = int(sample.obs[REGION_KEY].nunique())
    truth_labels = test_part.obs[REGION_KEY].astype(str).to_numpy()
    domains = find_domains(pred.X, k)
    domain_scores = score_domains(domains, truth_labels)
    measured, _ = measured_matrix(test_part, list(pred.var_names), result["normalization"])
    measured_scores = score_domains(find_domains(measured, k), truth_labels)
    pred.obs["domain"] = domains.astype(str)
    pred.obs[REGION_KEY] = truth_labels

    yield Progress("demo", 3, 4, "writing outputs")
    ranked = per_gene.loc[image_genes, "r"].dropna().sort_values(ascending=False)
    genes_shown = list(ranked.index[:2])
    metrics = {
        **summary(result),
        "acg_image_genes": float(per_gene.loc[image_genes, "r"].mean()),
        "acg_noise_genes": float(per_gene.loc[noise_genes, "r"].mean()) if noise_genes else None,
        "ari": domain_scores["ari"],
        "nmi": domain_scores["nmi"],
        "ari_measured": measured_scores["ari"],
        "nmi_measured": measured_scores["nmi"],
        "k_domains": k,
        "train_spots": int(train_part.n_obs),
        "test_spots": int(test_part.n_obs),
        "trained_now": bool(train),
        "bundle": str(bundle_path),
        "preset": DEMO_PRESET,
        "per_gene_r": per_gene["r"].to_dict(),
    }
    prediction_path = out / "predictions.h5ad"
    write_h5ad(pred, prediction_path)
    figure_path = None
    if figure and genes_shown:
        from ..analysis.figures import plot_measured_vs_predicted

        figure_path = plot_measured_vs_predicted(pred, test_part, genes_shown, out / "measured_vs_predicted.png")
    metrics["seconds"] = round(time.perf_counter() - start, 2)
    metrics_path = write_json(metrics, out / "metrics.json")
    yield Progress("demo", 4, 4, "done")
    return DemoResult(
        out_dir=out,
        prediction_path=prediction_path,
        metrics_path=metrics_path,
        figure_path=figure_path,
        metrics=metrics,
        genes_shown=genes_shown,
        prediction=pred,
        sample=sample,
    )
