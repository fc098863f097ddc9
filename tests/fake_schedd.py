"""A stand-in for an HTCondor schedd and its execute points, for testing profiles/htcondor without a pool.

    python tests/fake_schedd.py --record DIR [options] -- <snakemake arguments>

runs Snakemake's command line in this process with ``htcondor2.Schedd`` replaced by a fake, so that the real
snakemake-executor-plugin-htcondor builds its submit descriptions with the real ``htcondor2.Submit`` and hands
them to the fake. For every submission the fake

* writes the submit description to DIR/<ClusterId>.json (keys as htcondor2.Submit holds them, e.g. ``+JobFlavour``
  becomes ``MY.JobFlavour``), later completed with where and how the job ran;
* runs the job on this machine in a background thread, at most --slots at a time, the way a vanilla-universe
  starter would: ``executable`` with ``arguments`` (HTCondor's old or new argument syntax), stdout and stderr into
  the ``output`` and ``error`` files, the environment built from ``getenv`` and ``environment`` (nothing inherited
  unless getenv says so), started in the submit directory (--execute-in iwd: a shared filesystem and no file
  transfer) or in an empty scratch directory (--execute-in scratch: what a job sees where the pool transfers files,
  as lxbatch may; a copy of the executable runs there unless transfer_executable is false, and only
  ``transfer_input_files`` are copied in, ``transfer_output_files`` back, when should_transfer_files is YES);
* writes the HTCondor user log named by ``log`` (submit, execute, terminated or aborted events, in the text format
  that htcondor2.JobEventLog parses), unless --no-event-log, and answers ``query()`` (idle and running jobs) and
  ``history()`` (finished jobs: JobStatus 4 with the real ExitCode, or 3 when removed), with constraints evaluated
  by classad2. Without the event log the plugin reaches its schedd/history fallback after a few status checks.

What it does not do: matchmaking (no job waits for a machine with the requested memory or GPU), resource limits
(memory is not enforced), holds, evictions, credentials, containers or universes other than vanilla.
"""

from __future__ import annotations

import argparse
import fnmatch
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

HOST = "<127.0.0.1:9618?addrs=127.0.0.1-9618&alias=fake-schedd>"
USAGE_LINES = (
    "\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Run Remote Usage\n"
    "\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Run Local Usage\n"
    "\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Total Remote Usage\n"
    "\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Total Local Usage\n"
    "\t0  -  Run Bytes Sent By Job\n\t0  -  Run Bytes Received By Job\n"
    "\t0  -  Total Bytes Sent By Job\n\t0  -  Total Bytes Received By Job\n"
)


def parse_arguments(value: str) -> list[str]:
    """The argv of an HTCondor ``arguments`` value (condor_submit's rules, minus Windows)."""
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        # new syntax: the whole value in double quotes ("" is a literal "), args separated by whitespace,
        # single quotes group (a '' inside them is a literal ')
        text = value[1:-1].replace('""', '"')
        args, current, quoted, i, started = [], [], False, 0, False
        while i < len(text):
            c = text[i]
            if c == "'":
                if quoted and text[i + 1:i + 2] == "'":
                    current.append("'")
                    i += 2
                    continue
                quoted, started = not quoted, True
            elif c.isspace() and not quoted:
                if started:
                    args.append("".join(current))
                current, started = [], False
            else:
                current.append(c)
                started = True
            i += 1
        if quoted:
            raise ValueError(f"unbalanced single quote in arguments: {value!r}")
        if started:
            args.append("".join(current))
        return args
    # old syntax: whitespace separates, \" is a literal double quote, nothing else is special
    if re.search(r'(?<!\\)"', value):
        raise ValueError(f"unescaped double quote in old-syntax arguments: {value!r}")
    return [arg.replace('\\"', '"') for arg in value.split()]


def parse_environment(value: str) -> dict[str, str]:
    """NAME=VALUE pairs of an ``environment`` value (new syntax in double quotes, else old ;-separated)."""
    value = value.strip()
    if not value:
        return {}
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return dict(arg.split("=", 1) for arg in parse_arguments(value) if "=" in arg)
    return dict(part.split("=", 1) for part in value.split(";") if "=" in part)


def is_true(value) -> bool | None:
    """HTCondor's boolean spellings; None for anything else (a getenv match list)."""
    text = str(value).strip().strip('"').lower()
    if text in ("true", "yes", "t", "1"):
        return True
    if text in ("false", "no", "f", "0", ""):
        return False
    return None


