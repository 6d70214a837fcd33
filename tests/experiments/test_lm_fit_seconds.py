"""The A/B timing script runs end to end on the smallest shipped LM, by name or by its files, and times two fits."""

import pytest

from experiments.bench import lm_fit_seconds
from ulmfit_jax import pretrained_lm


def test_two_timed_fits_on_a_shipped_lm(capsys):
    walls = lm_fit_seconds.main(["--pretrained", "english-small", "--docs", "300"])
    assert len(walls) == 2 and all(w > 0 for w in walls)
    out = capsys.readouterr().out
    assert "fit 0:" in out and "fit 1:" in out and " tokens" in out


def test_frozen_stage_and_more_fits(capsys):
    walls = lm_fit_seconds.main(["--pretrained", "english-small", "--docs", "200", "--frozen", "--fits", "3"])
    assert len(walls) == 3
    out = capsys.readouterr().out
    assert out.count(", frozen") == 3 and "fit 2:" in out


def test_weights_files_instead_of_a_name(capsys):
    pre = pretrained_lm("english-small")
    walls = lm_fit_seconds.main(["--weights", str(pre.weights), "--vocab", str(pre.vocab), "--docs", "200"])
    assert len(walls) == 2
    assert f"{pre.weights}: fit 1:" in capsys.readouterr().out


@pytest.mark.parametrize("half", [["--weights", "some.npz"], ["--vocab", "some.vocab.json"]])
def test_weights_without_vocab_is_refused(half):
    with pytest.raises(SystemExit, match="--weights and --vocab go together"):
        lm_fit_seconds.main(half)
