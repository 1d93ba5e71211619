"""Options measured not to help are offered only on the command line, under an "experimental" heading."""

from __future__ import annotations

import re

import pytest

from napari_mclstexp.cli import build_parser
from napari_mclstexp.cli.train_cmd import EXPERIMENTAL


def _sub(name: str):
    parser = build_parser()
    (action,) = [a for a in parser._actions if a.dest == "command"]
    return parser, action.choices[name]


def test_context_scale_is_in_the_experimental_group_with_its_measurement():
    _, train = _sub("train")
    groups = {g.title: [a.dest for a in g._group_actions] for g in train._action_groups}
    assert groups[EXPERIMENTAL] == ["context_scale"]
    assert "docs/accuracy.md" in EXPERIMENTAL
    help_text = " ".join(train.format_help().split())
    heading = help_text.index(EXPERIMENTAL + ":")
    assert help_text.index("--context-scale S the image encoder") > heading  # listed under the heading, not above it
    assert "0.194" in help_text and "0.198" in help_text  # the measurement is cited


def test_pretrain_is_listed_last_as_experimental_and_cites_its_measurement():
    parser, pretrain = _sub("pretrain")
    top = parser.format_help()
    flat = " ".join(top.split())  # line breaks depend on the terminal's width
    assert flat.endswith("views).")  # the epilog names both experimental options
    assert "the pretrain command" in flat and "train --context-scale" in flat
    listed = re.findall(r"^    (\w+) ", top, flags=re.MULTILINE)  # the commands, in the order shown
    assert listed[-1] == "pretrain" and "train" in listed
    assert "experimental, measured not to help" in flat
    assert "0.182" in pretrain.format_help() and "docs/accuracy.md" in pretrain.format_help()


@pytest.mark.parametrize("args", [["train", "x.h5ad", "--out", "m.mclst", "--context-scale", "3"]])
def test_experimental_option_still_parses(args):
    parsed = build_parser().parse_args(args)
    assert parsed.context_scale == 3