class Job:
    def __init__(self, cluster: int, submit: dict[str, str], text: str, iwd: str):
        self.cluster = cluster
        self.submit = submit
        self.text = text
        self.iwd = iwd
        self.status = 1  # idle
        self.entered = int(time.time())
        self.exit_code: int | None = None
        self.exit_signal: int | None = None
        self.proc: subprocess.Popen | None = None
        self.removed = False
        self.ran_in: str | None = None
        self.argv: list[str] = []
        self.env_keys: list[str] = []

    def expand(self, value: str) -> str:
        for macro in ("ClusterId", "Cluster"):
            value = value.replace(f"$({macro})", str(self.cluster))
        for macro in ("ProcId", "Process"):
            value = value.replace(f"$({macro})", "0")
        return value

    def path(self, key: str) -> str | None:
        value = self.submit.get(key)
        if not value:
            return None
        value = self.expand(value.strip('"'))
        return value if os.path.isabs(value) else os.path.join(self.iwd, value)

    def ad(self):
        import classad2

        ad = classad2.ClassAd()
        ad["ClusterId"] = self.cluster
        ad["ProcId"] = 0
        ad["JobStatus"] = self.status
        ad["EnteredCurrentStatus"] = self.entered
        ad["Iwd"] = self.iwd
        ad["Cmd"] = self.submit.get("executable", "")
        ad["Args"] = self.submit.get("arguments", "")
        ad["JobBatchName"] = self.submit.get("batch_name", "").strip('"')
        if self.status == 4:
            ad["ExitBySignal"] = self.exit_signal is not None
            if self.exit_signal is None:
                ad["ExitCode"] = self.exit_code
            else:
                ad["ExitSignal"] = self.exit_signal
            ad["CompletionDate"] = self.entered
        return ad

    def record(self) -> dict:
        return {"cluster": self.cluster, "submit": self.submit, "description": self.text, "iwd": self.iwd,
                "status": self.status, "exit_code": self.exit_code, "exit_signal": self.exit_signal,
                "ran_in": self.ran_in, "argv": self.argv, "environment_names": self.env_keys}


