"""Run a command on a real single-node SLURM cluster that only loopback can reach.

    unshare --net sh -c 'ip link set lo up && exec "$0" "$@"' \
        python tests/support/slurm_cluster.py [--gpus N] [--cpus N] [--timeout S] [--jobs-report FILE] -- COMMAND ...

Meant to run as root in a fresh network namespace (``unshare --net``), which has no interface but
its own loopback. munged, slurmctld and slurmd (Debian's munge, slurmctld, slurmd) start in the
foreground with everything in a temporary folder: slurm.conf and gres.conf, the munge key and
socket, state, spool, log and pid files. The controller and the node listen on 127.0.0.1 (ports
6817/6818 of this namespace). The node offers N fake GPUs (gres ``gpu`` on /dev/null, /dev/zero,
...: jobs that ask for one are scheduled on one and see CUDA_VISIBLE_DEVICES) and no accounting
database: ``sacct`` knows no jobs; finished jobs stay visible to ``squeue``/``scontrol`` for
MinJobAge=300 s.

The configuration is found through SLURM_CONF and also at /etc/slurm, where the temporary folder
is bind-mounted in a private mount namespace of this process and its children (nothing outside
sees it): snakemake-executor-plugin-slurm-jobstep removes SLURM_CONF from the environment of the
``srun`` it runs inside each job, which then reads the default path.

COMMAND runs in its own session. When it ends (or after --timeout seconds, when its process group
gets SIGTERM, then SIGKILL), ``scontrol show job -o -d`` of every job the controller still knows
is written to --jobs-report, the daemons are stopped by PID, and any process left below this one
(job steps, orphans: this process is their subreaper) is killed by PID. The exit status is
COMMAND's (124 on timeout, 3 when the cluster did not start, with the daemons' logs on stderr).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
CLONE_NEWNS = 0x00020000
MS_BIND, MS_REC, MS_PRIVATE = 0x1000, 0x4000, 0x40000
DEFAULT_CONF_DIR = Path("/etc/slurm")  # Debian's compiled-in location of slurm.conf
DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("ip", "munge", "scontrol", "sinfo", "sbatch", "squeue", "srun")
FAKE_GPU_FILES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
_libc = ctypes.CDLL(None, use_errno=True)


class ClusterError(RuntimeError):
    pass


def missing_tools() -> list[str]:
    return [t for t in (*DAEMONS, *CLIENTS) if shutil.which(t) is None]


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _die_with_parent() -> None:  # preexec_fn of the daemons: SIGKILL if this process dies first
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def private_conf_dir(folder: Path) -> None:
    """Bind `folder` onto /etc/slurm in a new mount namespace (this process and its children only)."""
    if not DEFAULT_CONF_DIR.is_dir():
        raise ClusterError(f"{DEFAULT_CONF_DIR} does not exist (Debian's slurm-client creates it)")
    _check(_libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _check(_libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")
    _check(_libc.mount(str(folder).encode(), str(DEFAULT_CONF_DIR).encode(), None, MS_BIND, None),
           f"mount --bind {folder} {DEFAULT_CONF_DIR}")


def only_loopback() -> bool:
    """True in a network namespace whose only interface is lo (as under ``unshare --net``)."""
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, timeout=10, check=True).stdout
    return [line.split(":")[1].strip() for line in links.splitlines() if line.strip()] == ["lo"]


def allow_passive_bind() -> None:
    """Let the daemons bind their ports in a namespace that has nothing but loopback.

    slurmctld and slurmd look up their listening address with getaddrinfo(NULL, port, AF_INET,
    AI_PASSIVE | AI_ADDRCONFIG), and glibc answers "Name or service not known" when no IPv4 address
    other than 127.0.0.1 is configured. A second loopback address (127.0.0.2 on lo) counts as one;
    it is added only in a private namespace with no other interface, and goes away with it.
    """
    if only_loopback():
        subprocess.run(["ip", "addr", "add", "127.0.0.2/8", "dev", "lo"], capture_output=True, timeout=10, check=True)


def node_memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise ClusterError("no MemTotal in /proc/meminfo")


def write_config(run: Path, node: str, gpus: int, cpus: int, memory_mb: int) -> Path:
    if gpus > len(FAKE_GPU_FILES):
        raise ClusterError(f"at most {len(FAKE_GPU_FILES)} fake GPUs, not {gpus}")
    etc = run / "etc"
    for sub in ("etc", "state", "spool", "log"):
        (run / sub).mkdir()
    gres = f" Gres=gpu:{gpus}" if gpus else ""
    conf = etc / "slurm.conf"
    conf.write_text(f"""\
