"""Full-file SHA-256 checks on downloads (local HTTP server, as in test_download): verified while streaming, on
the cached copy, and a mismatch leaves nothing behind."""

from __future__ import annotations

import hashlib

import pytest

from learner_jax.download import DownloadError, RemoteArchive, download_url, file_sha256, untar_data
from tests.learner_jax.test_download import GOOD_TGZ, entry_for, files_under, server, tgz  # noqa: F401 (fixture)


def test_sha256_is_verified_for_downloads_and_cached_copies(server, tmp_path):  # noqa: F811
    body = tgz(GOOD_TGZ)
    good = hashlib.sha256(body).hexdigest()
    url = server.serve("good.tgz", body)
    dest = download_url(url, tmp_path, sha256=good, quiet=True)
    assert file_sha256(dest) == good
    damaged = bytearray(body)
    damaged[-10] ^= 0xFF  # past the first MiB check's reach in a big file; here any byte
    dest.write_bytes(bytes(damaged))
    with pytest.warns(UserWarning, match="sha256 mismatch"):
        download_url(url, dest, sha256=good, quiet=True)  # the damaged cached copy is fetched again
    assert dest.read_bytes() == body and server.hits("good.tgz") == 2


def test_sha256_mismatch_is_refused_and_leaves_no_file(server, tmp_path):  # noqa: F811
    body = tgz(GOOD_TGZ)
    e = entry_for(server.serve("good.tgz", body), body, "good", sha256="0" * 64)
    with pytest.raises(DownloadError, match=r"sha256 mismatch for .*good.tgz: expected 0{64}"):
        untar_data(e, cache_dir=tmp_path, quiet=True)
    assert files_under(tmp_path / "archive") == set() and files_under(tmp_path / "data") == set()
    ok = entry_for(server.serve("good.tgz", body), body, "good", sha256=hashlib.sha256(body).hexdigest())
    assert (untar_data(ok, cache_dir=tmp_path, quiet=True) / "a.csv").exists()


def test_sha256_field_is_validated():
    with pytest.raises(ValueError, match="sha256 must be 64 lowercase hex digits"):
        RemoteArchive("X", "https://example.com/x.tgz", 10, "0" * 32, "tgz", "x", sha256="abc")