class Pool:
    """The state behind every FakeSchedd(): one queue, one history, a fixed number of execute slots."""

    def __init__(self, record: Path, slots: int, event_log: bool, execute_in: str):
        self.record_dir = record
        self.record_dir.mkdir(parents=True, exist_ok=True)
        self.slots = threading.Semaphore(slots)
        self.event_log = event_log
        self.execute_in = execute_in
        self.lock = threading.RLock()
        self.clusters = itertools.count(1)
        self.jobs: dict[int, Job] = {}
        self.threads: list[threading.Thread] = []
        self.submitter_env = dict(os.environ)

    # --- the schedd side
    def submit(self, description) -> int:
        submit = {str(k): str(v) for k, v in dict(description).items()}
        if "executable" not in submit:
            raise RuntimeError("submit description has no executable")
        parse_arguments(submit.get("arguments", ""))  # refused at submission, like condor_submit
        with self.lock:
            job = Job(next(self.clusters), submit, str(description), os.path.abspath(
                os.path.join(os.getcwd(), submit.get("initialdir", "").strip('"'))))
            self.jobs[job.cluster] = job
            self._save(job)
            self._event(job, f"000 ({job.cluster:03d}.000.000) {self._now()} Job submitted from host: {HOST}\n")
        thread = threading.Thread(target=self._run, args=(job,), daemon=True, name=f"job-{job.cluster}")
        self.threads.append(thread)
        thread.start()
        return job.cluster

    def ads(self, constraint, projection, finished: bool, limit: int = -1):
        import classad2

        expr = classad2.ExprTree(str(constraint)) if constraint not in (None, "", True) else None
        out = []
        with self.lock:
            for job in self.jobs.values():
                if (job.status in (3, 4)) != finished:
                    continue
                ad = job.ad()
                if expr is not None and expr.eval(ad) is not True:
                    continue
                if projection:
                    ad = classad2.ClassAd({k: ad[k] for k in projection if k in ad})
                out.append(ad)
        out.sort(key=lambda ad: -ad.get("ClusterId", 0) if finished else ad.get("ClusterId", 0))
        return out[:limit] if limit and limit > 0 else out

    def remove(self, job_ids) -> None:
        ids = [job_ids] if isinstance(job_ids, str) else list(job_ids)
        for spec in ids:
            cluster = int(str(spec).split(".")[0])
            with self.lock:
                job = self.jobs.get(cluster)
                if job is None or job.status in (3, 4):
                    continue
                job.removed = True
                if job.proc is not None and job.proc.poll() is None:
                    os.killpg(job.proc.pid, signal.SIGKILL)
                elif job.status == 1:
                    self._finish(job, removed=True)

    def shutdown(self) -> None:
        """Kill what still runs (Snakemake stopped without removing its jobs)."""
        with self.lock:
            for job in self.jobs.values():
                if job.proc is not None and job.proc.poll() is None:
                    os.killpg(job.proc.pid, signal.SIGKILL)
        for thread in self.threads:
            thread.join(timeout=10)

    # --- the execute point side
    def _environment(self, job: Job) -> dict[str, str]:
        getenv = job.submit.get("getenv", "false")
        flag = is_true(getenv)
        if flag is True:
            env = dict(self.submitter_env)
        elif flag is False:
            env = {}
        else:  # a match list: names or patterns, comma or space separated
            patterns = [p for p in re.split(r"[,\s]+", getenv.strip('"')) if p]
            env = {k: v for k, v in self.submitter_env.items() if any(fnmatch.fnmatchcase(k, p) for p in patterns)}
        env.update(parse_environment(job.submit.get("environment", "")))
        return env

    def _run(self, job: Job) -> None:
        with self.slots:
            with self.lock:
                if job.removed:
                    self._finish(job, removed=True)
                    return
                job.status, job.entered = 2, int(time.time())
                self._event(job, f"001 ({job.cluster:03d}.000.000) {self._now()} Job executing on host: {HOST}\n")
            scratch = self.record_dir / "execute" / f"dir_{job.cluster}"
            scratch.mkdir(parents=True, exist_ok=True)
            transfer = job.submit.get("should_transfer_files", "").strip('"').upper() == "YES"
            cwd = str(scratch) if self.execute_in == "scratch" else job.iwd
            env = self._environment(job)
            env.update({"_CONDOR_SCRATCH_DIR": str(scratch), "TMPDIR": str(scratch / "tmp"),
                        "_CONDOR_JOB_IWD": cwd, "BATCH_SYSTEM": "HTCondor",
                        "OMP_NUM_THREADS": job.submit.get("request_cpus", "1")})
            (scratch / "tmp").mkdir(exist_ok=True)
            rc, sig = None, None
            try:
                if self.execute_in == "scratch" and transfer:
                    self._transfer_in(job, scratch)
                executable = os.path.join(job.iwd, job.expand(job.submit["executable"].strip('"')))
                if self.execute_in == "scratch" and is_true(job.submit.get("transfer_executable", "true")):
                    # the starter runs a copy of the executable from the sandbox
                    shutil.copy2(executable, scratch / "condor_exec.exe")
                    executable = str(scratch / "condor_exec.exe")
                argv = [executable, *parse_arguments(job.submit.get("arguments", ""))]
                job.argv, job.env_keys, job.ran_in = argv, sorted(env), cwd
                stdout = job.path("output") or os.devnull
                stderr = job.path("error") or os.devnull
                with open(stdout, "wb") as out, open(stderr, "wb") as err:
                    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                            stderr=err, start_new_session=True)
                    with self.lock:
                        job.proc = proc
                    returncode = proc.wait()
                if returncode < 0:
                    sig = -returncode
                else:
                    rc = returncode
                if self.execute_in == "scratch" and transfer and rc == 0:
                    self._transfer_out(job, scratch)
            except OSError as exc:  # the starter could not start it: the job goes on hold in HTCondor
                with open(job.path("error") or os.devnull, "a") as err:
                    err.write(f"fake_schedd: cannot execute: {exc}\n")
                rc = 1
            with self.lock:
                self._finish(job, removed=job.removed, exit_code=rc, exit_signal=sig)

    def _transfer_in(self, job: Job, scratch: Path) -> None:
        for name in [f.strip() for f in job.submit.get("transfer_input_files", "").split(",") if f.strip()]:
            source = Path(name if os.path.isabs(name) else os.path.join(job.iwd, name))
            target = scratch / (source.name if os.path.isabs(name) else name)
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, target, dirs_exist_ok=True)
            elif source.exists():
                shutil.copy2(source, target)

    def _transfer_out(self, job: Job, scratch: Path) -> None:
        remaps = {}
        for pair in job.submit.get("transfer_output_remaps", "").strip('"').split(";"):
            if "=" in pair:
                src, dst = (p.strip() for p in pair.split("=", 1))
                remaps[src] = dst
        for name in [f.strip() for f in job.submit.get("transfer_output_files", "").split(",") if f.strip()]:
            source = scratch / name
            if source.exists():
                target = Path(remaps.get(name, os.path.join(job.iwd, name)))
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)

    def _finish(self, job: Job, removed: bool, exit_code: int | None = None, exit_signal: int | None = None):
        job.entered = int(time.time())
        head = f"({job.cluster:03d}.000.000) {self._now()}"
        if removed:
            job.status = 3
            self._event(job, f"009 {head} Job was aborted.\n\tvia condor_rm (by user {os.environ.get('USER', 'me')})\n")
        else:
            job.status, job.exit_code, job.exit_signal = 4, exit_code, exit_signal
            how = (f"\t(1) Normal termination (return value {exit_code})\n" if exit_signal is None else
                   f"\t(0) Abnormal termination (signal {exit_signal})\n\t(0) No core file\n")
            self._event(job, f"005 {head} Job terminated.\n{how}{USAGE_LINES}")
        self._save(job)

    # --- files
    @staticmethod
    def _now() -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S")

    def _event(self, job: Job, text: str) -> None:
        if not self.event_log:
            return
        log = job.path("log")
        if log:
            os.makedirs(os.path.dirname(log), exist_ok=True)
            with open(log, "a") as f:  # one write per event: a reader never sees half of one
                f.write(text + "...\n")

    def _save(self, job: Job) -> None:
        path = self.record_dir / f"{job.cluster}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(job.record(), indent=1, sort_keys=True))
        tmp.replace(path)


