"""PredictOptions: one validated, immutable value; the CLI builds it from its arguments in one place."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from napari_mclstexp.cli import predict_cmd
from napari_mclstexp.errors import InputError
from napari_mclstexp.predict.options import DEFAULT, PredictOptions


def test_defaults_say_as_the_bundle_was_built():
    assert DEFAULT == PredictOptions()
    assert (DEFAULT.device, DEFAULT.k, DEFAULT.distance, DEFAULT.batch_size) == ("auto", None, None, None)
    assert (DEFAULT.precision, DEFAULT.tta, DEFAULT.smooth, DEFAULT.descriptors) == (None, None, True, True)


def test_frozen_and_replace_makes_a_validated_copy():
    base = PredictOptions(device="cpu", smooth=False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        base.k = 3  # type: ignore[misc]
    changed = base.replace(k=3, descriptors=0.25)
    assert (changed.k, changed.descriptors, changed.device, changed.smooth) == (3, 0.25, "cpu", False)
    assert base.k is None  # the original is untouched
    assert dataclasses.replace(base, tta=True) == PredictOptions(device="cpu", smooth=False, tta=True)
    with pytest.raises(InputError, match="k must be at least 1"):
        base.replace(k=0)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"k": 0}, "k must be at least 1, not 0"),
        ({"batch_size": -2}, "batch_size must be at least 1"),
        ({"distance": "cos"}, "distance must be one of l1, l2, not 'cos'"),
        ({"precision": "fp16"}, "precision must be one of bf16, fp32"),
        ({"smooth": 1.5}, "smooth must be on, off or a weight in [0, 1], not 1.5"),
        ({"descriptors": -0.1}, "descriptors must be on, off or a weight"),
    ],
)
def test_bad_values_are_refused_with_the_option_named(bad, message):
    with pytest.raises(InputError) as err:
        PredictOptions(**bad)
    assert message in str(err.value)


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    predict_cmd.register(parser.add_subparsers())
    return parser.parse_args(["predict", "model.mclst", "sample.h5ad", *argv])


def test_cli_arguments_make_one_options_value():
    assert predict_cmd.predict_options(_parse([])) == PredictOptions()
    argv = ["--device", "cpu", "--k", "7", "--distance", "l1", "--batch-size", "9", "--tta", "--no-smooth"]
    options = predict_cmd.predict_options(_parse([*argv, "--no-descriptors"]))
    assert options == PredictOptions(
        device="cpu", k=7, distance="l1", batch_size=9, tta=True, smooth=False, descriptors=False
    )
    with pytest.raises(InputError, match="batch_size must be at least 1"):
        predict_cmd.predict_options(_parse(["--batch-size", "0"]))
