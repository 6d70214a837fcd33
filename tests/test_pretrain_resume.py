"""Pretraining survives kill -9: a rerun continues from the last orbax checkpoint and its learning curve continues
the interrupted one (the same losses at the same steps as an uninterrupted run)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent("""
    import sys
    from pathlib import Path
    import numpy as np
    from experiments.pretrain_lm import pretrain
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(60)]
    docs = [" ".join(rng.choice(words, 120)) for _ in range(60)]
    pretrain(docs[:54], docs[54:], Path(sys.argv[1]), dict(emb_sz=8, n_hid=16, n_layers=2), epochs=3, lr=3e-3,
             bs=4, drop_mult=0.0, max_vocab=100, ckpt_steps=5, curve_every=1)
""")


def _run(out: Path) -> subprocess.Popen:
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    return subprocess.Popen([sys.executable, "-c", SCRIPT, str(out)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _curve(out: Path) -> list[dict]:
    from experiments.pretrain_lm import read_curve

    return read_curve(out / "curve.jsonl")


def test_kill9_and_rerun_continue_the_learning_curve(tmp_path):
    ref = _run(tmp_path / "ref")
    assert ref.wait(timeout=600) == 0, ref.stderr.read()
    full = _curve(tmp_path / "ref")
    n_steps = full[-1]["step"]
    assert n_steps >= 40 and (tmp_path / "ref" / "lm.npz").is_file() and (tmp_path / "ref" / "curve.png").is_file()

    out = tmp_path / "killed"
    proc = _run(out)
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:  # kill -9 once two checkpoints exist, mid-epoch
        ckpts = [p for p in (out / "checkpoints").glob("*") if p.name.isdigit()] if (out / "checkpoints").is_dir() \
            else []
        if len(ckpts) >= 2 and len(_curve(out)) >= 12:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait(timeout=60)
    if proc.returncode == 0:
        pytest.skip("the run finished before it could be killed (machine too fast for this timing)")
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "report.json").exists()
    cut = _curve(out)[-1]["step"]
    assert cut < n_steps

    again = _run(out)
    assert again.wait(timeout=600) == 0, again.stderr.read()
    resumed = _curve(out)
    assert [r["step"] for r in resumed] == [r["step"] for r in full]  # no step lost, none logged twice
    for a, b in zip(resumed, full):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5), a["step"]
    assert json.loads((out / "report.json").read_text())["resumed"] is True


def test_review_corpus_is_train_only_seeded_and_subsampled(shared_data):
    from experiments.pretrain_lm import review_corpus

    root = shared_data("imdb").parent
    train, held = review_corpus(root, heldout=10, max_reviews=50)
    again, held_again = review_corpus(root, heldout=10, max_reviews=50)
    assert len(train) == 50 and len(held) == 10 and train == again and held == held_again
    assert not set(held) & set(train)
    assert all("<br />" not in t for t in train)


def test_pretrain_in_bf16_with_int8_storage_records_both_and_refuses_unknown_precisions(tmp_path):
    import numpy as np

    from experiments.pretrain_lm import pretrain

    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(60)]
    docs = [" ".join(rng.choice(words, 120)) for _ in range(30)]
    kw = dict(config=dict(emb_sz=8, n_hid=16, n_layers=2), epochs=1, lr=3e-3, bs=4, drop_mult=0.0, max_vocab=100)
    with pytest.raises(ValueError, match="precision must be fp32 or bf16, got 'fp16'"):
        pretrain(docs[:27], docs[27:], tmp_path / "bad", precision="fp16", **kw)
    report = pretrain(docs[:27], docs[27:], tmp_path / "bf16", precision="bf16", storage="int8", **kw)
    assert report["precision"] == "bf16" and np.isfinite(report["wikitext103_test"]["loss"])
    saved = json.loads((tmp_path / "bf16" / "report.json").read_text())
    assert saved["precision"] == "bf16" and saved["shipped"]["storage"] == "int8"
    trained, stored = saved["wikitext103_test"]["perplexity"], saved["shipped"]["wikitext103_test_perplexity"]
    assert stored != trained and abs(stored / trained - 1) < 0.02  # int8 rows: measurably, barely different
    with np.load(tmp_path / "bf16" / "lm.npz", allow_pickle=False) as z:
        assert z["0.encoder.weight"].dtype == np.int8


def test_pretraining_continues_an_earlier_lm_on_its_vocabulary(tmp_path):
    from experiments.pretrain_lm import init_files, pretrain, read_curve

    words = [f"w{i}" for i in range(60)]  # learnable text: each document cycles through its own 12 words
    docs = [" ".join(words[(i + k % 12) % 60] for k in range(120)) for i in range(30)]
    kw = dict(config=dict(emb_sz=16, n_hid=32, n_layers=2), bs=4, drop_mult=0.0, curve_every=1)
    first = pretrain(docs[:27], docs[27:], tmp_path / "first", epochs=4, lr=3e-2, max_vocab=100, **kw)
    files = init_files(str(tmp_path / "first"))
    # a smaller max_vocab would build another vocabulary; the continued LM keeps the first one's
    more = pretrain(docs[:27], docs[27:], tmp_path / "more", epochs=1, lr=1e-3, max_vocab=20, init_from=files, **kw)
    assert more["init_from"] == [str(f) for f in files] and first["init_from"] is None
    vocab = json.loads((tmp_path / "first" / "vocab.json").read_text())
    assert json.loads((tmp_path / "more" / "vocab.json").read_text()) == vocab
    start_first = read_curve(tmp_path / "first" / "curve.jsonl")[0]["loss"]
    start_more = read_curve(tmp_path / "more" / "curve.jsonl")[0]["loss"]
    end_first = read_curve(tmp_path / "first" / "curve.jsonl")[-1]["loss"]
    assert start_more < start_first - 0.5  # it starts where the first run ended, not from a random init
    assert start_more < end_first + 0.3, (start_first, end_first, start_more)
    assert more["wikitext103_test"]["loss"] <= first["wikitext103_test"]["loss"] + 0.05
    with pytest.raises(FileNotFoundError, match="lm.npz, vocab.json missing"):
        init_files(str(tmp_path / "nowhere"))
    shipped = init_files("english-small")
    assert shipped[0].name == "english-small.npz" and shipped[1].name == "english-small.vocab.json"


def test_the_shipped_description_names_the_lm_a_run_continued():
    from experiments.pretrain_lm import shipped_description
    from ulmfit_jax.pretrained import pretrained_lm

    results = ROOT / "experiments" / "results"
    report = json.loads((results / "pretrained_lm_large_4ep_report.json").read_text())
    desc = shipped_description(report, "runs/english_large_3ep")
    assert ", continuing the LM of runs/english_large_3ep; WikiText-103 test perplexity 63.5" in desc
    assert "continuing" not in shipped_description(report)
    # the shipped manifest says what the documented commands write
    manifest = json.loads((Path(pretrained_lm("english-large").weights).parent / "manifest.json").read_text())
    assert manifest["english-large"]["description"] == desc
    medium = json.loads((results / "pretrained_lm_medium_report.json").read_text())
    assert manifest["english-medium"]["description"] == shipped_description(medium)


def test_a_corpus_folder_without_text_is_refused_by_name(tmp_path):
    from experiments.configs.pretrain_lm_cpu import get_config
    from experiments.pretrain_lm import corpus_from_config, review_corpus

    c = get_config()
    c.data_dir = str(tmp_path)
    for corpus in ("english", "reviews", "reviews+english"):
        c.corpus = corpus
        with pytest.raises(FileNotFoundError, match=f"no pretraining text under {tmp_path}: expected english_lm"):
            corpus_from_config(c)
    wiki = tmp_path / "english_lm" / "wikitext-103"
    wiki.mkdir(parents=True)
    (wiki / "wiki.test.tokens").write_text("\n \n")  # there, but without an article
    (wiki / "wiki.valid.tokens").write_text(" = Title = \n\n Some text of an article .\n")
    c.corpus = "english"
    with pytest.raises(ValueError, match=r"wiki.test.tokens holds no WikiText articles"):
        corpus_from_config(c)
    c.wikitext103 = str(tmp_path / "elsewhere")
    with pytest.raises(FileNotFoundError, match=r"elsewhere/wiki.train.tokens does not exist"):
        corpus_from_config(c)
    (tmp_path / "imdb" / "aclImdb" / "train" / "pos").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"holds no review text under train/"):
        review_corpus(tmp_path, heldout=10)