POOL: Pool | None = None


class SubmitResult:
    def __init__(self, cluster: int):
        self._cluster = cluster

    def cluster(self) -> int:
        return self._cluster

    def first_proc(self) -> int:
        return 0

    def num_procs(self) -> int:
        return 1


class FakeSchedd:
    """The parts of htcondor2.Schedd the plugin calls: submit, query, history, act."""

    def __init__(self, *args, **kwargs):
        assert POOL is not None, "install() first"
        self.pool = POOL

    def submit(self, description, count: int = 0, spool: bool = False, itemdata=None, queue=None):
        if count not in (0, 1) or itemdata is not None or queue is not None:
            raise NotImplementedError("fake schedd: one job per submission")
        return SubmitResult(self.pool.submit(description))

    def query(self, constraint="true", projection=(), limit=-1, **kwargs):
        return self.pool.ads(constraint, list(projection or ()), finished=False, limit=limit)

    def history(self, constraint=None, projection=(), match=-1, since=None, **kwargs):
        return self.pool.ads(constraint, list(projection or ()), finished=True, limit=match)

    def act(self, action, job_spec, reason=None):
        if str(getattr(action, "name", action)) not in ("Remove", "RemoveX"):
            raise NotImplementedError(f"fake schedd: action {action}")
        self.pool.remove(job_spec)


def install(record: Path, slots: int = 2, event_log: bool = True, execute_in: str = "iwd") -> Pool:
    """Replace htcondor2's schedd (and credential issuing, which needs a credd) by the fake."""
    global POOL
    os.environ.setdefault("CONDOR_CONFIG", os.devnull)  # no pool configuration: the bindings need none here
    import htcondor2

    POOL = Pool(record, slots, event_log, execute_in)
    htcondor2.Schedd = FakeSchedd
    htcondor2.Submit.issue_credentials = lambda self: None
    return POOL


def main(argv: list[str]) -> int:
    if "--" not in argv:
        sys.exit("usage: fake_schedd.py --record DIR [options] -- <snakemake arguments>")
    split = argv.index("--")
    parser = argparse.ArgumentParser(prog="fake_schedd.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--record", type=Path, required=True, help="where the submit descriptions go")
    parser.add_argument("--slots", type=int, default=2, help="jobs running at once")
    parser.add_argument("--no-event-log", dest="event_log", action="store_false",
                        help="write no user log: status only through query()/history()")
    parser.add_argument("--execute-in", choices=("iwd", "scratch"), default="iwd",
                        help="iwd: shared filesystem, no file transfer; scratch: an empty sandbox directory")
    opts = parser.parse_args(argv[:split])
    pool = install(opts.record.resolve(), opts.slots, opts.event_log, opts.execute_in)
    print(f"fake_schedd: {socket.gethostname()}, {opts.slots} slots, jobs run in {opts.execute_in}, "
          f"event log {'on' if opts.event_log else 'off'}, submissions recorded in {opts.record}", file=sys.stderr)
    from snakemake.cli import main as snakemake_main

    try:
        snakemake_main(argv[split + 1:])
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        pool.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
