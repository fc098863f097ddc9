"""A stand-in for a CERN lxbatch schedd and its execute points, for testing profiles/htcondor without a pool.

    python tests/support/fake_schedd.py --record DIR [options] -- <snakemake arguments>

runs Snakemake's command line in this process with ``htcondor2.Schedd`` and ``htcondor2.Credd`` replaced by fakes,
so that the real snakemake-executor-plugin-htcondor builds its submit descriptions with the real
``htcondor2.Submit`` and hands them to the fake. It behaves as lxbatch does, never friendlier:

* **submission** (refused with an error, as condor_submit refuses): arguments in HTCondor's old or new syntax;
  ``MY.SendCredential`` only after the Kerberos credential was pushed to the credd (``Credd().add_user_cred``,
  which, like lxplus's credential producer, needs a ticket cache: KRB5CCNAME or /tmp/krb5cc_<uid>);
  ``use_x509userproxy``/``x509userproxy`` only with a proxy file (X509_USER_PROXY or /tmp/x509up_u<uid>).
  Every description goes to DIR/<ClusterId>.json (keys as htcondor2.Submit holds them, e.g. ``+JobFlavour``
  becomes ``MY.JobFlavour``), later completed with where and how the job ran.
* **matchmaking**: a job waits (idle) until a slot is free; one that asks for more GPUs than the pool has, or a
  higher ``gpus_minimum_capability`` than its GPUs', stays idle for ever, as it would on a real pool.
* **execution**: each job in a fresh sandbox directory outside the submit directory, which the job cannot see
  (a private mount namespace puts an empty read-only tmpfs over it: needs root or user namespaces). Only
  ``transfer_input_files`` are copied in (files and folders, relative paths kept when preserve_relative_paths,
  absolute ones by their name; a missing one holds the job, code 13), and the executable unless
  transfer_executable is false. The environment is what ``getenv`` and ``environment`` give (old syntax:
  ``;``-separated, values taken literally, quotes included; new syntax in double quotes) plus what the
  starter sets: _CONDOR_SCRATCH_DIR, _CONDOR_JOB_AD (the job's ClassAd, with TransferOutput), TMPDIR,
  OMP_NUM_THREADS, BATCH_SYSTEM, CUDA_VISIBLE_DEVICES and
  _CONDOR_AssignedGPUs for the GPUs it was given, KRB5CCNAME for a sent credential, X509_USER_PROXY for the
  proxy's copy in the sandbox. No PATH unless the description gives one.
* **output**: on exit, whatever the exit code (when_to_transfer_output ON_EXIT), every
  ``transfer_output_files`` entry goes back (through ``transfer_output_remaps``); a missing one holds the job
  (code 12), as HTCondor does. Then the sandbox is removed. stdout and stderr go to ``output`` and ``error``.
* **status**: the HTCondor user log named by ``log`` (submit, execute, held, terminated, aborted events in the
  text format htcondor2.JobEventLog parses), unless --no-event-log, and ``query()`` (idle, running and held jobs)
  and ``history()`` (finished: JobStatus 4 with the real ExitCode, or 3 when removed), with constraints evaluated
  by classad2. Without the event log the plugin reaches its schedd/history fallback after a few status checks.

What it does not do: memory, disk or run-time limits (requests are recorded, not enforced), evictions,
containers, universes other than vanilla, AFS/EOS tokens inside the job (the credential is a copy of the
ticket cache file), or a network between the submit node and the workers.
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


def truthy(value) -> bool:
    """A submit command's or ClassAd attribute's boolean, numbers included (non-zero is true, as in ClassAds)."""
    try:
        return float(str(value).strip().strip('"')) != 0
    except ValueError:
        return is_true(value) is True


def file_list(value: str) -> list[str]:
    return [f.strip() for f in value.strip('"').split(",") if f.strip()]


class Held(Exception):
    """The job goes on hold (file transfer failures): HoldReasonCode and the reason."""

    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.code, self.reason = code, reason


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
        self.hold: Held | None = None
        self.proc: subprocess.Popen | None = None
        self.removed = False
        self.ran_in: str | None = None
        self.argv: list[str] = []
        self.env_keys: list[str] = []
        self.env_seen: dict[str, str] = {}  # the values of the variables the tests look at
        self.sandbox_files: list[str] = []
        self.gpus: list[str] = []

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
        if self.status == 5 and self.hold is not None:
            ad["HoldReason"] = self.hold.reason
            ad["HoldReasonCode"] = self.hold.code
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
                "hold_reason": self.hold.reason if self.hold else None,
                "hold_code": self.hold.code if self.hold else None,
                "ran_in": self.ran_in, "argv": self.argv, "environment_names": self.env_keys,
                "environment": self.env_seen, "sandbox_files": self.sandbox_files, "gpus": self.gpus}


# the job environment's variables whose values go into the record (the rest by name only)
SEEN = ("PATH", "_CONDOR_JOB_AD", "CUDA_VISIBLE_DEVICES", "_CONDOR_AssignedGPUs", "KRB5CCNAME", "X509_USER_PROXY",
        "GNNJEC_PYTHON", "OMP_NUM_THREADS", "TMPDIR")
# a shell run in a private mount namespace: an empty read-only tmpfs over the submit directory ($0), then the job
HIDE_SUBMIT_DIR = 'mount -t tmpfs -o ro,size=4k fake-condor-no-submit-dir "$0" && cd "$1" && shift && exec "$@"'


def kerberos_cache(env: dict[str, str]) -> Path:
    """The ticket cache lxplus's credential producer reads: KRB5CCNAME (FILE: caches) or /tmp/krb5cc_<uid>."""
    name = env.get("KRB5CCNAME", f"/tmp/krb5cc_{os.getuid()}")
    return Path(name.removeprefix("FILE:"))


