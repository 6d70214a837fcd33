"""Dataset and pretrained-weight downloads: fastai's ``untar_data`` with checked registry and safe extraction.

``untar_data(URLs.ADULT_SAMPLE)`` downloads the archive into ``<cache>/archive``, checks its size and the md5
of its first MiB (fastai's ``path_stats`` check), extracts it safely and returns ``<cache>/data/<folder>``.

What the checksum covers: size + md5 of the first MiB catch a truncated, wrong or replaced file, but not bytes
damaged after the first MiB. Where the full file's SHA-256 is known (``RemoteArchive(..., sha256=...)``, or
``download_url(..., sha256=...)``) every byte is checked too, while streaming. fastai publishes no full-file
hashes for its archives, so the built-in entries carry none; pass your own entry to have one checked.
A second call returns the extracted folder without touching the network.

The cache root is the ``cache_dir`` argument, else ``$LESSON4_CACHE``, else ``~/.cache/lesson4_jax``.

Deliberate differences from fastai:
  * every registry entry carries a (size, md5-of-first-MiB) check and a mismatch is refused; fastai 2.8 checks
    only the URLs listed in ``fastai/data/download_checks.py`` and downloads ML_100k and the WT103 weights
    unchecked (fastai_facts.md section 0 item 6);
  * a download goes to a unique temporary file beside the target and is renamed into place only once it is
    complete and checked; any failure removes it, so the cache never holds a partial file;
  * archives are validated before anything is written: absolute names, ``..`` components, links pointing
    outside the target, members placed under a link, and device/fifo members are refused (tar and zip alike);
    extraction happens in a temporary folder beside the target, which is then renamed into place;
  * only a single top-level *folder* is unwrapped (fastai also "unwraps" a single file, renaming it).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import posixpath
import re
import shutil
import stat
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from tqdm.auto import tqdm

CACHE_ENV = "LESSON4_CACHE"
DATA_ENV = "LESSON4_DATA"  # a folder of already extracted datasets (checked before downloading)
DEFAULT_CACHE = Path("~/.cache/lesson4_jax")
CHECK_BYTES = 2**20  # fastai hashes only the first MiB of an archive
ARCHIVE_KINDS = ("tgz", "tar", "zip")
_MD5_RE = re.compile(r"[0-9a-f]{32}")
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_USER_AGENT = "lesson4-jax-download/1"

PathLike = str | os.PathLike


class DownloadError(RuntimeError):
    """A download failed (HTTP error, truncated body, size or checksum mismatch); nothing was left behind."""


class ArchiveError(RuntimeError):
    """An archive could not be read or extracted."""


class UnsafeArchiveError(ArchiveError):
    """An archive member would land outside the target folder, or is a device/fifo."""


@dataclass(frozen=True)
class RemoteArchive:
    """One downloadable archive: where it lives, how to check it, and the folder it extracts to."""

    name: str
    url: str
    size: int
    md5_first_mib: str
    kind: str
    folder: str
    sha256: str | None = None  # of the whole file, where known (checked on top of size and md5 of the first MiB)

    def __post_init__(self) -> None:
        if urllib.parse.urlparse(self.url).scheme not in ("http", "https"):
            raise ValueError(f"{self.name}: url {self.url!r} is not http(s)")
        if not isinstance(self.size, int) or self.size <= 0:
            raise ValueError(f"{self.name}: size must be a positive int of bytes, got {self.size!r}")
        if not _MD5_RE.fullmatch(self.md5_first_mib):
            raise ValueError(f"{self.name}: md5_first_mib must be 32 lowercase hex digits, "
                             f"got {self.md5_first_mib!r}")
        if self.sha256 is not None and not _SHA256_RE.fullmatch(self.sha256):
            raise ValueError(f"{self.name}: sha256 must be 64 lowercase hex digits, got {self.sha256!r}")
        if self.kind not in ARCHIVE_KINDS:
            raise ValueError(f"{self.name}: kind must be one of {ARCHIVE_KINDS}, got {self.kind!r}")
        if not self.folder or self.folder in (".", "..") or "/" in self.folder or "\\" in self.folder:
            raise ValueError(f"{self.name}: folder must be a plain folder name, got {self.folder!r}")

    @property
    def filename(self) -> str:
        """The archive's file name in the cache (the last URL path component)."""
        return url_filename(self.url)


