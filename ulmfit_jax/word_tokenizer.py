"""Word tokenizers: a pure-Python port of spaCy's English tokenizer (the default), and spaCy itself (optional).

fastai's base tokenizer is ``spacy.blank('en')`` with fastai's special tokens added as special cases. To map text
to the same tokens as a fastai vocabulary (WT103's) without depending on spaCy, ``WordTokenizer`` runs spaCy's
algorithm (``spacy/tokenizer.pyx``: whitespace splitting, special cases, prefix/suffix/infix splitting, URL
matching, and the special-case matcher pass) over spaCy's English tables, exported once to
``spacy_en_tokenizer.json`` by ``experiments/bench/export_spacy_tables.py``.

Speed comes from caching: the tokens of each space-delimited piece are computed once and reused, so a document
costs a ``str.split`` plus dictionary look-ups; the cache is bounded (cleared when full). Syntax-tree analysis of
spaCy's regexes proves which shortcuts are exact (a lowercase ASCII word is never split, and no affix starts
inside one); the parity tests compare with spaCy on IMDB, edge cases and random strings.
"""

from __future__ import annotations

import functools
import json
import re
import string
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import chain
from pathlib import Path
from typing import Any

from ulmfit_jax.text_rules import SPECIAL_TOKENS, replace_space

TABLES_PATH = Path(__file__).with_name("spacy_en_tokenizer.json")
_WS_RUNS = re.compile(r"(\s+)")
_LOWER = string.ascii_lowercase


def _leading_lower(s: str) -> int:
    """Length of the run of lowercase ASCII letters that ``s`` starts with."""
    return len(s) - len(s.lstrip(_LOWER))


@functools.lru_cache(maxsize=4)
def load_tables(path: str = str(TABLES_PATH)) -> dict[str, Any]:
    """spaCy's English tokenizer tables (affix regexes, URL regex, special cases) as exported to JSON."""
    with open(path, encoding="utf-8") as f:
        tables = json.load(f)
    for key in ("prefix", "suffix", "infix", "url_match", "rules"):
        if key not in tables:
            raise ValueError(f"tokenizer tables {path} lack the {key!r} entry: re-export them")
    return tables


def _compile(entry: dict | None) -> re.Pattern | None:
    return None if entry is None else re.compile(entry["pattern"], entry["flags"])


_CATEGORIES = {f"CATEGORY_{name}": re.compile(rx) for name, rx in (
    ("DIGIT", r"\d"), ("NOT_DIGIT", r"\D"), ("SPACE", r"\s"), ("NOT_SPACE", r"\S"), ("WORD", r"\w"),
    ("NOT_WORD", r"\W"))}


def _in_class(items: list, c: str) -> bool:
    negate, hit = False, False
    for op, av in items:
        name = str(op)
        if name == "NEGATE":
            negate = True
        elif name == "LITERAL":
            hit = hit or c == chr(av)
        elif name == "RANGE":
            hit = hit or av[0] <= ord(c) <= av[1]
        elif name == "CATEGORY" and str(av) in _CATEGORIES:
            hit = hit or _CATEGORIES[str(av)].match(c) is not None
        else:
            return True  # unknown item: assume it may match
    return hit != negate


def can_match(items: list, alphabet: str) -> bool:
    """Whether a parsed regex could match some string (the empty one included) made of ``alphabet``'s characters.

    Conservative: True whenever unsure (negative look-arounds, back-references, case-insensitive parts). Used to
    prove that a plain lowercase word can never be split, so such chunks skip the affix regexes.
    """
    for op, av in items:
        name = str(op)
        if name == "LITERAL":
            ok = chr(av) in alphabet
        elif name == "NOT_LITERAL":
            ok = any(c != chr(av) for c in alphabet)
        elif name == "IN":
            ok = any(_in_class(av, c) for c in alphabet)
        elif name == "BRANCH":
            ok = any(can_match(b, alphabet) for b in av[1])
        elif name == "SUBPATTERN":
            ok = bool(av[1] & re.IGNORECASE) or can_match(av[3], alphabet)
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            ok = av[0] == 0 or can_match(av[2], alphabet)
        elif name in ("ASSERT", "ATOMIC_GROUP"):
            ok = can_match(av[1] if name == "ASSERT" else av, alphabet)
        else:  # ANY, AT, ASSERT_NOT, GROUPREF...: may match
            ok = True
        if not ok:
            return False
    return True


