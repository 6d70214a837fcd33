"""Downloads against a local HTTP server on 127.0.0.1 serving archives built here: caching, every failure mode
(each with a clear error and no partial file left in the cache) and safe extraction."""

from __future__ import annotations

import hashlib
import io
import re
import stat
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from learner_jax.download import (
    CACHE_ENV,
    REGISTRY,
    ArchiveError,
    DownloadError,
    Member,
    RemoteArchive,
    UnsafeArchiveError,
    URLs,
    cache_root,
    download_url,
    extract_archive,
    get_entry,
    member_problem,
    path_stats,
    untar_data,
)

# ---------------------------------------------------------------------------------------------------------
# A tiny file server: routes[path] = (body, mode), counting requests per path. Modes: 'ok'; 'nolength' (no
# Content-Length header); 'truncate' (half the body under the full Content-Length, then close: a dropped
# connection).


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        routes, hits = self.server.routes, self.server.hits
        hits[self.path] = hits.get(self.path, 0) + 1
        if self.path not in routes:
            self.send_error(404, "Not Found")
            return
        body, mode = routes[self.path]
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if mode == "ok":
            self.send_header("Content-Length", str(len(body)))
        elif mode == "truncate":
            self.send_header("Content-Length", str(len(body)))
            body = body[: len(body) // 2]
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server:
    def __init__(self):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.routes, self.httpd.hits = {}, {}
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def serve(self, name: str, body: bytes, mode: str = "ok") -> str:
        self.httpd.routes[f"/{name}"] = (body, mode)
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def hits(self, name: str) -> int:
        return self.httpd.hits.get(f"/{name}", 0)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


# ---------------------------------------------------------------------------------------------------------
# Archive builders


def tgz(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def tfile(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def tspecial(name: str, type_: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = type_, linkname
    return info, None


def zipped(members: list[tuple[str, bytes, int | None]]) -> bytes:
    """(name, data, unix mode or None) -> zip bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data, mode in members:
            info = zipfile.ZipInfo(name)
            if mode is not None:
                info.external_attr = mode << 16
            zf.writestr(info, data)
    return buf.getvalue()


def stats(body: bytes) -> tuple[int, str]:
    return len(body), hashlib.md5(body[: 2**20]).hexdigest()


def entry_for(url: str, body: bytes, folder: str, kind: str = "tgz", **override) -> RemoteArchive:
    size, md5 = stats(body)
    fields = dict(name=folder.upper(), url=url, size=size, md5_first_mib=md5, kind=kind, folder=folder)
    fields.update(override)
    return RemoteArchive(**fields)


def files_under(root: Path) -> set[str]:
    """Every path (files, folders, links) under root, relative, so leftovers cannot hide."""
    return {str(p.relative_to(root)) for p in root.rglob("*")} if root.exists() else set()


GOOD_TGZ = [tfile("good/a.csv", b"x,y\n1,2\n"), tfile("good/sub/b.txt", b"hello")]


# ---------------------------------------------------------------------------------------------------------
# Registry


def test_registry_entries_are_well_formed():
    required = {"ADULT_SAMPLE", "IMDB_SAMPLE", "ML_SAMPLE", "IMDB", "WIKITEXT", "WIKITEXT_TINY",
                "WT103_FWD", "WT103_BWD", "ML_100k"}
    assert required <= set(REGISTRY)
    folders = set()
    for name, e in REGISTRY.items():
        assert e.name == name
        assert re.fullmatch(r"https?://[^/\s]+/\S+", e.url), e.url
        assert isinstance(e.size, int) and e.size > 0
        assert re.fullmatch(r"[0-9a-f]{32}", e.md5_first_mib)
        assert e.kind in ("tgz", "tar", "zip") and e.url.endswith(".zip") == (e.kind == "zip")
        assert e.folder and "/" not in e.folder and e.folder not in folders
        folders.add(e.folder)
        assert getattr(URLs, name) == e.url
        assert get_entry(e.url) is e and get_entry(name) is e and get_entry(e.folder) is e
    # spot-check the fastai values (fastai_facts.md section 6.4)
    assert URLs.ADULT_SAMPLE == "https://s3.amazonaws.com/fast-ai-sample/adult_sample.tgz"
    assert (REGISTRY["ML_100k"].size, REGISTRY["ML_100k"].folder) == (4_924_029, "ml-100k")
    assert REGISTRY["WT103_FWD"].md5_first_mib == "7d1114cd9684bf9d1ca3c9f6a54da6f9"


def test_unknown_dataset_is_refused():
    with pytest.raises(ValueError, match="unknown dataset 'https://example.com/x.tgz'"):
        get_entry("https://example.com/x.tgz")


@pytest.mark.parametrize("field,value,message", [
    ("url", "ftp://h/x.tgz", "not http"), ("size", 0, "positive"), ("size", 1.5, "positive"),
    ("md5_first_mib", "abc", "32 lowercase hex"), ("kind", "rar", "kind must be"),
    ("folder", "../x", "plain folder name"),
])
def test_remote_archive_validates_fields(field, value, message):
    fields = dict(name="X", url="https://h/x.tgz", size=1, md5_first_mib="0" * 32, kind="tgz", folder="x")
    fields[field] = value
    with pytest.raises(ValueError, match=message):
        RemoteArchive(**fields)


def test_cache_root_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv(CACHE_ENV, raising=False)
    assert cache_root() == tmp_path / "home" / ".cache" / "lesson4_jax"
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "env"))
    assert cache_root() == tmp_path / "env"
    assert cache_root(tmp_path / "arg") == tmp_path / "arg"


# ---------------------------------------------------------------------------------------------------------
# Good archives and the cache


def test_tgz_extracts_and_second_call_hits_the_cache(server, tmp_path):
    body = tgz(GOOD_TGZ)
    e = entry_for(server.serve("good.tgz", body), body, "good")
    cache = tmp_path / "cache"
    path = untar_data(e, cache_dir=cache, quiet=True)
    assert path == cache / "data" / "good"
    assert (path / "a.csv").read_bytes() == b"x,y\n1,2\n" and (path / "sub" / "b.txt").read_text() == "hello"
    assert (cache / "archive" / "good.tgz").read_bytes() == body
    assert files_under(cache) == {"archive", "archive/good.tgz", "data", "data/good", "data/good/a.csv",
                                  "data/good/sub", "data/good/sub/b.txt"}
    assert server.hits("good.tgz") == 1
    assert untar_data(e, cache_dir=cache, quiet=True) == path
    assert server.hits("good.tgz") == 1  # served from the cache, no request


def test_zip_extracts_with_internal_symlink(server, tmp_path):
    body = zipped([("ml/u.data", b"1\t2\t3\n", None), ("ml/sub/", b"", None),
                   ("ml/link", b"u.data", stat.S_IFLNK | 0o777)])
    e = entry_for(server.serve("ml.zip", body), body, "ml", kind="zip")
    path = untar_data(e, cache_dir=tmp_path, quiet=True)
    assert path == tmp_path / "data" / "ml"
    assert (path / "u.data").read_bytes() == b"1\t2\t3\n" and (path / "sub").is_dir()
    assert (path / "link").is_symlink() and (path / "link").read_bytes() == b"1\t2\t3\n"
    assert untar_data(e, cache_dir=tmp_path, quiet=True) == path and server.hits("ml.zip") == 1


def test_archive_without_single_top_folder_becomes_the_folder(server, tmp_path):
    body = tgz([tfile("a.txt", b"a"), tfile("b/c.txt", b"c")])
    e = entry_for(server.serve("flat.tgz", body), body, "flat")
    path = untar_data(e, dest=tmp_path / "mydata", archive=tmp_path / "arch", quiet=True)
    assert path == tmp_path / "mydata" / "flat"
    assert files_under(path) == {"a.txt", "b", "b/c.txt"}
    assert files_under(tmp_path / "arch") == {"flat.tgz"}


def test_cache_env_var_override(server, tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "envcache"))
    body = tgz(GOOD_TGZ)
    e = entry_for(server.serve("good.tgz", body), body, "good")
    assert untar_data(e, quiet=True) == tmp_path / "envcache" / "data" / "good"
    assert (tmp_path / "envcache" / "archive" / "good.tgz").exists()
    # an explicit argument wins over the variable
    assert untar_data(e, cache_dir=tmp_path / "arg", quiet=True) == tmp_path / "arg" / "data" / "good"
    assert server.hits("good.tgz") == 2


def test_force_downloads_and_extracts_again(server, tmp_path):
    old = tgz(GOOD_TGZ)
    url = server.serve("good.tgz", old)
    path = untar_data(entry_for(url, old, "good"), cache_dir=tmp_path, quiet=True)
    new = tgz([tfile("good/new.txt", b"new")])
    server.serve("good.tgz", new)
    e_new = entry_for(url, new, "good")
    assert untar_data(e_new, cache_dir=tmp_path, quiet=True) == path and server.hits("good.tgz") == 1
    assert untar_data(e_new, cache_dir=tmp_path, force=True, quiet=True) == path
    assert server.hits("good.tgz") == 2
    assert files_under(path) == {"new.txt"}
    assert (tmp_path / "archive" / "good.tgz").read_bytes() == new
    assert files_under(tmp_path) == {"archive", "archive/good.tgz", "data", "data/good", "data/good/new.txt"}
    assert untar_data(e_new, cache_dir=tmp_path, force_download=True, quiet=True) == path
    assert server.hits("good.tgz") == 3


def test_download_url_streams_md5_of_first_mib_and_reuses_good_file(server, tmp_path, capsys):
    body = np.random.default_rng(0).integers(0, 256, 3 * 2**20 // 2, dtype=np.uint8).tobytes()
    url = server.serve("big.bin", body)
    size, md5 = stats(body)
    dest = download_url(url, tmp_path, size=size, md5_first_mib=md5, chunk_size=300_000)
    assert dest == tmp_path / "big.bin" and dest.read_bytes() == body and path_stats(dest) == (size, md5)
    assert "big.bin" in capsys.readouterr().err  # the progress bar
    assert download_url(url, dest, size=size, md5_first_mib=md5, quiet=True) == dest
    assert server.hits("big.bin") == 1
    download_url(url, dest, size=size, md5_first_mib=md5, force=True, quiet=True)
    assert server.hits("big.bin") == 2 and capsys.readouterr().err == ""
    assert files_under(tmp_path) == {"big.bin"}


def test_stale_cached_archive_is_downloaded_again(server, tmp_path):
    body = tgz(GOOD_TGZ)
    e = entry_for(server.serve("good.tgz", body), body, "good")
    (tmp_path / "archive").mkdir()
    (tmp_path / "archive" / "good.tgz").write_bytes(b"corrupt old copy")
    with pytest.warns(UserWarning, match="fails its check"):
        path = untar_data(e, cache_dir=tmp_path, quiet=True)
    assert server.hits("good.tgz") == 1 and (path / "a.csv").exists()
    assert (tmp_path / "archive" / "good.tgz").read_bytes() == body


# ---------------------------------------------------------------------------------------------------------
# Download failures: a clear error and nothing left in the cache


def _assert_clean(cache: Path):
    assert files_under(cache / "archive") == set(), files_under(cache)
    assert files_under(cache / "data") == set(), files_under(cache)


def test_truncated_body_is_refused(server, tmp_path):
    body = tgz(GOOD_TGZ)
    e = entry_for(server.serve("good.tgz", body, mode="truncate"), body, "good")
    with pytest.raises(DownloadError) as err:
        untar_data(e, cache_dir=tmp_path, quiet=True)
    msg = str(err.value)
    assert "truncated" in msg and e.url in msg and f"expected {len(body)} bytes" in msg
    assert f"got {len(body) // 2}" in msg
    _assert_clean(tmp_path)


@pytest.mark.parametrize("mode", ["ok", "nolength"])  # refused from Content-Length, or after the body
def test_size_mismatch_is_refused(server, tmp_path, mode):
    body = tgz(GOOD_TGZ)
    e = entry_for(server.serve("good.tgz", body, mode=mode), body, "good", size=len(body) + 7)
    with pytest.raises(DownloadError, match="size mismatch") as err:
        untar_data(e, cache_dir=tmp_path, quiet=True)
    msg = str(err.value)
    assert e.url in msg and f"expected {len(body) + 7} bytes" in msg and str(len(body)) in msg
    _assert_clean(tmp_path)


def test_checksum_mismatch_is_refused(server, tmp_path):
    body = tgz(GOOD_TGZ)
    e = entry_for(server.serve("good.tgz", body), body, "good", md5_first_mib="0" * 32)
    with pytest.raises(DownloadError, match="checksum mismatch") as err:
        untar_data(e, cache_dir=tmp_path, quiet=True)
    msg = str(err.value)
    assert e.url in msg and "0" * 32 in msg and stats(body)[1] in msg
    _assert_clean(tmp_path)


def test_checksum_mismatch_keeps_no_file_even_with_existing_good_copy_forced(server, tmp_path):
    body = tgz(GOOD_TGZ)
    url = server.serve("good.tgz", body)
    untar_data(entry_for(url, body, "good"), cache_dir=tmp_path, quiet=True)
    before = {p: (tmp_path / p).read_bytes() for p in files_under(tmp_path) if (tmp_path / p).is_file()}
    with pytest.raises(DownloadError, match="checksum mismatch"):
        untar_data(entry_for(url, body, "good", md5_first_mib="f" * 32), cache_dir=tmp_path, force=True,
                   quiet=True)
    after = {p: (tmp_path / p).read_bytes() for p in files_under(tmp_path) if (tmp_path / p).is_file()}
    assert after == before  # no .part file, the previous extraction untouched


def test_http_error_is_reported(server, tmp_path):
    url = server.serve("exists.tgz", b"x").replace("exists", "missing")
    e = RemoteArchive("MISSING", url, 1, "0" * 32, "tgz", "missing")
    with pytest.raises(DownloadError, match=re.escape(url) + ".*HTTP 404"):
        untar_data(e, cache_dir=tmp_path, quiet=True)
    _assert_clean(tmp_path)


def test_unreachable_server_is_reported(tmp_path):
    server = Server()
    url = server.serve("gone.tgz", b"x")
    server.close()
    e = RemoteArchive("GONE", url, 1, "0" * 32, "tgz", "gone")
    with pytest.raises(DownloadError, match=re.escape(url)):
        untar_data(e, cache_dir=tmp_path, quiet=True, timeout=5)
    _assert_clean(tmp_path)


# ---------------------------------------------------------------------------------------------------------
# Unsafe archives: refused before anything is written, naming the member


UNSAFE = {
    "tgz_traversal": ("tgz", [tfile("good/a.csv", b"a"), tfile("good/../../evil.txt", b"evil")],
                      "good/../../evil.txt", "'..' component"),
    "tgz_absolute": ("tgz", [tfile("/tmp/lesson4_evil.txt", b"evil")], "/tmp/lesson4_evil.txt",
                     "absolute path"),
    "tgz_symlink_escape": ("tgz", [tspecial("good/link", tarfile.SYMTYPE, "../../outside")], "good/link",
                           "outside the target"),
    "tgz_symlink_absolute": ("tgz", [tspecial("good/link", tarfile.SYMTYPE, "/etc")], "good/link",
                             "absolute path '/etc'"),
    "tgz_hardlink_escape": ("tgz", [tspecial("good/hl", tarfile.LNKTYPE, "../outside")], "good/hl",
                            "outside the target"),
    "tgz_write_through_link": ("tgz", [tspecial("good/d", tarfile.SYMTYPE, "."), tfile("good/d/x", b"x")],
                               "good/d/x", "under the link 'good/d'"),
    "tgz_device": ("tgz", [tspecial("good/dev", tarfile.CHRTYPE)], "good/dev", "device member"),
    "tgz_fifo": ("tgz", [tspecial("good/fifo", tarfile.FIFOTYPE)], "good/fifo", "fifo member"),
    "zip_traversal": ("zip", [("good/a.csv", b"a", None), ("../evil.txt", b"evil", None)], "../evil.txt",
                      "'..' component"),
    "zip_absolute": ("zip", [("/tmp/lesson4_evil.txt", b"evil", None)], "/tmp/lesson4_evil.txt",
                     "absolute path"),
    "zip_symlink_escape": ("zip", [("good/link", b"../../outside", stat.S_IFLNK | 0o777)], "good/link",
                           "outside the target"),
    "zip_fifo": ("zip", [("good/fifo", b"", stat.S_IFIFO | 0o644)], "good/fifo", "fifo member"),
}


@pytest.mark.parametrize("case", sorted(UNSAFE))
def test_unsafe_archive_is_refused(server, tmp_path, case):
    kind, members, bad, reason = UNSAFE[case]
    body = tgz(members) if kind == "tgz" else zipped(members)
    name = f"{case}.{kind}"
    e = entry_for(server.serve(name, body), body, "good", kind=kind)
    cache = tmp_path / "cache"
    with pytest.raises(UnsafeArchiveError) as err:
        untar_data(e, cache_dir=cache, quiet=True)
    msg = str(err.value)
    assert repr(bad) in msg and reason in msg and name in msg
    assert files_under(cache / "data") == set()  # no temporary folder, no partial extraction
    assert files_under(cache / "archive") == {name}  # the complete, checked archive stays cached
    assert files_under(tmp_path) <= {"cache", "cache/archive", "cache/data", f"cache/archive/{name}"}


def test_zip_names_with_zipinfo_are_stored_verbatim():
    # guards the test above: the unsafe names must reach the archive unchanged
    names = zipfile.ZipFile(io.BytesIO(zipped([("../evil.txt", b"", None)]))).namelist()
    tnames = tarfile.open(fileobj=io.BytesIO(tgz([tfile("/abs.txt", b"")]))).getnames()
    assert names == ["../evil.txt"] and tnames == ["/abs.txt"]


def test_corrupt_archive_gives_archive_error(tmp_path):
    bad = tmp_path / "x.tgz"
    bad.write_bytes(b"not a tar at all" * 10)
    with pytest.raises(ArchiveError, match="cannot read it as a tgz archive"):
        extract_archive(bad, tmp_path / "out")
    assert files_under(tmp_path) == {"x.tgz"}


@pytest.mark.parametrize("member,ok", [
    (Member("a/b.txt", "file"), True),
    (Member("./a/b.txt", "file"), True),
    (Member("a/link", "symlink", "../c.txt"), True),
    (Member("a/link", "symlink", "../../c.txt"), False),
    (Member("a/hl", "hardlink", "a/b.txt"), True),
    (Member("a/hl", "hardlink", "../b.txt"), False),
    (Member("a\\..\\..\\x", "file"), False),
    (Member("C:/x", "file"), False),
    (Member("a/link", "symlink", ""), False),
])
def test_member_problem(member, ok):
    assert (member_problem(member) is None) == ok