# fastai's hosts (fastai_facts.md section 6.4; v2 `nbs/04_data.external`).
S3 = "https://s3.amazonaws.com/"
S3_SAMPLE = f"{S3}fast-ai-sample/"
S3_NLP = f"{S3}fast-ai-nlp/"
S3_MODEL = f"{S3}fast-ai-modelzoo/"
GROUPLENS = "https://files.grouplens.org/datasets/movielens/"

_ENTRIES = (
    RemoteArchive("ADULT_SAMPLE", f"{S3_SAMPLE}adult_sample.tgz", 968_212,
                  "64eb9d7e23732de0b138f7372d15492f", "tgz", "adult_sample"),
    RemoteArchive("IMDB_SAMPLE", f"{S3_SAMPLE}imdb_sample.tgz", 571_827,
                  "0842e61a9867caa2e6fbdb14fa703d61", "tgz", "imdb_sample"),
    RemoteArchive("ML_SAMPLE", f"{S3_SAMPLE}movie_lens_sample.tgz", 51_790,
                  "10961384dfe7c5181460390a460c1f77", "tgz", "movie_lens_sample"),
    RemoteArchive("IMDB", f"{S3_NLP}imdb.tgz", 144_440_600,
                  "90f9b1c4ff43a90d67553c9240dc0249", "tgz", "imdb"),
    RemoteArchive("WIKITEXT", f"{S3_NLP}wikitext-103.tgz", 190_200_704,
                  "2dd8cf8693b3d27e9c8f0a7df054b2c7", "tgz", "wikitext-103"),
    RemoteArchive("WIKITEXT_TINY", f"{S3_NLP}wikitext-2.tgz", 4_070_055,
                  "2a82d47a7b85c8b6a8e068dc4c1d37e7", "tgz", "wikitext-2"),
    # The WT103 checks come from fastai v1's `_checks`; fastai v2 downloads these unchecked.
    RemoteArchive("WT103_FWD", f"{S3_MODEL}wt103-fwd.tgz", 105_067_061,
                  "7d1114cd9684bf9d1ca3c9f6a54da6f9", "tgz", "wt103-fwd"),
    RemoteArchive("WT103_BWD", f"{S3_MODEL}wt103-bwd.tgz", 105_205_312,
                  "20b06f5830fd5a891d21044c28d3097f", "tgz", "wt103-bwd"),
    # The ML_100k check comes from fastai v2a's checks.txt; fastai 2.8 downloads it unchecked.
    RemoteArchive("ML_100k", f"{GROUPLENS}ml-100k.zip", 4_924_029,
                  "39f6af2d7ea4e117f8838e4a302fec70", "zip", "ml-100k"),
)

REGISTRY: Mapping[str, RemoteArchive] = MappingProxyType({e.name: e for e in _ENTRIES})


class URLs:
    """fastai-style URL constants: ``untar_data(URLs.ADULT_SAMPLE)``."""

    URL = S3_SAMPLE
    S3_NLP = S3_NLP
    S3_MODEL = S3_MODEL
    ADULT_SAMPLE = REGISTRY["ADULT_SAMPLE"].url
    IMDB_SAMPLE = REGISTRY["IMDB_SAMPLE"].url
    ML_SAMPLE = REGISTRY["ML_SAMPLE"].url
    IMDB = REGISTRY["IMDB"].url
    WIKITEXT = REGISTRY["WIKITEXT"].url
    WIKITEXT_TINY = REGISTRY["WIKITEXT_TINY"].url
    WT103_FWD = REGISTRY["WT103_FWD"].url
    WT103_BWD = REGISTRY["WT103_BWD"].url
    ML_100k = REGISTRY["ML_100k"].url


