"""Cross-validation without leakage: fold plans, per-fold train → bank → predict → evaluate, resumable.

Schemes (one fold per test section):

``slide``
    Leave-one-slide-out, the paper's protocol: every other image section trains the model and fills
    the reference bank; sections of the test patient stay in (serial sections share tissue, so
    this is optimistic).
``patient``
    Leave-one-patient-out: every section of the test section's patient is excluded from training
    **and** from the reference bank (the leakage guard).

Expression-only sections (``extra``) never train or get tested; they only add spots to the bank, under
the same patient rule.  The results file is rewritten atomically after every fold and a rerun skips the
folds it already holds, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..analysis import report as _report
from ..data.scales import describe_scale, value_normalization
from ..errors import InputError, SampleFormatError
from ..io.h5ad import write_h5ad
from ..progress import CancelToken, Progress, ProgressGen
from ..sample import section_name

SCHEMES = ("slide", "patient")
FORMAT_NAME = "napari-mclstexp-cv"
FORMAT_VERSION = 1
#: Metrics averaged over folds.
MEAN_KEYS = ("acg", "heg50", "hvg50", "mse", "mae", "domain_ari", "domain_nmi")


@dataclass(frozen=True)
class Fold:
    """One cross-validation fold (section names only: a pure plan).

    Attributes
    ----------
    test
        The held-out section.
    train
        Image sections that train the model; their spots fill the bank.
    bank_extra
        Expression-only sections added to the bank.
    excluded
        Sections left out besides ``test`` (other sections of the test patient, ``patient`` scheme).
    """

    test: str
    train: tuple[str, ...]
    bank_extra: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()

    @property
    def bank(self) -> tuple[str, ...]:
        """Every section whose spots are in the fold's reference bank."""
        return self.train + self.bank_extra

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def plan_folds(
    sections: Mapping[str, str],
    scheme: str,
    *,
    test_sections: Sequence[str] | None = None,
    extra: Mapping[str, str] | None = None,
) -> list[Fold]:
    """Plan the folds of a cross-validation.

    Parameters
    ----------
    sections
        Image sections (trainable, testable): section name → patient.
    scheme
        ``"slide"`` (leave-one-slide-out) or ``"patient"`` (leave-one-patient-out).
    test_sections
        Sections to test (default: all of ``sections``), in the order given.
    extra
        Expression-only sections for the bank: name → patient.

    Returns
    -------
    list[Fold]

    Raises
    ------
    InputError
        Unknown scheme or test section, or a fold left without training sections.
    """
    if scheme not in SCHEMES:
        raise InputError(f"unknown cross-validation scheme {scheme!r}: use 'slide' or 'patient'")
    extra = {s: p for s, p in (extra or {}).items() if s not in sections}
    tests = list(sections) if test_sections is None else [str(s) for s in test_sections]
    unknown = [s for s in tests if s not in sections]
    if unknown:
        raise InputError(f"test section(s) {', '.join(unknown)} not among the image sections ({', '.join(sections)})")
    folds = []
    for test in tests:
        patient = sections[test]
        if scheme == "slide":
            train = tuple(s for s in sections if s != test)
            bank_extra = tuple(extra)
            excluded: tuple[str, ...] = ()
        else:
            train = tuple(s for s, p in sections.items() if p != patient)
            bank_extra = tuple(s for s, p in extra.items() if p != patient)
            excluded = tuple(s for s, p in {**sections, **extra}.items() if p == patient and s != test)
        if not train:
            raise InputError(
                f"fold {test}: no section left to train on under the {scheme!r} scheme "
                f"(all sections belong to patient {patient!r})"
            )
        folds.append(Fold(test, train, bank_extra, excluded))
    return folds


def patients_of(samples: Sequence[Any], scheme: str) -> dict[str, str]:
    """Section → patient of ``samples`` (``obs['patient']``); unique section names required."""
    out: dict[str, str] = {}
    for i, adata in enumerate(samples):
        name = section_name(adata, i)
        if name in out:
            raise SampleFormatError(f"two samples are both section {name!r}: section names must be unique")
        if "patient" in adata.obs and adata.n_obs and adata.obs["patient"].nunique() == 1:
            out[name] = str(adata.obs["patient"].iloc[0])
        elif scheme == "patient":
            raise SampleFormatError(f"section {name!r} has no single obs['patient']: the patient scheme needs it")
        else:
            out[name] = name
    return out


def data_hash(samples: Sequence[Any]) -> str:
    """SHA-256 (hex, 16 chars) of the samples' section names, spots, genes, counts and positions."""
    return _report.data_hash(samples, [section_name(a, i) for i, a in enumerate(samples)])


