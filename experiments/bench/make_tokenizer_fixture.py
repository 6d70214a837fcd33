"""Write ``tests/fixtures/tokenizer_parity.json``: fastai's and spaCy's tokens for our tokenizer tests (needs fastai).

Three parts: hand-picked edge cases through fastai's full ``tokenize1`` (rules + spaCy); random strings of
punctuation, contractions, URLs, emoticons and odd whitespace through bare ``spacy.blank('en')`` (with fastai's
special tokens), which exercises every branch of spaCy's algorithm, alone and joined into long texts; and, for
the 1,000 reviews of fastai's ``imdb_sample`` (``texts.csv``), a SHA-1 of fastai's token list per review,
checked by a real-data test.

    /work/refenv/bin/python experiments/bench/make_tokenizer_fixture.py \
        --imdb-sample /work/shared/data/imdb/imdb_sample/texts.csv
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random

EDGE_CASES = [
    "", " ", "Hello", "  leading spaces", "trailing space ", "double  space", "new\nline", "a \n b", "a\n b",
    "a \nb", "tab\there", "I don't know, can't say.", "Dont do that!!!", "He said: \"It's 5 o'clock.\"",
    "Visit http://www.example.com/path?x=1 now", "email me@example.com ok", "(hello) [world] {x}",
    "x:) y :) z(: ;-) :-(", "10km 5kg $100 US$5 3.5% 1,000,000", "e.g. i.e. a.m. p.m. 10a.m. Mr. Smith vs. Dr. Who",
    "state-of-the-art well--known dyn-o-mite", "It was GREAT!!!! Really really really good", "Ummm.... okay...",
    "C'mon y'all, ain't nothin' gonna", "<br /><br />Next line<br />", "what's up? who's there? let's go",
    "rock'n'roll", "'quoted' \"double\" ``weird''", "1990s 80's '90s", "Café naïve façade – em—dash …",
    "#hashtag @user / slash \\ back", "&amp; &lt;tag&gt; &#39;quote&#39; &quot;x&quot;", "sooooo goooood",
    "The The The The end", "U.S.A. U.K. U.S. army", "9/11 24/7 1/2", "xxbos already xxmaj here", ":):(:D",
    "hi!(really)", "end.Start", "word...word", "x-ray X-Men", "o.k. ok.", "A. B. c.", "'s 're n't",
    "3:30pm 10:00", "\u00a0nbsp\u00a0here", "zero\u200bwidth", "emoji \U0001F600 here \U0001F44D\U0001F3FD",
    "\ufb01 ligature", "ALL CAPS SENTENCE HERE.",
]
ATOMS = list("abcxyzAB019.,;:!?'\"()[]-/\\$%&*+=<>@#_~`^|") + [
    " ", " ", " ", "  ", "\n", "\t", "...", "n't", "'s", "Mr.", "a.m.", ":)", "(:", "don't", "http://", "www.",
    ".com", "km", "10", "U.S.", "xxbos", "xxmaj", "é", "…", "—", "’", "\U0001F600", "can't", "e.g.", "o'clock",
    "'em", "10a.m.", "8-)", ":-)", "i.e."]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", default="tests/fixtures/tokenizer_parity.json")
    p.add_argument("--imdb-sample", default=None, help="fastai's imdb_sample texts.csv")
    p.add_argument("--n-random", type=int, default=600)
    args = p.parse_args()

    import spacy
    from fastai.text.all import WordTokenizer, tokenize1
    from spacy.symbols import ORTH

    tok = WordTokenizer()
    nlp = spacy.blank("en")
    for w in "xxunk xxpad xxbos xxeos xxfld xxrep xxwrep xxup xxmaj".split():
        nlp.tokenizer.add_special_case(w, [{ORTH: w}])
    rng = random.Random(0)
    rand = ["".join(rng.choice(ATOMS) for _ in range(rng.randint(1, 30))) for _ in range(args.n_random)]
    # long texts of many random pieces: the special-case matcher's context across pieces
    joined = [" ".join(rng.choice(rand) for _ in range(rng.randint(5, 25))) for _ in range(60)]
    fixture = {
        "source": f"fastai tokenize1 / spacy {spacy.about.__version__} blank('en')",
        "edge": {"texts": EDGE_CASES, "tokens": [list(tokenize1(t, tok)) for t in EDGE_CASES]},
        "spacy_random": {"texts": rand, "tokens": [[t.text for t in nlp(x)] for x in rand]},
        "spacy_random_long": {"texts": joined, "tokens": [[t.text for t in nlp(x)] for x in joined]},
    }
    if args.imdb_sample:
        import pandas as pd
        texts = pd.read_csv(args.imdb_sample)["text"].tolist()
        fixture["imdb_sample_sha1"] = [hashlib.sha1("\x00".join(tokenize1(t, tok)).encode()).hexdigest()
                                       for t in texts]
    tmp = args.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(fixture, f, ensure_ascii=True, indent=0)
    os.replace(tmp, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