def x509_proxy(submit: dict[str, str], env: dict[str, str]) -> Path | None:
    """The proxy a description asks HTCondor to send (x509userproxy, or use_x509userproxy and the default places)."""
    if submit.get("x509userproxy"):
        return Path(submit["x509userproxy"].strip('"'))
    if truthy(submit.get("use_x509userproxy", "false")):
        return Path(env.get("X509_USER_PROXY", f"/tmp/x509up_u{os.getuid()}"))
    return None


class Pool:
    """The state behind every FakeSchedd(): one queue, one history, a fixed number of execute slots and GPUs."""

    def __init__(self, record: Path, slots: int, event_log: bool, gpus: int = 2, gpu_capability: float = 8.0):
        import tempfile

        self.record_dir = record
        self.record_dir.mkdir(parents=True, exist_ok=True)
        # the execute points' disk, away from the submit directory
        self.execute_root = Path(tempfile.mkdtemp(prefix="fake-condor-execute-"))
        self.slots = threading.Semaphore(slots)
        self.free_gpus = [f"GPU-fake{n}" for n in range(gpus)]
        self.gpu_count, self.gpu_capability = gpus, gpu_capability
        self.event_log = event_log
        self.lock = threading.RLock()
        self.gpu_freed = threading.Condition(self.lock)
        self.clusters = itertools.count(1)
        self.jobs: dict[int, Job] = {}
        self.threads: list[threading.Thread] = []
        self.submitter_env = dict(os.environ)
        self.kerberos_pushed: bytes | None = None  # what Credd().add_user_cred stored
        self.hide_prefix = self._namespace_prefix()

    @staticmethod
    def _namespace_prefix() -> list[str]:
        """How a job is started where it cannot see the submit directory: unshare's private mount namespace."""
        for prefix in (["unshare", "--mount", "--propagation", "private"],
                       ["unshare", "--user", "--map-root-user", "--mount", "--propagation", "private"]):
            probe = subprocess.run([*prefix, "/bin/sh", "-c", HIDE_SUBMIT_DIR, "/tmp", "/", "true"],
                                   capture_output=True, check=False)
            if probe.returncode == 0:
                return prefix
        raise SystemExit("fake_schedd: cannot hide the submit directory from jobs (unshare --mount needs root or "
                         "user namespaces); lxbatch jobs never see it, so the fake will not run them where they could")

    # --- the credd side
    def add_user_cred(self, credential) -> None:
        import htcondor2

        if credential is None:  # what lxplus's SEC_CREDENTIAL_PRODUCER does: read the ticket cache
            cache = kerberos_cache(self.submitter_env)
            if not cache.is_file():
                raise htcondor2.HTCondorException(
                    f"credential producer failed: no Kerberos ticket cache {cache} (kinit first)")
            credential = cache.read_bytes()
        with self.lock:
            self.kerberos_pushed = bytes(credential)

    # --- the schedd side
    def submit(self, description) -> int:
        submit = {str(k): str(v) for k, v in dict(description).items()}
        if "executable" not in submit:
            raise RuntimeError("submit description has no executable")
        parse_arguments(submit.get("arguments", ""))  # refused at submission, like condor_submit
        if truthy(submit.get("MY.SendCredential", "false")) and self.kerberos_pushed is None:
            raise RuntimeError("SendCredential is true but the credd holds no Kerberos credential for this user; "
                               "push it first (htcondor2.Credd().add_user_cred(CredType.Kerberos, None))")
        proxy = x509_proxy(submit, self.submitter_env)
        if proxy is not None and not proxy.is_file():
            raise RuntimeError(f"ERROR: could not find the X509 proxy {proxy} (x509userproxy / use_x509userproxy)")
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
                elif job.status in (1, 5):
                    self._finish(job, removed=True)
                    self.gpu_freed.notify_all()

    def shutdown(self) -> None:
        """Kill what still runs (Snakemake stopped without removing its jobs)."""
        with self.lock:
            for job in self.jobs.values():
                job.removed = True
                if job.proc is not None and job.proc.poll() is None:
                    os.killpg(job.proc.pid, signal.SIGKILL)
            self.gpu_freed.notify_all()
        for thread in self.threads:
            thread.join(timeout=10)
        shutil.rmtree(self.execute_root, ignore_errors=True)

    # --- matchmaking
    def _claim_gpus(self, job: Job) -> list[str] | None:
        """The GPUs the job asked for, once free; None when removed while waiting. A request the pool can never
        meet (more GPUs, a higher minimum capability) waits for ever, as on a real pool."""
        wanted = int(float(job.submit.get("request_gpus", "0") or 0))
        capability = float(job.submit.get("gpus_minimum_capability", "0") or 0)
        matches = wanted <= self.gpu_count and (wanted == 0 or capability <= self.gpu_capability)
        with self.lock:
            while not job.removed and (not matches or len(self.free_gpus) < wanted):
                self.gpu_freed.wait(timeout=1)
            if job.removed:
                return None
            claimed, self.free_gpus = self.free_gpus[:wanted], self.free_gpus[wanted:]
            return claimed

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
        gpus = self._claim_gpus(job)  # a job no machine matches waits without taking a slot
        if gpus is None:
            with self.lock:
                self._finish(job, removed=True)
            return
        try:
            with self.slots:
                self._execute(job, gpus)
        finally:
            with self.lock:
                self.free_gpus.extend(gpus)
                self.gpu_freed.notify_all()

    def _execute(self, job: Job, gpus: list[str]) -> None:
        with self.lock:
            if job.removed:
                self._finish(job, removed=True)
                return
            job.status, job.entered, job.gpus = 2, int(time.time()), gpus
            self._event(job, f"001 ({job.cluster:03d}.000.000) {self._now()} Job executing on host: {HOST}\n")
        sandbox = self.execute_root / f"dir_{job.cluster}"
        sandbox.mkdir(parents=True)
        env = self._environment(job)
        env.update({"_CONDOR_SCRATCH_DIR": str(sandbox), "TMPDIR": str(sandbox / "tmp"), "BATCH_SYSTEM": "HTCondor",
                    "OMP_NUM_THREADS": job.submit.get("request_cpus", "1")})
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = env["_CONDOR_AssignedGPUs"] = ",".join(gpus)
        (sandbox / "tmp").mkdir()
        rc, sig = None, None
        try:
            if self.kerberos_pushed is not None and truthy(job.submit.get("MY.SendCredential", "false")):
                (sandbox / ".condor_creds").mkdir()
                (sandbox / ".condor_creds" / "krb5cc").write_bytes(self.kerberos_pushed)
                env["KRB5CCNAME"] = f"FILE:{sandbox / '.condor_creds' / 'krb5cc'}"
            proxy = x509_proxy(job.submit, self.submitter_env)
            if proxy is not None:
                shutil.copy2(proxy, sandbox / proxy.name)
                env["X509_USER_PROXY"] = str(sandbox / proxy.name)
            if job.submit.get("should_transfer_files", "").strip('"').upper() == "YES":
                self._transfer_in(job, sandbox)
            # the job's ClassAd, as the starter writes it (a few of its attributes)
            (sandbox / ".job.ad").write_text("".join(f"{name} = {value}\n" for name, value in (
                ("ClusterId", job.cluster), ("ProcId", 0), ("Iwd", f'"{job.iwd}"'),
                ("RequestCpus", job.submit.get("request_cpus", "1")), ("RequestGPUs", len(gpus)),
                ("TransferInput", f'"{job.submit.get("transfer_input_files", "")}"'),
                ("TransferOutput", f'"{job.submit.get("transfer_output_files", "")}"'))))
            env["_CONDOR_JOB_AD"] = str(sandbox / ".job.ad")
            executable = job.expand(job.submit["executable"].strip('"'))
            if truthy(job.submit.get("transfer_executable", "true")):
                # the starter runs a copy of the executable from the sandbox
                source = executable if os.path.isabs(executable) else os.path.join(job.iwd, executable)
                if not os.path.isfile(source):
                    raise Held(13, f"Transfer input files failure: executable {source}: (errno 2) No such file")
                shutil.copy2(source, sandbox / "condor_exec.exe")
                executable = str(sandbox / "condor_exec.exe")
            elif not os.path.isabs(executable):  # run in place: relative to the sandbox, where nothing is
                executable = str(sandbox / executable)
            argv = [executable, *parse_arguments(job.submit.get("arguments", ""))]
            job.argv, job.env_keys, job.ran_in = argv, sorted(env), str(sandbox)
            job.env_seen = {k: env[k] for k in SEEN if k in env}
            job.sandbox_files = sorted(str(f.relative_to(sandbox)) for f in sandbox.rglob("*") if f.is_file())
            stdout = job.path("output") or os.devnull
            stderr = job.path("error") or os.devnull
            with open(stdout, "wb") as out, open(stderr, "wb") as err:
                try:
                    proc = subprocess.Popen([*self.hide_prefix, "/bin/sh", "-c", HIDE_SUBMIT_DIR, job.iwd, str(sandbox),
                                             *argv], cwd=sandbox, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                            stderr=err, start_new_session=True)
                except OSError as exc:
                    err.write(f"fake_schedd: cannot execute: {exc}\n".encode())
                    raise Held(6, f"Error from starter: failed to execute {argv[0]}: {exc}") from None
                with self.lock:
                    job.proc = proc
                returncode = proc.wait()
            if returncode < 0:
                sig = -returncode
            else:
                rc = returncode
            if not job.removed and job.submit.get("should_transfer_files", "").strip('"').upper() == "YES":
                self._transfer_out(job, sandbox)  # ON_EXIT: whatever the exit code
        except Held as held:
            with self.lock:
                self._hold(job, held)
            return
        finally:
            shutil.rmtree(sandbox, ignore_errors=True)
        with self.lock:
            self._finish(job, removed=job.removed, exit_code=rc, exit_signal=sig)

    def _transfer_in(self, job: Job, sandbox: Path) -> None:
        keep_paths = truthy(job.submit.get("preserve_relative_paths", "false"))
        for name in file_list(job.submit.get("transfer_input_files", "")):
            source = Path(name if os.path.isabs(name) else os.path.join(job.iwd, name))
            if not source.exists():
                raise Held(13, f"Transfer input files failure at access point while sending files to the execution "
                               f"point: reading from file {source}: (errno 2) No such file or directory")
            target = sandbox / (name if keep_paths and not os.path.isabs(name) else source.name)
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, target, dirs_exist_ok=True, symlinks=True)
            else:
                shutil.copy2(source, target)

    def _transfer_out(self, job: Job, sandbox: Path) -> None:
        remaps = {}
        for pair in job.submit.get("transfer_output_remaps", "").strip('"').split(";"):
            if "=" in pair:
                src, dst = (p.strip() for p in pair.split("=", 1))
                remaps[src] = dst
        names = file_list(job.submit.get("transfer_output_files", ""))
        missing = [name for name in names if not (sandbox / name).exists()]
        if missing:
            raise Held(12, f"Transfer output files failure at execution point while sending files to access point: "
                           f"reading from file {sandbox / missing[0]}: (errno 2) No such file or directory")
        for name in names:
            source = sandbox / name
            target = Path(remaps.get(name, os.path.join(job.iwd, name)))
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, target, dirs_exist_ok=True)
            else:
                shutil.copy2(source, target)

    def _hold(self, job: Job, held: Held) -> None:
        job.status, job.entered, job.hold = 5, int(time.time()), held
        self._event(job, f"012 ({job.cluster:03d}.000.000) {self._now()} Job was held.\n\t{held.reason}\n"
                         f"\tCode {held.code} Subcode 2\n")
        self._save(job)

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


