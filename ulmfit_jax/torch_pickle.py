"""Read and write PyTorch checkpoint files (``torch.save``) without torch and without executing pickled code.

Reading: a ``pickle.Unpickler`` whose ``find_class`` returns safe stand-ins for an allow-list of globals
(``collections.OrderedDict``, torch's tensor-rebuild functions and storage types, a few builtins) and refuses
every other global with :class:`UnsafePickleError`. ``find_class`` is the single door through which a pickle
reaches code (GLOBAL, STACK_GLOBAL, INST, OBJ and the copyreg extension opcodes all pass through it), so a
checkpoint can build dicts, lists, tuples, strings, numbers and NumPy arrays, and nothing else. Tensor strides
and offsets are bounds-checked against their storage before any view is taken.

Formats: the zip format (PyTorch >= 1.6: ``<root>/data.pkl`` + ``<root>/data/<key>`` storages) and the legacy
format (PyTorch 0.4-1.5, used by fastai v1's WT103 files: magic number, protocol, sys info, the object pickle,
the storage-key list, then raw storages). The pre-0.4 tar format is refused with a clear error.

Writing: :func:`save_state_dict` emits the zip format for a flat ``{name: ndarray}`` dict with a tiny hand-written
protocol-2 pickle, loadable by ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import tempfile
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": ml_dtypes.bfloat16, "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
    "UntypedStorage": np.uint8,
}
_TORCH_DTYPES = {
    "float32": np.float32, "float": np.float32, "float64": np.float64, "double": np.float64,
    "float16": np.float16, "half": np.float16, "bfloat16": ml_dtypes.bfloat16, "int64": np.int64,
    "long": np.int64, "int32": np.int32, "int": np.int32, "int16": np.int16, "int8": np.int8,
    "uint8": np.uint8, "bool": np.bool_,
}


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle asked for a global that is not on the allow-list: refused, nothing was executed."""


class CheckpointFormatError(ValueError):
    """A file is not a readable PyTorch checkpoint (or is malformed)."""


class _StorageType:
    """Stand-in for ``torch.FloatStorage`` & co.: only carries the element dtype."""

    def __init__(self, name: str):
        self.name, self.dtype = name, np.dtype(_STORAGE_DTYPES[name])


class _Storage:
    """A storage referenced by a persistent id; its bytes are attached once read."""

    def __init__(self, key: str, dtype: np.dtype, numel: int):
        self.key, self.dtype, self.numel = key, dtype, int(numel)
        self.array: np.ndarray | None = None


class _StorageView:
    def __init__(self, root: _Storage, offset: int, numel: int):
        self.root, self.offset, self.numel = root, int(offset), int(numel)


class _TensorRef:
    """A tensor waiting for its storage bytes (legacy files store them after the object pickle)."""

    def __init__(self, storage, offset, size, stride, dtype=None):
        self.storage, self.offset = storage, int(offset)
        self.size, self.stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
        self.dtype = dtype


class _ItemsList(list):
    """Stand-in for fastcore's ``L`` (fastai may pickle vocabularies as one): a plain list of its items."""

    def __setstate__(self, state):
        if not isinstance(state, dict) or not isinstance(state.get("items"), list):
            raise UnsafePickleError("fastcore.foundation.L pickle without an 'items' list")
        self[:] = state["items"]


def _rebuild_tensor(storage, storage_offset, size, stride, *_):
    return _TensorRef(storage, storage_offset, size, stride)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype, *_):
    return _TensorRef(storage, storage_offset, size, stride, dtype)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *_):
    return data


def _latin1_encode(text, encoding="latin1"):
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError(f"_codecs.encode called with {type(text).__name__}, {encoding!r}")
    return text.encode("latin1")


def _torch_size(*args):
    return tuple(*args)