# ----------------------------------------------------------------------------------------------------------
# Lookup and cache layout


def get_entry(url_or_name: str | RemoteArchive) -> RemoteArchive:
    """The entry for a URL, registry name (``'ADULT_SAMPLE'``) or folder name; entries pass through."""
    if isinstance(url_or_name, RemoteArchive):
        return url_or_name
    for entry in _ENTRIES:
        if url_or_name in (entry.url, entry.name, entry.folder):
            return entry
    raise ValueError(
        f"unknown dataset {url_or_name!r}: use a URLs.* constant, one of {sorted(REGISTRY)}, or pass a "
        f"RemoteArchive(name, url, size, md5_first_mib, kind, folder) so that the download can be checked")


def cache_root(cache_dir: PathLike | None = None) -> Path:
    """The cache root: ``cache_dir``, else ``$LESSON4_CACHE``, else ``~/.cache/lesson4_jax``."""
    if cache_dir is None:
        cache_dir = os.environ.get(CACHE_ENV) or DEFAULT_CACHE
    return Path(cache_dir).expanduser().absolute()


def url_filename(url: str) -> str:
    """The last path component of a URL (the archive's file name)."""
    name = posixpath.basename(urllib.parse.urlparse(url).path)
    if not name or name in (".", ".."):
        raise ValueError(f"url {url!r} has no file name to save it under")
    return name


def archive_kind(filename: str) -> str:
    """``'tgz'``, ``'tar'`` or ``'zip'`` from an archive's file name."""
    low = filename.lower()
    if low.endswith((".tgz", ".tar.gz")):
        return "tgz"
    if low.endswith(".tar"):
        return "tar"
    if low.endswith(".zip"):
        return "zip"
    raise ArchiveError(f"{filename}: unknown archive type (expected .tgz, .tar.gz, .tar or .zip)")


# ----------------------------------------------------------------------------------------------------------
# Download


def path_stats(path: PathLike) -> tuple[int, str]:
    """(size in bytes, md5 of the first MiB) of a file: fastai's archive check."""
    with open(path, "rb") as f:
        head = f.read(CHECK_BYTES)
    return os.path.getsize(path), hashlib.md5(head).hexdigest()