class FakeCredd:
    """htcondor2.Credd as lxplus's: add_user_cred(Kerberos, None) runs the credential producer (reads the ticket
    cache)."""

    def __init__(self, *args, **kwargs):
        assert POOL is not None, "install() first"
        self.pool = POOL

    def add_user_cred(self, credtype, credential, user=None) -> None:
        if str(getattr(credtype, "name", credtype)) != "Kerberos":
            raise NotImplementedError(f"fake credd: credential type {credtype}")
        self.pool.add_user_cred(credential)


def install(record: Path, slots: int = 2, event_log: bool = True, gpus: int = 2, gpu_capability: float = 8.0) -> Pool:
    """Replace htcondor2's schedd and credd by the fake (issue_credentials, for OAuth services, does nothing)."""
    global POOL
    os.environ.setdefault("CONDOR_CONFIG", os.devnull)  # no pool configuration: the bindings need none here
    import htcondor2

    POOL = Pool(record, slots, event_log, gpus, gpu_capability)
    htcondor2.Schedd = FakeSchedd
    htcondor2.Credd = FakeCredd
    htcondor2.Submit.issue_credentials = lambda self: None
    return POOL


def main(argv: list[str]) -> int:
    if "--" not in argv:
        sys.exit("usage: fake_schedd.py --record DIR [options] -- <snakemake arguments>")
    split = argv.index("--")
    parser = argparse.ArgumentParser(prog="fake_schedd.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--record", type=Path, required=True, help="where the submit descriptions go")
    parser.add_argument("--slots", type=int, default=2, help="jobs running at once")
    parser.add_argument("--gpus", type=int, default=2, help="GPUs in the pool")
    parser.add_argument("--gpu-capability", type=float, default=8.0, help="their CUDA compute capability")
    parser.add_argument("--no-event-log", dest="event_log", action="store_false",
                        help="write no user log: status only through query()/history()")
    opts = parser.parse_args(argv[:split])
    pool = install(opts.record.resolve(), opts.slots, opts.event_log, opts.gpus, opts.gpu_capability)
    print(f"fake_schedd: {socket.gethostname()}, {opts.slots} slots, {opts.gpus} GPUs, jobs in sandboxes under "
          f"{pool.execute_root}, event log {'on' if opts.event_log else 'off'}, submissions recorded in {opts.record}",
          file=sys.stderr)
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