def mean_metrics(folds: Mapping[str, Any], keys: Sequence[str] = MEAN_KEYS) -> dict[str, Any]:
    """Mean and standard deviation over folds of each metric (``None``/NaN folds skipped)."""
    out: dict[str, Any] = {"n_folds": len(folds)}
    for prefix in ("", "baseline_"):
        for key in keys:
            values = [f.get(prefix + "metrics", {}).get(key) for f in folds.values()]
            values = np.array([v for v in values if v is not None], dtype=float)
            values = values[np.isfinite(values)]
            if values.size:
                out[prefix + key] = float(values.mean())
                out[prefix + key + "_std"] = float(values.std())
    return out


def run_fold(
    fold: Fold,
    samples: Mapping[str, Any],
    config: Any,
    *,
    genes: list[str],
    device: str = "auto",
    domain_key: str | None = None,
    baseline: bool = False,
    predictions_dir: str | os.PathLike | None = None,
    patch_cache: Any = None,
    cancel: CancelToken | None = None,
) -> ProgressGen[dict[str, Any]]:
    """Train on ``fold.train``, bank ``fold.bank``, predict and evaluate ``fold.test``.

    Returns
    -------
    dict
        ``metrics`` (:func:`~napari_mclstexp.analysis.metrics.summary` plus domain scores),
        ``per_gene_r``, ``timings`` (s), ``device``, ``n_bank_spots``, ``final_loss`` and, with
        ``baseline``, ``baselines`` (ridge, colour-histogram kNN, mean expression; see
        :mod:`.cv_baselines`) and ``baseline_metrics`` (the histogram kNN's, as before).
    """
    from ..analysis.domains import domain_scores
    from ..analysis.metrics import evaluate, summary
    from ..bundle import make_bundle
    from ..predict.options import PredictOptions
    from ..predict.spots import predict_at_spots
    from ..train.trainer import train
    from .cv_baselines import fold_baselines, model_hest_pcc
    from .reliability import iter_finish_bundle

    test = samples[fold.test]
    train_samples = [samples[s] for s in fold.train]
    extra_samples = [samples[s] for s in fold.bank_extra]
    t0 = time.perf_counter()
    result = yield from train(train_samples, config, genes=genes, device=device, cancel=cancel, patch_cache=patch_cache)
    t1 = time.perf_counter()
    bundle = make_bundle(result, train_samples, result.device, extra_samples=extra_samples)
    yield from iter_finish_bundle(bundle, train_samples, device=result.device, patch_cache=patch_cache, cancel=cancel)
    t2 = time.perf_counter()
    options = PredictOptions(device=result.device)
    pred = yield from predict_at_spots(bundle, test, options, patch_cache=patch_cache, cancel=cancel)
    t3 = time.perf_counter()
    scores = evaluate(pred, test, normalization=value_normalization(bundle.config))  # the bank values' scale
    metrics = summary(scores)
    metrics["hest_pcc"] = model_hest_pcc(bundle, train_samples, scores)
    if domain_key and domain_key in test.obs:
        metrics.update(domain_scores(pred, test, domain_key, seed=int(bundle.config.get("seed", 0))))
    t4 = time.perf_counter()
    if predictions_dir is not None:
        write_h5ad(pred, Path(predictions_dir) / f"{fold.test}.h5ad")
    history = list(result.history or [])
    record: dict[str, Any] = {
        "metrics": metrics,
        "per_gene_r": {str(g): float(r) for g, r in scores["per_gene"]["r"].items()},
        "timings": {"train_s": t1 - t0, "bank_s": t2 - t1, "predict_s": t3 - t2, "evaluate_s": t4 - t3},
        "device": str(result.device),
        "epochs": len(history),
        "final_loss": history[-1].get("loss") if history else None,
        "n_bank_spots": len(bundle.bank),
    }
    if baseline:
        tb = time.perf_counter()
        record["baselines"] = yield from fold_baselines(
            bundle,
            result.model,
            train_samples,
            test,
            pred,
            device=result.device,
            patch_cache=patch_cache,
            cancel=cancel,
        )
        record["baseline_metrics"] = record["baselines"]["histogram"]  # the colour-histogram kNN, as before
        record["timings"]["baseline_s"] = time.perf_counter() - tb
    return record


def _header(scheme, cfg, genes, samples, extras, plan) -> dict[str, Any]:
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "scheme": scheme,
        "preset": cfg.preset,
        "config": cfg.to_dict(),
        "scale": describe_scale(value_normalization(cfg)),  # what the metrics are on
        "genes": list(genes),
        "data_hash": data_hash(list(samples) + list(extras)),
        "plan": [f.to_dict() for f in plan],
    }