_ZERO_WIDTH = ("AT", "ASSERT", "ASSERT_NOT")
_REPEATS = ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT")


def _nullable(items: list) -> bool:
    """Whether a parsed regex may match the empty string (True when unsure)."""
    for op, av in items:
        name = str(op)
        if name in _ZERO_WIDTH:
            continue
        if name in ("LITERAL", "NOT_LITERAL", "IN", "ANY"):
            return False
        if name == "SUBPATTERN":
            if not _nullable(av[3]):
                return False
        elif name == "BRANCH":
            if not any(_nullable(b) for b in av[1]):
                return False
        elif name in _REPEATS:
            if av[0] > 0 and not _nullable(av[2]):
                return False
        # anything else: assume it may match empty
    return True


def may_start_in(items: list, alphabet: str) -> bool:
    """Whether a match of a parsed regex could start, inside a run of ``alphabet`` characters, at a position whose
    character and the one before it are both in the run (True when unsure)."""
    for op, av in items:
        name = str(op)
        if name == "ASSERT" and av[0] == -1:  # a look-behind must match characters of the run
            if not can_match(av[1], alphabet):
                return False
            continue
        if name in _ZERO_WIDTH:
            continue
        if name in ("LITERAL", "NOT_LITERAL", "IN", "ANY"):
            return can_match([(op, av)], alphabet)
        if name == "SUBPATTERN":
            inner = av[3]
        elif name == "BRANCH":
            if any(may_start_in(b, alphabet) for b in av[1]):
                return True
            if not any(_nullable(b) for b in av[1]):
                return False
            continue
        elif name in _REPEATS:
            inner = av[2]
            if may_start_in(inner, alphabet):
                return True
            if av[0] > 0 and not _nullable(inner):
                return False
            continue
        else:
            return True
        if may_start_in(inner, alphabet):
            return True
        if not _nullable(inner):
            return False
    return True


def _parse(rx: re.Pattern) -> list:
    try:
        from re import _parser as sre_parse  # Python >= 3.11
    except ImportError:  # pragma: no cover
        import sre_parse  # type: ignore[no-redef]
    return list(sre_parse.parse(rx.pattern, rx.flags))


def _regex_can_match(rx: re.Pattern | None, alphabet: str) -> bool:
    if rx is None:
        return False
    if rx.flags & re.IGNORECASE:
        return True
    return can_match(_parse(rx), alphabet)


def _affix_cannot_start_in_words(rx: re.Pattern | None) -> bool:
    """Whether no match of an affix regex can start inside a leading run of lowercase letters (first position
    included)."""
    if rx is None or rx.flags & re.IGNORECASE:
        return False
    items = _parse(rx)
    alts = items[0][1][1] if len(items) == 1 and str(items[0][0]) == "BRANCH" else [items]
    lower = string.ascii_lowercase
    # position 0 has no character before it, so a positive look-behind fails there; elsewhere in the run the
    # character before is a lowercase letter: may_start_in covers both when the look-behind rejects letters
    return not any(may_start_in(alt, lower) for alt in alts)