ClusterName=gnnjec-test
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort=6817
SlurmdPort=6818
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={run / "munge.socket"}
StateSaveLocation={run / "state"}
SlurmdSpoolDir={run / "spool"}
SlurmctldPidFile={run / "slurmctld.pid"}
SlurmdPidFile={run / "slurmd.pid"}
SlurmctldLogFile={run / "log" / "slurmctld.log"}
SlurmdLogFile={run / "log" / "slurmd.log"}
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# the node is taken as declared (CPUs, RealMemory) even where this machine has less
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=300
KillWait=5
InactiveLimit=0
MessageTimeout=10
SlurmdTimeout=60
GresTypes=gpu
NodeName={node} NodeAddr=127.0.0.1 NodeHostname={node} CPUs={cpus} RealMemory={memory_mb}{gres} State=UNKNOWN
PartitionName=test Nodes={node} Default=YES MaxTime=INFINITE State=UP
""")
    (etc / "gres.conf").write_text("".join(f"NodeName={node} Name=gpu File={f}\n" for f in FAKE_GPU_FILES[:gpus]))
    return conf


class Cluster:
    def __init__(self, gpus: int, cpus: int) -> None:
        self.gpus, self.cpus = gpus, cpus
        self.run = Path(tempfile.mkdtemp(prefix="gnnjec-slurm-"))
        self.run.chmod(0o755)
        self.node = socket.gethostname().split(".")[0]
        self.daemons: dict[str, subprocess.Popen] = {}
        self.env = dict(os.environ)

    def logs(self) -> str:
        folder = self.run / "log"
        files = sorted(folder.iterdir()) if folder.is_dir() else []
        return "\n".join(f"--- {f.name}\n{f.read_text(errors='replace')[-3000:]}" for f in files)

    def _start(self, name: str, command: list[str]) -> None:
        with open(self.run / "log" / f"{name}.out", "ab") as log:
            self.daemons[name] = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log,
                                                  stderr=subprocess.STDOUT, env=self.env,
                                                  preexec_fn=_die_with_parent)  # noqa: PLW1509 (no threads)

    def _wait(self, what: str, ready, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.daemons.items():
                if proc.poll() is not None:
                    raise ClusterError(f"{name} exited with status {proc.returncode} while waiting for {what}")
            if ready():
                return
            time.sleep(0.2)
        raise ClusterError(f"{what} not within {timeout:.0f} s")

    def _run(self, *command: str) -> subprocess.CompletedProcess | None:
        try:
            return subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=10, check=False)
        except subprocess.TimeoutExpired:
            return None

    def _out(self, *command: str) -> str:
        proc = self._run(*command)
        return proc.stdout if proc is not None and proc.returncode == 0 else ""

    def start(self) -> None:
        allow_passive_bind()
        conf = write_config(self.run, self.node, self.gpus, self.cpus, max(node_memory_mb(), 16384))
        private_conf_dir(conf.parent)
        self.env["SLURM_CONF"] = str(conf)
        key = self.run / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        sock = self.run / "munge.socket"
        self._start("munged", ["munged", "--foreground", "--force", f"--key-file={key}", f"--socket={sock}",
                               f"--pid-file={self.run / 'munged.pid'}", f"--seed-file={self.run / 'munged.seed'}"])
        self._wait("munged", lambda: sock.exists() and self._out("munge", "-n", "-S", str(sock)) != "", 20)
        self._start("slurmctld", ["slurmctld", "-D", "-i", "-f", str(conf)])
        self._wait("slurmctld", lambda: "UP" in self._out("scontrol", "ping"), 30)
        self._start("slurmd", ["slurmd", "-D", "-f", str(conf), "-N", self.node])

        def node_idle() -> bool:
            state = self._out("sinfo", "-h", "-n", self.node, "-o", "%T").strip().lower()
            if state.startswith(("down", "drain", "fail")):
                self._run("scontrol", "update", f"nodename={self.node}", "state=resume")
            return state == "idle"

        self._wait(f"node {self.node} idle", node_idle, 60)

    def jobs_report(self) -> str:
        return self._out("scontrol", "show", "job", "-o", "-d")

    def stop(self) -> None:
        """Stop the daemons by PID (node first, munged last), then whatever is left below this process."""
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.daemons.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        kill_descendants()
        shutil.rmtree(self.run, ignore_errors=True)


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_descendants() -> None:
    """SIGKILL every process below this one (orphans come here: this process is their subreaper)."""
    for _ in range(50):
        left = descendants(os.getpid())
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        while True:  # reap what was killed
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break
        if not left:
            return
        time.sleep(0.1)


def run_command(command: list[str], env: dict, timeout: float) -> int:
    proc = subprocess.Popen(command, env=env, start_new_session=True)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"slurm_cluster: {command[0]} still running after {timeout:.0f} s; stopping it", file=sys.stderr)
        return 124
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if proc.poll() is not None:
                break
            try:
                os.killpg(proc.pid, sig)
                proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gpus", type=int, default=1, help="fake GPUs on the node (gres gpu)")
    p.add_argument("--cpus", type=int, default=os.cpu_count() or 1, help="CPUs the node declares")
    p.add_argument("--timeout", type=float, default=600, help="seconds COMMAND may run")
    p.add_argument("--jobs-report", type=Path, help="where to write `scontrol show job -o -d` after COMMAND")
    p.add_argument("command", nargs=argparse.REMAINDER)
    a = p.parse_args()
    command = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not command:
        p.error("no command to run")
    if os.geteuid() != 0:
        p.error("needs root (the daemons run as root)")
    if missing_tools():
        p.error(f"missing {', '.join(missing_tools())} (Debian: munge slurmctld slurmd slurm-client iproute2)")

    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    # SIGTERM/SIGHUP (a test runner giving up) end this process through the finally below
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))

    cluster = Cluster(a.gpus, a.cpus)
    try:
        try:
            cluster.start()
        except (ClusterError, OSError, subprocess.SubprocessError) as err:
            print(f"slurm_cluster: {err}\n{cluster.logs()}", file=sys.stderr)
            return 3
        status = run_command(command, cluster.env, a.timeout)
        if a.jobs_report:
            a.jobs_report.write_text(cluster.jobs_report())
        if status != 0:
            print(f"slurm_cluster: command exited with {status}; daemon logs:\n{cluster.logs()}", file=sys.stderr)
        return status
    finally:
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)  # nothing interrupts the cleanup
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