_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch", "Size"): _torch_size,
    ("_codecs", "encode"): _latin1_encode,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "complex"): complex,
    ("builtins", "bytearray"): bytearray,
    ("fastcore.foundation", "L"): _ItemsList,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds plain data only; any other global raises :class:`UnsafePickleError`."""

    def __init__(self, file, source: str = "<pickle>", storage_reader=None):
        super().__init__(file, encoding="utf-8")
        self.source = source
        self.storages: dict[str, _Storage] = {}
        self._allow_storage = storage_reader is not None

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if module == "torch" and name in _TORCH_DTYPES:
            return np.dtype(_TORCH_DTYPES[name])
        raise UnsafePickleError(f"{self.source}: refusing to unpickle global '{module}.{name}' (not on the "
                                "allow-list of plain data and tensor types); the file may be malicious or not "
                                "a weights/vocabulary file")

    def persistent_load(self, pid):
        if not self._allow_storage:
            raise UnsafePickleError(f"{self.source}: unexpected persistent id in a plain pickle")
        if not isinstance(pid, tuple) or not pid or pid[0] not in ("storage", b"storage"):
            raise CheckpointFormatError(f"{self.source}: unknown persistent id {pid!r:.80}")
        if len(pid) < 5 or (len(pid) > 5 and pid[5] is not None and len(pid[5]) != 3):
            raise CheckpointFormatError(f"{self.source}: malformed storage id {pid!r:.80} (expected ('storage', "
                                        "type, key, location, numel[, view])): the file is damaged or not a "
                                        "torch checkpoint; download or save it again")
        storage_type, key, _location, numel = pid[1:5]
        view = pid[5] if len(pid) > 5 else None
        if not isinstance(storage_type, _StorageType):
            raise CheckpointFormatError(f"{self.source}: storage type {storage_type!r:.60} is not a torch storage")
        key = str(key)
        if key not in self.storages:
            self.storages[key] = _Storage(key, storage_type.dtype, numel)
        root = self.storages[key]
        if view is not None:
            _view_key, offset, view_numel = view
            return _StorageView(root, offset, view_numel)
        return root


def load_pickle(path: str | os.PathLike) -> Any:
    """Unpickle a plain-data file (e.g. fastai's ``itos_wt103.pkl`` vocabulary) without executing code."""
    path = Path(path)
    with open(path, "rb") as f:
        try:
            return RestrictedUnpickler(f, source=str(path)).load()
        except (UnsafePickleError, CheckpointFormatError):
            raise
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError) as e:
            raise CheckpointFormatError(f"{path}: truncated or not a pickle ({type(e).__name__}: {e}); download "
                                        "or write it again") from e


def _materialise(ref: _TensorRef, source: str) -> np.ndarray:
    storage = ref.storage
    base_offset = 0
    if isinstance(storage, _StorageView):
        base_offset, limit, storage = storage.offset, storage.numel, storage.root
    else:
        limit = storage.numel
    if storage.array is None:
        raise CheckpointFormatError(f"{source}: storage {storage.key} has no data")
    if len(ref.size) != len(ref.stride) or any(s < 0 for s in ref.size) or any(s < 0 for s in ref.stride):
        raise CheckpointFormatError(f"{source}: bad tensor geometry size={ref.size} stride={ref.stride}")
    flat = storage.array[base_offset:base_offset + limit]
    n = int(np.prod(ref.size)) if ref.size else 1
    last = ref.offset + sum((s - 1) * st for s, st in zip(ref.size, ref.stride)) if n > 0 else ref.offset - 1
    if ref.offset < 0 or last >= len(flat):
        raise CheckpointFormatError(f"{source}: tensor of size {ref.size} reads past its storage "
                                    f"({len(flat)} elements)")
    if n == 0:
        return np.zeros(ref.size, flat.dtype)
    item = flat.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(flat[ref.offset:], shape=ref.size,
                                           strides=tuple(st * item for st in ref.stride), writeable=False)
    out = np.array(view, copy=True)
    if ref.dtype is not None and out.dtype != ref.dtype:
        raise CheckpointFormatError(f"{source}: tensor dtype {ref.dtype} differs from its storage's {out.dtype}")
    return out


def _resolve(obj: Any, source: str) -> Any:
    if isinstance(obj, _TensorRef):
        return _materialise(obj, source)
    if isinstance(obj, OrderedDict):
        return OrderedDict((k, _resolve(v, source)) for k, v in obj.items())
    if isinstance(obj, dict):
        return {k: _resolve(v, source) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_resolve(v, source) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_resolve(v, source) for v in obj)
    return obj


def _read_zip(path: Path) -> Any:
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        pkl = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
        if not pkl:
            raise CheckpointFormatError(f"{path}: zip file without <root>/data.pkl: not a torch checkpoint")
        root = pkl[0].split("/")[0]
        byteorder = f"{root}/byteorder"
        if byteorder in names and zf.read(byteorder).decode().strip() not in ("little", ""):
            raise CheckpointFormatError(f"{path}: big-endian checkpoints are not supported")
        unpickler = RestrictedUnpickler(io.BytesIO(zf.read(pkl[0])), source=str(path), storage_reader=True)
        obj = unpickler.load()
        for key, st in unpickler.storages.items():
            name = f"{root}/data/{key}"
            if name not in names:
                raise CheckpointFormatError(f"{path}: storage {name} is missing")
            raw = zf.read(name)
            if len(raw) < st.numel * st.dtype.itemsize:
                raise CheckpointFormatError(f"{path}: storage {name} is truncated")
            st.array = np.frombuffer(raw, dtype=st.dtype, count=st.numel)
    return _resolve(obj, str(path))