class WordTokenizer:
    """spaCy's English tokenization in pure Python: ``tok(texts)`` yields one token list per text.

    ``special_toks`` are kept whole (fastai adds its ``xx*`` tokens the same way); ``post_rules`` (fastai's
    ``replace_space``) are applied to each token once, inside the cache. ``max_cache`` bounds memory.
    """

    def __init__(self, lang: str = "en", special_toks: Sequence[str] | None = None,
                 post_rules: Sequence[Callable[[str], str]] = (), max_cache: int = 500_000,
                 tables_path: str | None = None):
        if lang != "en":
            raise ValueError(f"WordTokenizer only has English tables (lang='en'), got lang={lang!r}; "
                             "use SpacyTokenizer(lang=...) with spaCy installed for other languages")
        tables = load_tables(str(tables_path or TABLES_PATH))
        self.special_toks = tuple(SPECIAL_TOKENS if special_toks is None else special_toks)
        self.post_rules = tuple(post_rules)
        self.max_cache = int(max_cache)
        self._prefix = _compile(tables["prefix"])
        self._suffix = _compile(tables["suffix"])
        self._infix = _compile(tables["infix"])
        self._token_match = _compile(tables.get("token_match"))
        self._url_match = _compile(tables["url_match"])
        self._specials: dict[str, tuple[str, ...]] = {s: tuple(t) for s, t in tables["rules"].items()}
        for w in self.special_toks:
            self._specials[w] = (w,)
        # Plain lowercase ASCII words are by far the most common chunks: when no affix regex can match inside such
        # a word (proved on the regexes' syntax trees), they are their own token and skip spaCy's algorithm.
        self._plain_words_whole = not any(_regex_can_match(rx, string.ascii_lowercase)
                                          for rx in (self._prefix, self._suffix, self._infix))
        # a suffix cannot start inside a word's leading lowercase letters: suffix search may start after them;
        # likewise no prefix starts with a lowercase letter, so words starting with one skip the prefix search
        self._suffix_skips_words = _affix_cannot_start_in_words(self._suffix)
        self._prefix_skips_words = _affix_cannot_start_in_words(self._prefix)
        self._patterns = self._matcher_patterns(bool(tables.get("faster_heuristics", True)))
        self._pattern_starts = self._index(self._patterns)
        self._max_pattern = max(map(len, self._patterns), default=1)
        # post rules that leave tokens without spaces alone (replace_space) cannot change what the matcher sees
        self._post_keeps_words = all(r is replace_space for r in self.post_rules)
        # a match needs one of these tokens (any but the first of its pattern): a cheap test before matching
        self._pattern_tokens = frozenset(t for p in self._patterns for t in (p[1:] or p))
        # patterns whose rewrite differs from the matched tokens: only a chunk holding one of these can make the
        # matcher pass change a text (the others only block overlapping matches)
        self._changing_starts = self._index([p for p, s in self._patterns.items() if self._specials[s] != p])
        self._reset_cache()

    def _reset_cache(self) -> None:
        self._cache = _ChunkCache(self._learn)
        self._context: set[str] = set()  # cached keys whose tokens depend on their neighbours
        self._active: set[str] = set()  # pieces where the special-case matcher rewrites tokens

    # ---- spaCy's algorithm -------------------------------------------------------------------------------
    def _find_prefix(self, s: str) -> int:
        m = self._prefix.search(s) if self._prefix is not None else None
        return 0 if m is None else m.end() - m.start()

    def _find_suffix(self, s: str) -> int:
        m = self._suffix.search(s) if self._suffix is not None else None
        return 0 if m is None else m.end() - m.start()

    def _is_plain(self, s: str) -> bool:
        """A lowercase ASCII word, proved unsplittable by the affix regexes (see ``__init__``)."""
        return self._plain_words_whole and s.isascii() and s.isalpha() and s.islower()

    def _split_affixes(self, span: str, specials: dict) -> list[str]:
        """Tokens of one whitespace-free span (spaCy's ``_split_affixes`` + ``_attach_tokens``)."""
        prefixes: list[str] = []
        suffixes: list[str] = []
        token_match = self._token_match.match if self._token_match is not None else None
        prefix_search = self._prefix.search if self._prefix is not None else None
        suffix_search = self._suffix.search if self._suffix is not None else None
        plain_ok = self._plain_words_whole
        skip_pre = self._prefix_skips_words
        last = 0
        while span and len(span) != last:
            if token_match is not None and token_match(span):
                break
            if span in specials or (plain_ok and span.isascii() and span.isalpha() and span.islower()):
                break  # a plain word has no affix (proved in __init__): nothing more to strip
            last = len(span)
            if prefix_search is None or (skip_pre and span[0] in _LOWER):
                pre_len = 0
            else:
                m = prefix_search(span)
                pre_len = 0 if m is None else m.end() - m.start()
            if pre_len:
                prefix, minus_pre = span[:pre_len], span[pre_len:]
                if minus_pre and minus_pre in specials:
                    span = minus_pre
                    prefixes.append(prefix)
                    break
            rest = span[pre_len:] if pre_len else span
            if suffix_search is None or (plain_ok and rest.isascii() and rest.isalpha() and rest.islower()):
                suf_len = 0
            else:
                m = suffix_search(rest, _leading_lower(rest) if self._suffix_skips_words else 0)
                suf_len = 0 if m is None else m.end() - m.start()
            if suf_len:
                suffix, minus_suf = span[-suf_len:], span[:-suf_len]
                if minus_suf and minus_suf in specials:
                    span = minus_suf
                    suffixes.append(suffix)
                    break
            if pre_len and suf_len and pre_len + suf_len <= len(span):
                span = span[pre_len:-suf_len]
                prefixes.append(prefix)
                suffixes.append(suffix)
            elif pre_len:
                span = minus_pre
                prefixes.append(prefix)
            elif suf_len:
                span = minus_suf
                suffixes.append(suffix)
        out = prefixes
        if span:
            if span in specials:
                out.extend(specials[span])
            elif plain_ok and span.isascii() and span.isalpha() and span.islower():
                out.append(span)
            elif ((token_match is not None and token_match(span))
                  or (self._url_match is not None and self._url_match.match(span))):
                out.append(span)
            else:
                out.extend(self._split_infixes(span))
        if suffixes:
            out.extend(reversed(suffixes))
        return out

    def _split_infixes(self, string: str) -> list[str]:
        if self._infix is None:
            return [string]
        out, start = [], 0
        for m in self._infix.finditer(string):
            i0, i1 = m.start(), m.end()
            if i0 == 0:  # an infix at the very start is not a split point
                continue
            if i0 != start:
                out.append(string[start:i0])
            if i0 != i1:
                out.append(string[i0:i1])
            start = i1
        if start < len(string):
            out.append(string[start:])
        return out or [string]

    def _first_pass(self, text: str, specials: dict) -> tuple[list[str], list[bool]]:
        """Tokens and trailing-space flags of a text before the matcher pass (spaCy's ``_tokenize_affixes``)."""
        toks: list[str] = []
        spaces: list[bool] = []
        parts = _WS_RUNS.split(text)
        for j, part in enumerate(parts):
            if not part:
                continue
            if j % 2:  # a whitespace run: one ' ' after a token is that token's trailing space
                if j > 1 or parts[0]:
                    if part[0] == " ":
                        spaces[-1] = True
                        part = part[1:]
                    if not part:
                        continue
                new = [part] if part in specials else self._split_affixes(part, specials)
            else:
                new = list(specials[part]) if part in specials else self._split_affixes(part, specials)
            toks.extend(new)
            spaces.extend([False] * len(new))
        return toks, spaces

    def _matcher_patterns(self, faster_heuristics: bool) -> dict[tuple[str, ...], str]:
        """Token sequences the special-case matcher looks for (spaCy adds those with affixes or spaces)."""
        patterns = {}
        for s in sorted(self._specials):
            if (not faster_heuristics or self._find_prefix(s) or self._find_suffix(s) or " " in s
                    or (self._infix is not None and self._infix.search(s))):
                toks = tuple(self._first_pass(s, {})[0])
                if len(toks) == 1 and self._specials[s] == toks:
                    continue  # a one-token match that rewrites nothing can neither change nor block anything
                patterns[toks] = s
        return patterns

    @staticmethod
    def _index(patterns: Iterable[tuple[str, ...]]) -> dict[str, list[tuple[str, ...]]]:
        starts: dict[str, list[tuple[str, ...]]] = {}
        for pat in patterns:
            starts.setdefault(pat[0], []).append(pat)
        return starts

    def _find_matches(self, toks: list[str], starts: dict | None = None) -> list[tuple[int, int]]:
        """Every (start, end) token run equal to a matcher pattern (spaCy's PhraseMatcher over ORTH)."""
        starts = self._pattern_starts if starts is None else starts
        matches: list[tuple[int, int]] = []
        if starts.keys().isdisjoint(toks):
            return matches
        for i, t in enumerate(toks):
            for pat in starts.get(t, ()):
                if tuple(toks[i:i + len(pat)]) == pat:
                    matches.append((i, i + len(pat)))
        return matches

    def _kept_matches(self, toks: list[str]) -> list[tuple[int, int]]:
        """spaCy's ``_filter_special_spans``: longest first, then leftmost; a match is kept if no match handled
        before it covered its first or last token (whether or not that one was kept). Sorted by start."""
        matches = self._find_matches(toks)
        matches.sort(key=lambda m: (m[1] - m[0], -m[0]))
        seen: set[int] = set()
        kept = []
        for st, en in reversed(matches):
            if st not in seen and en - 1 not in seen:
                kept.append((st, en))
            seen.update(range(st, en))
        return sorted(kept)

    def _apply_matcher(self, toks: list[str], spaces: list[bool]) -> list[str]:
        """spaCy's ``_apply_special_cases``: rewrite kept matches whose text (spaces included) is a special case."""
        out: list[str] = []
        pos = 0
        for st, en in self._kept_matches(toks):
            text = "".join(t + (" " if sp else "") for t, sp in zip(toks[st:en - 1], spaces[st:en - 1]))
            text += toks[en - 1]
            out.extend(toks[pos:st])
            out.extend(self._specials.get(text, toks[st:en]))
            pos = en
        out.extend(toks[pos:])
        return out

    def _fix_active(self, parts: list[str], got: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
        """Apply the matcher pass to the pieces where it rewrites tokens, each seen with enough neighbours.

        A match's fate depends only on the matches overlapping it, and matches are at most ``max_pattern``
        tokens long, so ``max_pattern - 1`` tokens of context on each side give spaCy's whole-text result.
        Only matches inside a piece can be rewritten (a match across pieces has a space in its text).
        """
        ctx = self._max_pattern - 1
        out = list(got)
        present = self._active.intersection(parts)
        if len(present) > 2:
            where = [j for j, p in enumerate(parts) if p in present]
        else:  # list.index scans in C: faster than a Python loop over a long text
            where = []
            for part in present:
                j = parts.index(part)
                while True:
                    where.append(j)
                    try:
                        j = parts.index(part, j + 1)
                    except ValueError:
                        break
        for j in where:
            left: list[str] = []
            k = j - 1
            while len(left) < ctx and k >= 0:
                left[:0] = got[k]
                k -= 1
            left = left[len(left) - ctx:] if ctx else []
            right: list[str] = []
            k = j + 1
            while len(right) < ctx and k < len(got):
                right.extend(got[k])
                k += 1
            window = left + list(got[j]) + right[:ctx]
            a, b = len(left), len(left) + len(got[j])
            new: list[str] = []
            pos = a
            for st, en in self._kept_matches(window):
                if st >= a and en <= b:
                    rep = self._specials.get("".join(window[st:en]))
                    if rep is not None:
                        new.extend(window[pos:st])
                        new.extend(self._post(rep))
                        pos = en
            new.extend(window[pos:b])
            out[j] = tuple(new)
        return out

    def _post(self, toks: Iterable[str]) -> tuple[str, ...]:
        for rule in self.post_rules:
            toks = map(rule, toks)
        return tuple(toks)

    # ---- fast path ---------------------------------------------------------------------------------------
    # A text is split on ' ' into pieces; each distinct piece's tokens are computed once (``_learn``) and cached.
    # This is exact for pieces tokenized the same wherever they occur: those neither starting nor ending with
    # whitespace. Texts with other pieces (double spaces, ' ' next to a newline) are split on whitespace runs
    # instead, with each run cached as the token it makes. Pieces where spaCy's special-case matcher rewrites
    # tokens (rare: emoticons glued to words) are cached before that pass and fixed in context (_fix_active).
    def _learn(self, part: str) -> tuple[str, ...]:
        """Tokens of a piece or whitespace run, computed by spaCy's algorithm and added to the cache."""
        specials = self._specials
        if (self._plain_words_whole and part.isascii() and part.isalpha() and part.islower()
                and part not in specials):
            toks = self._post((part,))
        elif part and part.isprintable() and " " not in part:  # no whitespace inside: one chunk
            first = list(specials[part]) if part in specials else self._split_affixes(part, specials)
            if (len(first) > 1 and not self._pattern_tokens.isdisjoint(first)
                    and self._find_matches(first, self._changing_starts)):
                self._active.add(part)  # the matcher rewrites tokens here: see _fix_active
            toks = self._post(first)
        elif not part or part.isspace():  # a run between chunks: a leading ' ' is the previous token's space
            self._context.add(part)
            span = part[1:] if part[:1] == " " else part
            toks = self._post(self._first_pass(span, specials)[0]) if span else ()
        elif part[0].isspace() or part[-1].isspace():  # tokens depend on the neighbours: never used cached
            self._context.add(part)
            toks = ()
        else:  # whitespace (other than ' ') inside, or unprintable characters
            first, _ = self._first_pass(part, specials)
            if len(first) > 1 and self._find_matches(first, self._changing_starts):
                self._active.add(part)
            toks = self._post(first)
        self._cache[part] = toks
        return toks

    def _exact(self, text: str) -> list[str]:
        """spaCy's algorithm on a whole text, uncached."""
        return list(self._post(self._apply_matcher(*self._first_pass(text, self._specials))))

    def tokenize(self, text: str) -> list[str]:
        """Tokens of one text (post rules applied)."""
        text = str(text)
        if not text:
            return []
        if len(self._cache) >= self.max_cache:
            self._reset_cache()
        parts = text.split(" ")
        got = list(map(self._cache.__getitem__, parts))  # misses go through _learn (__missing__)
        if self._context and not self._context.isdisjoint(parts):
            if text[0].isspace():  # spaCy keeps a leading whitespace run whole
                return self._exact(text)
            parts = _WS_RUNS.split(text)
            got = list(map(self._cache.__getitem__, parts))
        if self._active and not self._active.isdisjoint(parts):
            if not self._post_keeps_words:
                return self._exact(text)
            got = self._fix_active(parts, got)
        return list(chain.from_iterable(got))

    def __call__(self, items: Iterable[str]) -> Iterator[list[str]]:
        for t in items:
            yield self.tokenize(t)

    def __getstate__(self) -> dict:
        # the cache is rebuilt in each worker rather than shipped to it
        return {k: v for k, v in self.__dict__.items() if k not in ("_cache", "_context", "_active")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._reset_cache()


class _ChunkCache(dict):
    """chunk -> tokens; a miss computes the tokens (so look-ups can run as ``map(cache.__getitem__, ...)``)."""

    def __init__(self, learn: Callable[[str], tuple[str, ...]]):
        super().__init__()
        self._learn = learn

    def __missing__(self, key: str) -> tuple[str, ...]:
        return self._learn(key)


class SpacyTokenizer:
    """fastai's base tokenizer, ``spacy.blank(lang)`` with the special tokens as special cases (needs spaCy)."""

    def __init__(self, lang: str = "en", special_toks: Sequence[str] | None = None,
                 post_rules: Sequence[Callable[[str], str]] = (), buf_sz: int = 5000):
        try:
            import spacy
            from spacy.symbols import ORTH
        except ImportError as e:
            raise ImportError("SpacyTokenizer needs spaCy: pip install spacy (or use WordTokenizer, "
                              "its pure-Python port)") from e
        self.lang, self.buf_sz = lang, buf_sz
        self.special_toks = tuple(SPECIAL_TOKENS if special_toks is None else special_toks)
        self.post_rules = tuple(post_rules)
        self._nlp = spacy.blank(lang)
        for w in self.special_toks:
            self._nlp.tokenizer.add_special_case(w, [{ORTH: w}])

    def __call__(self, items: Iterable[str]) -> Iterator[list[str]]:
        for doc in self._nlp.pipe(map(str, items), batch_size=self.buf_sz):
            toks = [t.text for t in doc]
            for rule in self.post_rules:
                toks = [rule(t) for t in toks]
            yield toks

    def tokenize(self, text: str) -> list[str]:
        return next(iter(self([text])))

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_nlp"}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["lang"], state["special_toks"], state["post_rules"], state["buf_sz"])
