"""Text files of a corpus, read from a folder or straight from a ``.tar``/``.tar.gz`` archive (no unpacking).

Files are named by their path relative to the corpus root (``train/pos/0_9.txt``), so a folder and its archive
give the same names; an archive holding a single top-level folder (``aclImdb/``) has that folder stripped.
Undecodable bytes are replaced (U+FFFD), counted and reported in one warning.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import tarfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath

# Metadata files of the original aclImdb layout (fastai's copy of IMDB has none): not reviews, so not text.
SKIP_FILES: tuple[str, ...] = ("urls_*.txt", "imdbEr.txt")
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


def is_archive(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a tar archive (read in place) rather than a folder."""
    name = str(path).lower()
    return os.path.isfile(path) and name.endswith(ARCHIVE_SUFFIXES)


def _wanted(rel: str, extensions: Sequence[str], folders: Sequence[str] | None, exclude: Sequence[str]) -> bool:
    parts = PurePosixPath(rel).parts
    if not rel.lower().endswith(tuple(extensions)):
        return False
    if folders is not None and (len(parts) < 2 or parts[0] not in folders):
        return False
    return not any(fnmatch.fnmatch(parts[-1], pat) or any(fnmatch.fnmatch(p, pat) for p in parts[:-1])
                   for pat in exclude)


def _strip_root(names: Sequence[str]) -> list[str]:
    """Names relative to the first file's top-level folder (an archive of one folder, as ``aclImdb/``)."""
    if not names or "/" not in names[0]:
        return list(names)
    root = names[0].split("/", 1)[0] + "/"
    return [n[len(root):] if n.startswith(root) else n for n in names]


def list_text_files(path: str | os.PathLike, extensions: Sequence[str] = (".txt",),
                    folders: Sequence[str] | None = None, exclude: Sequence[str] = SKIP_FILES) -> list[str]:
    """Sorted relative names of the text files under a folder or in an archive.

    ``folders`` keeps only files under those top-level folders (fastai's ``get_text_files(folders=...)``);
    ``exclude`` drops files or folders matching any of these glob patterns.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no folder or archive at {path}")
    if is_archive(path):
        with tarfile.open(path, "r:*") as tf:
            names = [m.name for m in tf.getmembers() if m.isfile()]
        rels = _strip_root(names)
    elif path.is_dir():
        rels = [Path(d, f).relative_to(path).as_posix() for d, _, files in os.walk(path) for f in files]
    else:
        raise ValueError(f"{path} is neither a folder nor a tar archive ({', '.join(ARCHIVE_SUFFIXES)})")
    return sorted(r for r in rels if _wanted(r, extensions, folders, exclude))


class DecodeReport:
    """Counts files whose bytes were not valid UTF-8 (replaced with U+FFFD)."""

    def __init__(self) -> None:
        self.bad: list[str] = []

    def decode(self, name: str, data: bytes, encoding: str = "utf-8") -> str:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            self.bad.append(name)
            return data.decode(encoding, errors="replace")

    def warn(self) -> None:
        if self.bad:
            warnings.warn(f"{len(self.bad)} file(s) had bytes that are not valid text; they were replaced by "
                          f"U+FFFD (first: {self.bad[0]})", stacklevel=3)


def iter_text_files(path: str | os.PathLike, extensions: Sequence[str] = (".txt",),
                    folders: Sequence[str] | None = None, exclude: Sequence[str] = SKIP_FILES,
                    encoding: str = "utf-8", report: DecodeReport | None = None) -> Iterator[tuple[str, str]]:
    """(relative name, text) of each text file, streamed one file at a time.

    A folder is read in sorted name order; an archive in one sequential pass, in its member order.
    """
    path = Path(path)
    report = DecodeReport() if report is None else report
    try:
        if not is_archive(path):
            for n in list_text_files(path, extensions, folders, exclude):
                yield n, report.decode(n, (path / n).read_bytes(), encoding)
            return
        with tarfile.open(path, "r|*") as tf:
            first = None
            for m in tf:
                if not m.isfile():
                    continue
                first = m.name if first is None else first
                rel = _strip_root([first, m.name])[1]
                if not _wanted(rel, extensions, folders, exclude):
                    continue
                f = tf.extractfile(m)
                yield rel, report.decode(rel, f.read() if f is not None else b"", encoding)
    finally:
        report.warn()


def files_key(path: str | os.PathLike, extensions: Sequence[str] = (".txt",),
              folders: Sequence[str] | None = None, exclude: Sequence[str] = SKIP_FILES) -> str:
    """Cheap fingerprint of a corpus's files (names, sizes, modification times): part of cache keys."""
    path = Path(path)
    h = hashlib.sha256(f"{list(extensions)}|{folders}|{list(exclude)}|".encode())
    if is_archive(path):
        st = path.stat()
        h.update(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|".encode())
    else:
        for n in list_text_files(path, extensions, folders, exclude):
            st = (path / n).stat()
            h.update(f"{n}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]