def file_sha256(path: PathLike, chunk_size: int = 2**20) -> str:
    """SHA-256 of a whole file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            h.update(chunk)
    return h.hexdigest()


def _check_problem(url: str, stats: tuple, size: int | None, md5_first_mib: str | None,
                   sha256: str | None = None) -> str | None:
    """Why ``stats`` = (size, md5 of the first MiB[, sha256]) fails the expected values, or None when it passes
    (absent checks always pass)."""
    got_size, got_md5 = stats[:2]
    if sha256 is not None and stats[2] != sha256:
        return f"sha256 mismatch for {url}: expected {sha256}, got {stats[2]} (the file is damaged or replaced)"
    if size is not None and got_size != size:
        return f"size mismatch for {url}: expected {size} bytes, got {got_size}"
    if md5_first_mib is not None and got_md5 != md5_first_mib:
        return f"checksum mismatch for {url}: expected md5(first MiB) {md5_first_mib}, got {got_md5}"
    return None


def _resolve_dest(url: str, dest: PathLike) -> Path:
    """``dest``, or ``dest/<url file name>`` when ``dest`` is an existing folder (fastcore's ``urldest``)."""
    dest = Path(dest).expanduser()
    return dest / url_filename(url) if dest.is_dir() else dest


def _stream_to(resp: http.client.HTTPResponse, f, expected: int | None, quiet: bool, desc: str,
               chunk_size: int) -> tuple[int, str]:
    """Copy the response body to ``f`` with a progress bar; return (bytes written, md5 of the first MiB,
    sha256 of the whole body)."""
    md5, sha, got, done = hashlib.md5(), hashlib.sha256(), 0, False
    with tqdm(total=expected, unit="B", unit_scale=True, unit_divisor=1024, desc=desc, disable=quiet,
              leave=False) as bar:
        while not done:
            try:
                chunk = resp.read(chunk_size)
            except http.client.IncompleteRead as e:  # some Python versions raise rather than return b""
                chunk, done = e.partial, True
            if not chunk:
                break
            if got < CHECK_BYTES:
                md5.update(chunk[: CHECK_BYTES - got])
            sha.update(chunk)
            f.write(chunk)
            got += len(chunk)
            bar.update(len(chunk))
    return got, md5.hexdigest(), sha.hexdigest()


def download_url(url: str, dest: PathLike, size: int | None = None, md5_first_mib: str | None = None,
                 force: bool = False, quiet: bool = False, timeout: float = 60.0,
                 chunk_size: int = 2**20, sha256: str | None = None) -> Path:
    """Download ``url`` to ``dest`` atomically, refusing a body whose length, size, md5(first MiB) or, when
    given, full-file ``sha256`` is wrong.

    ``dest`` is a file path, or an existing folder to save ``<url file name>`` in. An existing file that
    passes the checks is kept unless ``force``. Failures raise ``DownloadError`` (naming the URL, the expected
    and the received values) and leave no file behind.
    """
    dest = _resolve_dest(url, dest)
    if dest.exists() and not force:
        stats = path_stats(dest) + ((file_sha256(dest),) if sha256 is not None else ())
        problem = _check_problem(url, stats, size, md5_first_mib, sha256)
        if problem is None:
            return dest
        warnings.warn(f"cached {dest} fails its check ({problem}); downloading it again", stacklevel=2)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            stats = _fetch(url, f, size, quiet, timeout, chunk_size, dest.name)
            f.flush()
            os.fsync(f.fileno())
        problem = _check_problem(url, stats, size, md5_first_mib, sha256)
        if problem is not None:
            raise DownloadError(problem)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest


def _fetch(url: str, f, size: int | None, quiet: bool, timeout: float, chunk_size: int,
           desc: str) -> tuple[int, str, str]:
    """Open ``url`` and stream its body into ``f``, checking it against Content-Length and ``size``."""
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            announced = resp.headers.get("Content-Length")
            announced = int(announced) if announced is not None and announced.isdigit() else None
            if size is not None and announced is not None and announced != size:
                raise DownloadError(f"size mismatch for {url}: expected {size} bytes, "
                                    f"the server announces {announced} (Content-Length)")
            total = announced if announced is not None else size
            got, md5, sha = _stream_to(resp, f, total, quiet, desc, chunk_size)
    except urllib.error.HTTPError as e:
        raise DownloadError(f"download of {url} failed: HTTP {e.code} {e.reason}") from e
    except urllib.error.URLError as e:
        raise DownloadError(f"download of {url} failed: {e.reason}") from e
    except (OSError, http.client.HTTPException) as e:
        raise DownloadError(f"download of {url} failed: {type(e).__name__}: {e}") from e
    if announced is not None and got != announced:
        raise DownloadError(f"truncated download of {url}: expected {announced} bytes (Content-Length), "
                            f"got {got}")
    return got, md5, sha


# ----------------------------------------------------------------------------------------------------------
# Safe extraction


@dataclass(frozen=True)
class Member:
    """An archive member reduced to what the safety check needs: name, type and link target."""

    name: str
    type: str  # 'file' | 'dir' | 'symlink' | 'hardlink' | 'device' | 'fifo' | 'other'
    linkname: str = ""


def _parts(name: str) -> list[str]:
    """Path components of an archive name, splitting on both separators and dropping '' and '.'."""
    return [p for p in re.split(r"[/\\]", name) if p not in ("", ".")]


def _is_absolute(name: str) -> bool:
    return name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name) is not None


