"""The A/B timing script runs end to end on the smallest shipped LM and times two fits."""

from experiments.bench import lm_fit_seconds


def test_two_timed_fits_on_a_shipped_lm(capsys):
    walls = lm_fit_seconds.main(["--pretrained", "english-small", "--docs", "300"])
    assert len(walls) == 2 and all(w > 0 for w in walls)
    out = capsys.readouterr().out
    assert "fit 0:" in out and "fit 1:" in out and " tokens" in out
