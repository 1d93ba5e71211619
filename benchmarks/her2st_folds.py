"""What the accuracy parts share: the HER2+ sections, their folds, the scores and the result files.

The parts (``accuracy``, ``accuracy-levers``, ``accuracy-descriptors``, ``encoders``, ``pretrain``) import this
module and nothing from each other; ``python -m benchmarks`` sits above them all.

her2st: the first letter of a section is its patient.  Settings:

``cv``      slide-level CV: test C2, C3, C4 in turn, train on the other three image sections (B4 + two C);
            the test patient (C) is also in training.
``C>B4``    cross-patient: train C2, C3, C4, test B4 (patient B never seen).
``B4>C``    cross-patient: train B4, test C2, C3, C4 (patient C never seen).
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import numpy as np

#: The repository root (``benchmarks/..``).
REPO = Path(__file__).resolve().parents[1]
#: The four her2st sections with an H&E image.
IMAGE_SECTIONS = ("B4", "C2", "C3", "C4")
#: (training sections, test section or sections) per setting.
SETTINGS = {
    "cv": [(("B4", "C3", "C4"), "C2"), (("B4", "C2", "C4"), "C3"), (("B4", "C2", "C3"), "C4")],
    "C>B4": [(("C2", "C3", "C4"), "B4")],
    "B4>C": [(("B4",), ("C2", "C3", "C4"))],
}


def data_root(arg: str | None = None) -> Path:
    """The her2st folder: ``arg``, else ``$MCLSTEXP_SHARED_DATA/her2st``, else ``../shared/data/her2st``."""
    if arg:
        return Path(arg)
    env = os.environ.get("MCLSTEXP_SHARED_DATA")
    return (Path(env) if env else REPO.parent / "shared" / "data") / "her2st"


def tests_of(item) -> tuple[str, ...]:
    """The test sections of one ``SETTINGS`` entry."""
    return item[1] if isinstance(item[1], tuple) else (item[1],)


def acg(pred, truth: np.ndarray) -> float:
    """ACG: mean Pearson r over the genes, constant (NaN) genes dropped; ``pred`` may be a tensor."""
    return scores(pred, truth)["acg"]


def scores(pred, truth: np.ndarray) -> dict[str, float]:
    """ACG and HEG@50 (the paper's: mean Pearson r over all genes / the 50 most expressed), NaN genes dropped."""
    from napari_mclstexp.analysis.metrics import pearson_per_gene

    if hasattr(pred, "detach"):  # a torch tensor
        pred = pred.detach().float().cpu().numpy()
    r = pearson_per_gene(np.asarray(pred, np.float64), np.asarray(truth, np.float64))[0]
    heg = np.argsort(-np.asarray(truth).mean(0), kind="stable")[:50]
    return {"acg": float(np.nanmean(r)), "heg50": float(np.nanmean(r[heg]))}


def embed(model, patches: np.ndarray, batch: int = 128, tta: bool | None = None):
    """Image embeddings of ``patches`` (uint8, N × H × W × 3) by a trained model, in batches, no gradients."""
    import torch

    with torch.inference_mode():
        return torch.cat(
            [
                model.encode_images(torch.from_numpy(np.array(patches[i : i + batch])), tta=tta)
                for i in range(0, len(patches), batch)
            ]
        )


def knn_alpha(patches: dict, expr: dict, xy: dict, train: tuple[str, ...], k: int) -> float:
    """The kNN's smoothing weight, chosen as the model's: held-out predictions of the training sections."""
    from napari_mclstexp.predict.baseline import histogram_knn_predict
    from napari_mclstexp.predict.smoothing import choose_alpha

    preds, truths, xys, secs = [], [], [], []
    for s in train:
        if len(train) > 1:
            ref = [t for t in train if t != s]
            p = histogram_knn_predict(
                np.concatenate([patches[t] for t in ref]), np.concatenate([expr[t] for t in ref]), patches[s], k
            )
        else:  # one section: halves predict each other
            n = len(expr[s])
            half = np.arange(n) < n // 2
            p = np.zeros_like(expr[s])
            for h in (half, ~half):
                p[h] = histogram_knn_predict(patches[s][~h], expr[s][~h], patches[s][h], k)
        preds.append(p)
        truths.append(expr[s])
        xys.append(xy[s])
        secs += [s] * len(p)
    return choose_alpha(np.concatenate(preds), np.concatenate(truths), np.concatenate(xys), secs)["alpha"]


def write_json(payload: dict, out: Path | str) -> None:
    """``payload`` as indented JSON at ``out``, atomically."""
    from napari_mclstexp.atomic import atomic_write_path

    with atomic_write_path(out) as tmp:
        Path(tmp).write_text(json.dumps(payload, indent=1))


def write_seed_files(args, arrays: dict[str, np.ndarray], payload: dict) -> None:
    """One seed's results, atomically: ``arrays`` to ``<out>.npz``, ``payload`` (plus the machine) to ``<out>``."""
    from napari_mclstexp.atomic import atomic_write_path

    with atomic_write_path(Path(args.out).with_suffix(".npz")) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
    machine = {"cpus": os.cpu_count(), "torch_threads": args.threads, "platform": platform.platform()}
    write_json({**payload, "machine": machine}, args.out)


def _estimated_now(stored: dict) -> bool:
    """Whether a bundle's stored ``reference_stain`` was estimated as the current estimator does (its pixel floor)."""
    from napari_mclstexp.data.stain import FLOOR, LEGACY_FLOOR

    return float(stored.get("floor", LEGACY_FLOOR)) == FLOOR


def current_stains(bundle, train_samples) -> bool:
    """Give a kept bundle trained *as scanned* the training stains the current estimator measures, when its
    stored ones are missing or were estimated otherwise (another pixel floor); returns whether they were
    measured again.  A bundle whose training sections were mapped to its reference is left: its encoder saw
    that reference's mapping, so it must be trained again instead (:func:`kept_bundle`)."""
    from napari_mclstexp.data.slide_stain import METADATA_KEY
    from napari_mclstexp.data.stain_rule import AS_SCANNED, training_stains

    stored = bundle.metadata.get(METADATA_KEY) or {}
    if stored.get("training") not in (None, AS_SCANNED) or bundle.config.get("stain_normalize"):
        return False
    if "section_stains" in stored and _estimated_now(stored):
        return False
    measured = training_stains(list(train_samples), False)
    if measured is not None:
        bundle.metadata[METADATA_KEY] = measured.to_dict()
    return True


def kept_bundle(path: Path, train_samples):
    """The bundle kept at ``path``, with :func:`current_stains`; ``None`` when there is none or it was trained on
    sections mapped to a reference estimated otherwise than now (moved aside as ``*.stale.mclst``: train again)."""
    from napari_mclstexp.bundle import load_bundle
    from napari_mclstexp.data.slide_stain import METADATA_KEY
    from napari_mclstexp.data.stain_rule import MAPPED

    if not path.is_file():
        return None
    bundle = load_bundle(path)
    stored = bundle.metadata.get(METADATA_KEY) or {}
    if (bundle.config.get("stain_normalize") or stored.get("training") == MAPPED) and not _estimated_now(stored):
        path.replace(path.with_suffix(".stale.mclst"))
        return None
    current_stains(bundle, train_samples)
    return bundle