def _escapes(parts: list[str]) -> bool:
    """Whether a relative path (as components) leaves its root once ``..`` are resolved."""
    depth = 0
    for p in parts:
        depth += -1 if p == ".." else 1
        if depth < 0:
            return True
    return False


def member_problem(member: Member, links: frozenset[str] = frozenset()) -> str | None:
    """Why extracting ``member`` is unsafe, or None; ``links`` are the normalised names of link members."""
    if member.type in ("device", "fifo", "other"):
        return f"is a {member.type} member"
    if _is_absolute(member.name):
        return "has an absolute path"
    parts = _parts(member.name)
    if ".." in parts:
        return "has a '..' component"
    for i in range(1, len(parts)):
        if "/".join(parts[:i]) in links:
            return f"is placed under the link {'/'.join(parts[:i])!r}"
    if member.type in ("symlink", "hardlink"):
        if _is_absolute(member.linkname):
            return f"is a {member.type} to the absolute path {member.linkname!r}"
        # a symlink resolves from its own folder, a tar hardlink from the archive root
        base = parts[:-1] if member.type == "symlink" else []
        if not member.linkname or _escapes(base + _parts(member.linkname)):
            return f"is a {member.type} to {member.linkname!r}, outside the target"
    return None


def check_members(members: list[Member], archive: PathLike) -> None:
    """Raise ``UnsafeArchiveError`` naming the first unsafe member of ``archive``."""
    links = frozenset("/".join(_parts(m.name)) for m in members if m.type in ("symlink", "hardlink"))
    for m in members:
        problem = member_problem(m, links)
        if problem is not None:
            raise UnsafeArchiveError(f"{archive}: refusing to extract member {m.name!r}: it {problem}")


def _tar_member(info: tarfile.TarInfo) -> Member:
    if info.isreg():
        kind = "file"
    elif info.isdir():
        kind = "dir"
    elif info.issym():
        kind = "symlink"
    elif info.islnk():
        kind = "hardlink"
    elif info.ischr() or info.isblk():
        kind = "device"
    elif info.isfifo():
        kind = "fifo"
    else:
        kind = "other"
    return Member(info.name, kind, info.linkname)


def _zip_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Member:
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return Member(info.filename, "symlink", zf.read(info).decode("utf-8", "replace"))
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return Member(info.filename, "device")
    if stat.S_ISFIFO(mode):
        return Member(info.filename, "fifo")
    return Member(info.filename, "dir" if info.is_dir() else "file")


def _extract_tar(archive: Path, out: Path) -> None:
    with tarfile.open(archive, "r:*") as tf:
        infos = tf.getmembers()
        check_members([_tar_member(i) for i in infos], archive)
        # the 'data' filter re-checks each member against the real file system as a second line of defence
        tf.extractall(out, members=infos, filter="data")


