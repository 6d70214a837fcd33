"""Pretrained language models shipped inside the package, in a format that cannot execute code.

``pretrained_lm(name)`` gives the files of an AWD-LSTM pretrained on review text and general English by
``experiments/pretrain_lm.py`` (provenance: ``experiments/results/pretrained_lm.md``): the weights as an ``.npz`` of
fastai state-dict names (fp16 or int8 rows; ``np.load(allow_pickle=False)``) and the vocabulary as a JSON list.
Both are checked against their SHA-256 when loaded. The object unpacks as ``(weights, vocab)`` so it can be given
straight to ``language_model_learner(..., pretrained_fnames=pretrained_lm())``.

Shipped: ``english-small`` (64/256/3, the fastest), ``english-medium`` (128/512/3) and ``english-large``
(256/640/3). ``pretrained_lm()`` with no name is :data:`DEFAULT_MODEL`, ``english-large``: the only one of the three
that makes the few-label protocol transfer (200 IMDB labels, mean of three draws: 83.3% against tf-idf's 77.2%;
medium 71.3, small 58.7; ``experiments/results/ulmfit_few_label.md``).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

MODELS_DIR = Path(__file__).parent / "pretrained_models"
_MANIFEST = "manifest.json"
DEFAULT_MODEL = "english-large"  # the shipped LM that transfers (module docstring); any name works explicitly


class ChecksumError(ValueError):
    """A pretrained file's SHA-256 is not the one recorded for it."""


@dataclass(frozen=True)
class PretrainedLM:
    """A shipped pretrained LM: file paths, the sizes its weights need and the files' SHA-256 sums."""

    name: str
    weights: Path
    vocab: Path
    config: dict = field(default_factory=dict)
    sha256: dict = field(default_factory=dict)
    description: str = ""

    def __iter__(self) -> Iterator[Path]:  # unpacks as (weights, vocab), fastai's pretrained_fnames
        return iter((self.weights, self.vocab))

    def __len__(self) -> int:
        return 2

    def __getitem__(self, i: int) -> Path:
        return (self.weights, self.vocab)[i]

    def verify(self) -> PretrainedLM:
        """Check both files against their recorded SHA-256 (raises :class:`ChecksumError` naming both sums)."""
        check_sha256(self.weights, self.sha256.get("weights"))
        check_sha256(self.vocab, self.sha256.get("vocab"))
        return self


