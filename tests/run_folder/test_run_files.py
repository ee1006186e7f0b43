import subprocess
import sys
import textwrap

import pytest

from npdvae.run_folder.run_files import (
    RunLock, RunLockedError, RunWriteError, append_line, remove_stale_temporaries, replace_file,
)
from tests.data.conftest import REPO


def test_replace_file_replaces_a_symlink_and_never_writes_its_target(tmp_path):
    target = tmp_path / "elsewhere.txt"
    target.write_text("precious")
    link = tmp_path / "run" / "config.json"
    link.parent.mkdir()
    link.symlink_to(target)
    replace_file(link, b"new")
    assert target.read_text() == "precious"
    assert not link.is_symlink() and link.read_bytes() == b"new"
    assert sorted(p.name for p in link.parent.iterdir()) == ["config.json"]   # no temporary left


def test_append_line_refuses_a_symlink_naming_the_file(tmp_path):
    target = tmp_path / "elsewhere.txt"
    target.write_text("precious\n")
    link = tmp_path / "metrics.jsonl"
    link.symlink_to(target)
    with pytest.raises(RunWriteError, match=r"metrics.jsonl: .*symbolic link.*\(ELOOP\)"):
        append_line(link, "{}")
    assert target.read_text() == "precious\n"
    append_line(tmp_path / "fresh.jsonl", "a")
    append_line(tmp_path / "fresh.jsonl", "b\n")
    assert (tmp_path / "fresh.jsonl").read_text() == "a\nb\n"


WRITER_PAST_THE_LIMIT = textwrap.dedent("""
    import resource, signal, sys
    from npdvae.run_folder.run_files import RunWriteError, replace_file
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))
    try:
        replace_file(sys.argv[1], bytes(5000))
    except RunWriteError as err:
        print(err)
""")


def test_a_failed_replace_names_the_errno_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "last.h5"
    path.write_bytes(b"old")
    result = subprocess.run([sys.executable, "-c", WRITER_PAST_THE_LIMIT, str(path)], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == f"cannot write {path}: File too large (EFBIG)", result.stderr
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["last.h5"]


def test_stale_temporaries_are_removed(tmp_path):
    (tmp_path / "last.h5.123.tmp").write_bytes(b"x")
    (tmp_path / "keep.h5").write_bytes(b"x")
    assert [p.name for p in remove_stale_temporaries(tmp_path)] == ["last.h5.123.tmp"]
    assert [p.name for p in tmp_path.iterdir()] == ["keep.h5"]


HOLDER = textwrap.dedent("""
    import sys, time
    from npdvae.run_folder.run_files import RunLock
    RunLock(sys.argv[1]).acquire()
    print("locked", flush=True)
    time.sleep(60)
""")


def test_a_second_process_is_refused_the_lock_and_told_the_holder(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunLockedError, match=f"in use by another npdvae process \\(pid {holder.pid}\\)"):
            RunLock(tmp_path).acquire()
    finally:
        holder.kill()
        holder.wait()
    lock = RunLock(tmp_path).acquire()      # the kernel dropped the dead holder's lock
    assert RunLock(tmp_path).acquire().fd == lock.fd   # one process is one writer
    lock.release()