def _read_legacy(path: Path) -> Any:
    with open(path, "rb") as f:
        def plain():
            return RestrictedUnpickler(f, source=str(path)).load()

        try:
            magic = plain()
        except (pickle.UnpicklingError, EOFError, ValueError) as e:
            if isinstance(e, UnsafePickleError):
                raise
            raise CheckpointFormatError(f"{path}: not a PyTorch checkpoint (zip or legacy format): {e}") from e
        if magic != LEGACY_MAGIC:
            raise CheckpointFormatError(f"{path}: not a PyTorch checkpoint (bad magic number)")
        if plain() != LEGACY_PROTOCOL:
            raise CheckpointFormatError(f"{path}: unsupported legacy protocol version")
        sys_info = plain()
        if isinstance(sys_info, dict) and not sys_info.get("little_endian", True):
            raise CheckpointFormatError(f"{path}: big-endian checkpoints are not supported")
        unpickler = RestrictedUnpickler(f, source=str(path), storage_reader=True)
        obj = unpickler.load()
        keys = plain()
        for key in keys:
            st = unpickler.storages.get(str(key))
            if st is None:
                raise CheckpointFormatError(f"{path}: storage {key} listed but never referenced")
            (numel,) = struct.unpack("<q", f.read(8))
            nbytes = numel * st.dtype.itemsize
            raw = f.read(nbytes)
            if len(raw) != nbytes:
                raise CheckpointFormatError(f"{path}: storage {key} is truncated")
            st.array = np.frombuffer(raw, dtype=st.dtype)
            st.numel = numel
    return _resolve(obj, str(path))


def load_checkpoint(path: str | os.PathLike) -> Any:
    """Load a ``torch.save`` file as plain Python data with NumPy arrays in place of tensors."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    if zipfile.is_zipfile(path):
        return _read_zip(path)
    import tarfile

    if tarfile.is_tarfile(path):
        raise CheckpointFormatError(f"{path}: PyTorch < 0.4 tar checkpoints are not supported")
    return _read_legacy(path)


# ---- writing -------------------------------------------------------------------------------------------------

def _p_unicode(s: str) -> bytes:
    b = s.encode("utf-8")
    return b"X" + struct.pack("<I", len(b)) + b


def _p_int(i: int) -> bytes:
    if 0 <= i < 256:
        return b"K" + struct.pack("<B", i)
    if -(2**31) <= i < 2**31:
        return b"J" + struct.pack("<i", i)
    raw = int(i).to_bytes((int(i).bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + struct.pack("<B", len(raw)) + raw


def _p_tuple(items: list[bytes]) -> bytes:
    return b"(" + b"".join(items) + b"t"


def _p_global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


_P_ORDERED_DICT = _p_global("collections", "OrderedDict") + b")R"
_DTYPE_STORAGE = {np.dtype(v): k for k, v in _STORAGE_DTYPES.items() if k != "UntypedStorage"}


def _state_dict_pickle(arrays: list[tuple[str, np.ndarray]]) -> bytes:
    out = [b"\x80\x02", _P_ORDERED_DICT, b"("]
    for i, (name, a) in enumerate(arrays):
        pid = _p_tuple([_p_unicode("storage"), _p_global("torch", _DTYPE_STORAGE[a.dtype]), _p_unicode(str(i)),
                        _p_unicode("cpu"), _p_int(a.size)]) + b"Q"
        strides = [int(np.prod(a.shape[j + 1:])) for j in range(a.ndim)]
        args = _p_tuple([pid, _p_int(0), _p_tuple([_p_int(s) for s in a.shape]),
                         _p_tuple([_p_int(s) for s in strides]), b"\x89", _P_ORDERED_DICT])
        out += [_p_unicode(name), _p_global("torch._utils", "_rebuild_tensor_v2"), args, b"R"]
    out += [b"u", b"."]
    return b"".join(out)


def save_state_dict(state: Mapping[str, np.ndarray], path: str | os.PathLike, root: str = "archive") -> Path:
    """Write ``{name: array}`` as a PyTorch zip checkpoint (``torch.load`` reads it, also with
    ``weights_only=True``). The file appears atomically (temporary file, then ``os.replace``)."""
    path = Path(path)
    arrays = []
    for name, a in state.items():
        a = np.ascontiguousarray(np.asarray(a))
        if a.dtype not in _DTYPE_STORAGE:
            raise ValueError(f"cannot save {name!r}: dtype {a.dtype} has no torch storage type")
        arrays.append((str(name), a))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as zf:
            zf.writestr(f"{root}/data.pkl", _state_dict_pickle(arrays))
            zf.writestr(f"{root}/byteorder", "little")
            for i, (_, a) in enumerate(arrays):
                zf.writestr(f"{root}/data/{i}", a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes())
            zf.writestr(f"{root}/version", "3\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