def sha256_of(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_sha256(path: str | os.PathLike, expected: str | None) -> None:
    if expected is None:
        return
    got = sha256_of(path)
    if got != expected:
        raise ChecksumError(f"{path}: SHA-256 {got} does not match the recorded {expected}: the file is corrupt or "
                            "was replaced; reinstall the package or re-download the weights")


def _manifest(models_dir: Path = MODELS_DIR) -> dict:
    path = models_dir / _MANIFEST
    if not path.is_file():
        return {}
    return json.loads(path.read_text())


def available_models(models_dir: Path = MODELS_DIR) -> list[str]:
    """Names of the pretrained LMs shipped with this installation."""
    return sorted(_manifest(models_dir))


def pretrained_lm(name: str = DEFAULT_MODEL, models_dir: str | os.PathLike | None = None) -> PretrainedLM:
    """The shipped pretrained LM ``name`` (default: the one that transfers, ``english-large``): ``.weights``,
    ``.vocab`` (paths), ``.config``, ``.sha256``."""
    models_dir = MODELS_DIR if models_dir is None else Path(models_dir)
    man = _manifest(models_dir)
    if name not in man:
        have = ", ".join(repr(n) for n in sorted(man)) or "none"
        raise ValueError(f"no pretrained language model named {name!r}; available: {have}")
    e = man[name]
    lm = PretrainedLM(name=name, weights=models_dir / e["weights"], vocab=models_dir / e["vocab"],
                      config=dict(e["config"]), sha256=dict(e["sha256"]), description=e.get("description", ""))
    for p in lm:
        if not p.is_file():
            raise FileNotFoundError(f"pretrained model {name!r}: {p} is missing from the installation")
    return lm


def shipped_sha256(path: str | os.PathLike, models_dir: Path = MODELS_DIR) -> str | None:
    """The recorded SHA-256 of ``path`` when it is one of the shipped files, else None."""
    try:
        path = Path(path).resolve()
        if path.parent != models_dir.resolve():
            return None
    except OSError:
        return None
    for e in _manifest(models_dir).values():
        for kind in ("weights", "vocab"):
            if e[kind] == path.name:
                return e["sha256"][kind]
    return None


# ---- the code-free file format ---------------------------------------------------------------------------------

def is_npz_weights(path: str | os.PathLike) -> bool:
    return Path(path).suffix == ".npz"


def is_json_vocab(path: str | os.PathLike) -> bool:
    return Path(path).suffix == ".json"


def load_npz_state_dict(path: str | os.PathLike, expected_sha256: str | None = None) -> OrderedDict:
    """fastai state-dict names -> float32 arrays, from an ``.npz`` read with ``allow_pickle=False`` (float16, or
    int8 rows with their float32 scales)."""
    check_sha256(path, expected_sha256)
    try:
        with np.load(path, allow_pickle=False) as z:
            order = [str(k) for k in z["__order__"]] if "__order__" in z.files else list(z.files)
            return OrderedDict((k, _dequantize(z, k)) for k in order
                               if k != "__order__" and not k.startswith(_SCALE))
    except (ValueError, OSError, KeyError) as e:
        raise ValueError(f"{path}: not a readable weights .npz ({e})") from e


def load_json_vocab(path: str | os.PathLike, expected_sha256: str | None = None) -> list[str]:
    check_sha256(path, expected_sha256)
    try:
        vocab = json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a JSON vocabulary ({e})") from e
    if isinstance(vocab, Mapping) and "itos" in vocab:
        vocab = vocab["itos"]
    if not isinstance(vocab, list) or not all(isinstance(t, str) for t in vocab):
        raise ValueError(f"{path}: expected a JSON list of token strings")
    return vocab


def config_from_state_dict(wgts: Mapping[str, np.ndarray]) -> dict:
    """``emb_sz``, ``n_hid``, ``n_layers`` read off fastai AWD-LSTM weights (for ``config=None``)."""
    emb = wgts.get("0.encoder.weight", wgts.get("encoder.weight"))
    if emb is None:
        raise ValueError("no encoder embedding in the weights: not an AWD-LSTM language model")
    layers = sorted({int(k.split(".")[2]) for k in wgts if k.startswith("0.rnns.")})
    if not layers:
        raise ValueError("no LSTM layers ('0.rnns.N...') in the weights: not an AWD-LSTM language model")
    hh0 = wgts["0.rnns.0.weight_hh_l0_raw"] if "0.rnns.0.weight_hh_l0_raw" in wgts else \
        wgts["0.rnns.0.module.weight_hh_l0"]
    n_hid = hh0.shape[1] if len(layers) > 1 else int(emb.shape[1])
    return {"emb_sz": int(emb.shape[1]), "n_hid": int(n_hid), "n_layers": len(layers)}


_SCALE = "__scale__."  # prefix of an int8 matrix's per-row scales in the .npz
STORAGES = ("float16", "int8")


def _dequantize(z: Any, name: str) -> np.ndarray:
    arr = np.asarray(z[name], np.float32)
    if _SCALE + name in z.files:
        arr = arr * np.asarray(z[_SCALE + name], np.float32)[:, None]
    return arr


def _quantize_rows(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per output row (each embedding row, each LSTM gate unit): ``w ~ q * scale[:, None]``."""
    w = np.asarray(w, np.float32)
    amax = np.max(np.abs(w), axis=1)
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    return np.clip(np.rint(w / scale[:, None]), -127, 127).astype(np.int8), scale


def save_shipped_lm(model: Any, vocab: Sequence[str], weights_path: str | os.PathLike,
                    vocab_path: str | os.PathLike, config: Mapping[str, Any] | None = None,
                    storage: str = "float16") -> dict:
    """Write a language model as an ``.npz`` (fastai names; ``storage`` float16, or int8 matrices with per-row
    scales: half the bytes) + JSON vocabulary, atomically; their SHA-256."""
    from ulmfit_jax.weights import to_fastai_state_dict

    sd = to_fastai_state_dict(model)
    return save_state_dict_npz(sd, vocab, weights_path, vocab_path, config, storage=storage)


def _write_npz_deterministic(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """``np.savez_compressed``'s format with fixed zip timestamps, so the same weights give the same bytes (and
    SHA-256) on every run; ``np.load`` reads it as any .npz."""
    import io
    import zipfile

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buf.getvalue())


def save_state_dict_npz(sd: Mapping[str, np.ndarray], vocab: Sequence[str], weights_path: str | os.PathLike,
                        vocab_path: str | os.PathLike, config: Mapping[str, Any] | None = None,
                        storage: str = "float16") -> dict:
    if storage not in STORAGES:
        raise ValueError(f"storage must be one of {STORAGES}, got {storage!r}")
    weights_path, vocab_path = Path(weights_path), Path(vocab_path)
    # the tied decoder and fastai's second name for the embedding are copies: stored once, restored on load
    skip = {"0.encoder_dp.emb.weight", "1.decoder.weight"}
    kept = {k: np.asarray(v) for k, v in sd.items() if k not in skip and not k.endswith("num_batches_tracked")}
    arrays, scales = {}, {}
    for k, v in kept.items():
        if storage == "int8" and v.ndim == 2:
            arrays[k], scales[_SCALE + k] = _quantize_rows(v)
        else:
            arrays[k] = v.astype(np.float16)
    arrays = {"__order__": np.array(list(arrays), dtype=np.str_), **arrays, **scales}
    tmp = weights_path.with_name(weights_path.name + ".tmp.npz")
    _write_npz_deterministic(tmp, arrays)
    os.replace(tmp, weights_path)
    tmpv = vocab_path.with_name(vocab_path.name + ".tmp")
    tmpv.write_text(json.dumps(list(vocab), ensure_ascii=False), encoding="utf-8")
    os.replace(tmpv, vocab_path)
    return {"weights": sha256_of(weights_path), "vocab": sha256_of(vocab_path),
            "config": dict(config) if config is not None else None, "storage": storage}


def ship_model(name: str, weights: str | os.PathLike, vocab: str | os.PathLike, config: Mapping[str, Any],
               description: str = "", models_dir: Path = MODELS_DIR) -> dict:
    """Copy a weights ``.npz`` + vocabulary ``.json`` into the package's models folder as ``name`` and record
    their SHA-256 in the manifest (each file replaced atomically); the manifest entry."""
    import shutil

    models_dir.mkdir(parents=True, exist_ok=True)
    entry = {"weights": f"{name}.npz", "vocab": f"{name}.vocab.json",
             "config": {k: int(config[k]) for k in ("emb_sz", "n_hid", "n_layers")}, "description": description}
    for src, dst in ((weights, entry["weights"]), (vocab, entry["vocab"])):
        tmp = models_dir / (dst + ".tmp")
        shutil.copyfile(src, tmp)
        os.replace(tmp, models_dir / dst)
    entry["sha256"] = {"weights": sha256_of(models_dir / entry["weights"]),
                       "vocab": sha256_of(models_dir / entry["vocab"])}
    man = _manifest(models_dir)
    man[name] = entry
    tmp = models_dir / (_MANIFEST + ".tmp")
    tmp.write_text(json.dumps(man, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, models_dir / _MANIFEST)
    return entry


def export_fastai_files(lm: PretrainedLM | Sequence[str | os.PathLike], weights_path: str | os.PathLike,
                        vocab_path: str | os.PathLike) -> tuple[Path, Path]:
    """Write shipped (or any) LM files in fastai's own format (``.pth`` state dict, ``itos`` ``.pkl``), so that
    fastai loads the very same weights through its ``pretrained_fnames``."""
    import pickle

    from ulmfit_jax.torch_pickle import save_state_dict
    from ulmfit_jax.weights import load_state_dict, load_vocab

    wgts, vocab = load_state_dict(lm[0]), load_vocab(lm[1])
    save_state_dict(wgts, weights_path)
    tmp = Path(str(vocab_path) + ".tmp")
    with open(tmp, "wb") as f:
        pickle.dump(list(vocab), f)
    os.replace(tmp, vocab_path)
    return Path(weights_path), Path(vocab_path)


__all__ = ["ChecksumError", "PretrainedLM", "available_models", "config_from_state_dict", "export_fastai_files",
           "load_json_vocab",
           "load_npz_state_dict", "pretrained_lm", "save_shipped_lm"]