def _extract_zip(archive: Path, out: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        members = [_zip_member(zf, i) for i in infos]
        check_members(members, archive)
        for info, m in zip(infos, members):
            path = out.joinpath(*_parts(m.name))
            if m.type == "dir":
                path.mkdir(parents=True, exist_ok=True)
            elif m.type == "symlink":
                path.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(m.linkname, path)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(path, "wb") as dst:
                    shutil.copyfileobj(src, dst)


def _payload(out: Path) -> Path:
    """The extracted folder to keep: the single top-level folder if there is one, else ``out`` itself."""
    items = list(out.iterdir())
    if len(items) == 1 and items[0].is_dir() and not items[0].is_symlink():
        return items[0]
    out.chmod(0o755)  # mkdtemp made it private; it becomes an ordinary data folder
    return out


def extract_archive(archive: PathLike, target: PathLike, kind: str | None = None,
                    force: bool = False) -> Path:
    """Safely extract ``archive`` into the folder ``target`` (atomically) and return ``target``.

    A single top-level folder in the archive becomes ``target`` (fastai's layout:
    ``data/adult_sample/adult.csv``). An existing ``target`` is returned untouched unless ``force``, which
    replaces it. Unsafe members raise ``UnsafeArchiveError`` before anything is written.
    """
    archive, target = Path(archive), Path(target)
    kind = kind or archive_kind(archive.name)
    if kind not in ARCHIVE_KINDS:
        raise ArchiveError(f"{archive}: unknown archive kind {kind!r}, expected one of {ARCHIVE_KINDS}")
    if target.exists() and not force:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".extract"))
    try:
        try:
            (_extract_zip if kind == "zip" else _extract_tar)(archive, tmp)
        except (tarfile.TarError, zipfile.BadZipFile, EOFError) as e:
            raise ArchiveError(f"{archive}: cannot read it as a {kind} archive: {e}") from e
        _place(_payload(tmp), target, force)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _place(src: Path, target: Path, force: bool) -> None:
    """Rename ``src`` to ``target``; with ``force`` an existing target is swapped out, then removed."""
    if target.exists() or target.is_symlink():
        if not force:  # another process finished first: keep its copy
            return
        old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".old"))
        os.replace(target, old / "x")
        try:
            os.replace(src, target)
        finally:
            shutil.rmtree(old, ignore_errors=True)
        return
    os.replace(src, target)


# ----------------------------------------------------------------------------------------------------------
# untar_data


def untar_data(url_or_name: str | RemoteArchive, dest: PathLike | None = None, force: bool = False, *,
               cache_dir: PathLike | None = None, archive: PathLike | None = None,
               force_download: bool = False, quiet: bool = False, timeout: float = 60.0) -> Path:
    """Download (checked) and safely extract a registered archive; return the folder holding its data.

    ``url_or_name``: a ``URLs.*`` constant, a registry name, or a ``RemoteArchive``. ``dest``: the folder to
    extract into (default ``<cache>/data``); ``archive``: where archives go (default ``<cache>/archive``).
    ``force`` (or fastai's ``force_download``) downloads and extracts again. An existing extracted folder is
    returned without any network access, as is an extracted copy under ``$LESSON4_DATA`` (``local_copy``);
    offline, the error says where a local copy can be put.
    """
    entry = get_entry(url_or_name)
    force = force or force_download
    root = cache_root(cache_dir)
    data_dir = Path(dest).expanduser() if dest is not None else root / "data"
    arch_dir = Path(archive).expanduser() if archive is not None else root / "archive"
    target = data_dir / entry.folder
    if target.exists() and not force:
        return target
    local = local_copy(entry.folder) if dest is None and not force else None
    if local is not None:
        return local
    try:
        arch = download_url(entry.url, arch_dir / entry.filename, size=entry.size,
                            md5_first_mib=entry.md5_first_mib, force=force, quiet=quiet, timeout=timeout,
                            sha256=entry.sha256)
    except DownloadError as e:
        raise DownloadError(f"{e}\n{entry.name} is not available offline: point ${DATA_ENV} at a folder holding "
                            f"{entry.folder}/ (or <subfolder>/{entry.folder}/), put the extracted folder at {target}, "
                            f"or put the downloaded {entry.filename} at {arch_dir / entry.filename}") from e
    return extract_archive(arch, target, kind=entry.kind, force=force)


def local_copy(folder: str) -> Path | None:
    """An extracted copy of a dataset under ``$LESSON4_DATA`` (``<root>/<folder>`` or ``<root>/*/<folder>``,
    the layout of a shared data folder), so offline machines use it without a download; None when absent."""
    root = os.environ.get(DATA_ENV)
    if not root:
        return None
    base = Path(root).expanduser()
    for cand in (base / folder, *sorted(base.glob(f"*/{folder}"))):
        if cand.is_dir():
            return cand
    return None
