"""Convert over XRootD from a real server (Debian's xrootd) that only loopback can reach.

The server and the client run together in a fresh network namespace (see support/xrootd_server.py), so
nothing outside this machine can connect to it.
"""

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import awkward as ak
import pyarrow.parquet as pq
import pytest

from gnnjec import convert

from support import need

HERE = Path(__file__).resolve().parent
pytestmark = pytest.mark.services  # an XRootD server in a network namespace

SELECTION = {"min_gen_pt": 0.0, "max_abs_gen_eta": 5.0, "max_constituents": 256, "require_gen_match": False}


@pytest.fixture(scope="module")
def served(cms_file, loopback_only):
    """A world-readable folder with pfnano.root and a truncated copy, to serve (read-only)."""
    missing = [t for t in ("xrootd", "setpriv") if shutil.which(t) is None]
    need(f"needs {', '.join(missing)} (Debian: xrootd-server, util-linux; make test installs them as root)"
         if missing else None)
    folder = Path(tempfile.mkdtemp(prefix="gnnjec-xrootd-data-"))
    folder.chmod(0o755)
    source = Path(cms_file("pfnano.root"))
    shutil.copy(source, folder / "pfnano.root")
    (folder / "truncated.root").write_bytes(source.read_bytes()[:1_500_000])
    for f in folder.iterdir():
        f.chmod(0o644)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def convert_remote(prefix: list[str], folder: Path, name: str, output: Path) -> subprocess.CompletedProcess:
    url = f"root://127.0.0.1:1094//{name}"
    return subprocess.run(
        [*prefix, sys.executable, str(HERE / "support" / "xrootd_server.py"), "--export", str(folder), "--",
         sys.executable, "-m", "gnnjec", "convert", url, "--output", str(output), "--selection", json.dumps(SELECTION),
         "--step-size", "4"],
        capture_output=True, text=True, timeout=300)


def test_conversion_over_xrootd_equals_the_local_one(served, loopback_only, tmp_path):
    remote = tmp_path / "remote.parquet"
    proc = convert_remote(loopback_only, served, "pfnano.root", remote)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "root://127.0.0.1:1094//pfnano.root: 10/10 events" in proc.stderr  # progress, chunk by chunk
    local = tmp_path / "local.parquet"
    convert.convert_file(str(served / "pfnano.root"), str(local), convert.Selection(**SELECTION), convert.Split(), 4)
    remote_table, local_table = pq.read_table(remote), pq.read_table(local)
    assert remote_table.num_rows == 64 and remote_table.schema == local_table.schema
    # unmatched jets carry NaN truth, hence equal_nan
    assert ak.array_equal(ak.from_arrow(remote_table), ak.from_arrow(local_table), equal_nan=True)


@pytest.mark.parametrize("name, words", [("truncated.root", "corrupt or truncated"), ("missing.root", "no such file")])
def test_bad_remote_file_is_refused_in_one_line(served, loopback_only, tmp_path, name, words):
    out = tmp_path / "out.parquet"
    proc = convert_remote(loopback_only, served, name, out)
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert f"root://127.0.0.1:1094//{name}" in lines[0] and words in lines[0]
    assert list(tmp_path.iterdir()) == []
