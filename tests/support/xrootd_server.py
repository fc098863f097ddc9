"""Run a command next to a real XRootD server that only loopback can reach.

    unshare --net sh -c 'ip link set lo up && exec "$0" "$@"' \
        python tests/support/xrootd_server.py --export DIR [--port 1094] -- COMMAND ...

Meant to run in a fresh network namespace (``unshare --net``), which has no interface but its own
loopback (brought up first): the server (Debian's ``xrootd``) listens there and nowhere else, and COMMAND, started in
the same namespace, reads ``root://127.0.0.1:PORT//<path under DIR>``. The server runs as an
unprivileged user (xrootd refuses root); it is stopped when COMMAND ends, whose exit status this
script returns. Standard output and error of COMMAND pass through; the server's log is printed to
stderr only if it fails to start.
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def unprivileged_user() -> str:
    for name in ("xrootd", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise SystemExit("no unprivileged user (xrootd or nobody) to run the server as")


def wait_for_port(port: int, server: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"xrootd exited with status {server.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"xrootd did not listen on 127.0.0.1:{port} within {timeout:.0f} s")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--export", required=True, type=Path, help="directory served as the root of the namespace")
    p.add_argument("--port", type=int, default=1094)
    p.add_argument("command", nargs=argparse.REMAINDER)
    a = p.parse_args()
    command = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not command:
        p.error("no command to run")

    run_dir = Path(tempfile.mkdtemp(prefix="gnnjec-xrootd-"))
    run_dir.chmod(0o777)
    config = run_dir / "xrootd.cfg"
    config.write_text(
        f"xrd.port {a.port}\n"
        "xrd.network nodnr\n"
        "all.export /\n"
        f"oss.localroot {a.export.resolve()}\n"
        f"all.adminpath {run_dir}\n"
        f"all.pidpath {run_dir}\n"
    )
    log = run_dir / "xrootd.log"
    server_cmd = ["xrootd", "-c", str(config), "-l", str(log)]
    if os.geteuid() == 0:
        user = unprivileged_user()
        server_cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *server_cmd]
    server = subprocess.Popen(server_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        try:
            wait_for_port(a.port, server)
        except RuntimeError as err:
            logs = "".join(f.read_text(errors="replace") for f in run_dir.glob("xrootd.log*"))
            print(f"xrootd_server: {err}\n{logs[-3000:]}", file=sys.stderr)
            return 3
        env = {**os.environ, "XRD_CONNECTIONRETRY": "1", "XRD_REQUESTTIMEOUT": "60"}
        return subprocess.run(command, env=env).returncode
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