def run_cv(
    samples: Sequence[Any],
    scheme: str = "slide",
    config: Any = "quick",
    *,
    out: str | os.PathLike | None = None,
    folds: Sequence[str] | None = None,
    extra: Sequence[Any] = (),
    genes: Any = None,
    device: str = "auto",
    domain_key: str | None = None,
    baseline: bool = False,
    predictions_dir: str | os.PathLike | None = None,
    patch_cache: Any = None,
    cancel: CancelToken | None = None,
) -> ProgressGen[dict[str, Any]]:
    """Cross-validate: one fold per test section, resumable through ``out``.

    Parameters
    ----------
    samples
        Image sections (AnnData with raw counts and images); ``obs['patient']`` needed for the
        ``patient`` scheme.
    scheme
        ``"slide"`` or ``"patient"`` (see module docstring).
    config
        :class:`~napari_mclstexp.model.presets.TrainConfig`, its dict, or a preset name.
    out
        Results JSON, rewritten atomically after every fold; folds already in it are not recomputed
        (its scheme, configuration, genes and data hash must match, else :class:`InputError`).
    folds
        Test sections (default: every sample).
    extra
        Expression-only sections added to the bank (patient rule applies).
    genes
        Gene panel spec (:func:`~napari_mclstexp.data.genes.select_genes`), resolved once over all
        sections so every fold predicts the same panel.
    device
        Training / prediction device.
    domain_key
        ``obs`` column of reference labels: adds domain ARI/NMI per fold (k = number of labels).
    baseline
        Also score the colour-histogram kNN reference per fold.
    predictions_dir
        Write each fold's prediction as ``<test>.h5ad`` there.
    patch_cache, cancel
        Passed on to training and prediction.

    Yields
    ------
    Progress
        Stage ``"cv"`` (one step per fold) and the inner stages of training and prediction.

    Returns
    -------
    dict
        The results: header (scheme, config, genes, data hash, plan), ``folds`` (test → record),
        ``mean``, ``versions``, ``device``, ``created``, ``updated``.
    """
    from ..data.genes import select_genes
    from ..model.presets import as_config
    from .cv_baselines import summarize, within_patient

    samples, extras = list(samples), list(extra)
    cfg = as_config(config)
    sections = patients_of(samples, scheme)
    extra_sections = patients_of(extras, scheme) if extras else {}
    plan = plan_folds(sections, scheme, test_sections=folds, extra=extra_sections)
    # an expression-only copy of an image section never replaces the image section
    by_name = dict(zip(extra_sections, extras, strict=True)) | dict(zip(sections, samples, strict=True))
    panel = [str(g) for g in select_genes(samples + extras, genes)]
    header = _header(scheme, cfg, panel, samples, extras, plan)
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    results: dict[str, Any] = {**header, "folds": {}, "created": now}
    if out is not None and Path(out).is_file():
        try:
            previous = json.loads(Path(out).read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise InputError(f"cannot resume: not a readable results file ({err})", out) from err
        for key in ("format", "scheme", "config", "genes", "data_hash"):
            if previous.get(key) != header[key]:
                detail = key
                old, new = previous.get(key), header[key]
                if isinstance(old, dict) and isinstance(new, dict):
                    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
                    detail = ", ".join(f"{k} {old.get(k)!r} → {new.get(k)!r}" for k in changed[:4]) or key
                elif key == "scheme":
                    detail = f"scheme {old!r} → {new!r}"
                raise InputError(
                    f"cannot resume: this file holds a different run ({detail}); choose another --out or delete it",
                    out,
                )
        results["folds"] = dict(previous.get("folds", {}))
        results["created"] = previous.get("created", now)
        planned = {f["test"] for f in results["plan"]}
        results["plan"] = [f for f in previous.get("plan", []) if f.get("test") not in planned] + results["plan"]
    results["versions"] = _report.versions()
    todo = [f for f in plan if f.test not in results["folds"]]
    done = len(plan) - len(todo)
    yield Progress("cv", done, len(plan), message=f"{done} fold(s) already done")
    for fold in todo:
        if cancel is not None:
            cancel.raise_if_cancelled()
        t0 = time.perf_counter()
        record = yield from run_fold(
            fold,
            by_name,
            cfg,
            genes=panel,
            device=device,
            domain_key=domain_key,
            baseline=baseline,
            predictions_dir=predictions_dir,
            patch_cache=patch_cache,
            cancel=cancel,
        )
        record = {**fold.to_dict(), **record, "within_patient": within_patient(fold, sections)}
        record["timings"] = {**record.get("timings", {}), "total_s": time.perf_counter() - t0}
        record["finished"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        results["folds"][fold.test] = record
        results["device"] = record.get("device")
        results["mean"] = mean_metrics(results["folds"])
        results["updated"] = record["finished"]
        if out is not None:
            _report.write_json(results, out)
        done += 1
        yield Progress("cv", done, len(plan), message=f"fold {fold.test}: ACG {record['metrics'].get('acg')}")
    results["mean"] = mean_metrics(results["folds"])
    results["comparison"] = summarize(results["folds"])
    results.setdefault("device", None)
    results["updated"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    if out is not None:
        _report.write_json(results, out)
    return _report.json_safe(results)
