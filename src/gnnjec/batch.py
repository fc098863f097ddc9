"""What the submit node does before batch jobs go out, and what a job checks about the machine it landed on.

* HTCondor on lxplus: jobs submitted through the Python bindings (as the Snakemake plugin does) get the user's
  Kerberos credential only when the description says ``MY.SendCredential = True`` *and* the credential was
  pushed to the credd first (``htcondor2.Credd().add_user_cred``; condor_submit does this itself).
* Inputs read over XRootD (``root://``) need an X509 proxy: HTCondor sends it with the job
  (``use_x509userproxy``) from X509_USER_PROXY or /tmp/x509up_u<uid>.
* A job that was given GPUs by its batch system must use them: :func:`assigned_gpus` tells which it got.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import InputError


def kerberos_cache(env=os.environ) -> Path:
    """The Kerberos ticket cache: KRB5CCNAME (a FILE: cache) or /tmp/krb5cc_<uid>."""
    return Path(env.get("KRB5CCNAME", f"/tmp/krb5cc_{os.getuid()}").removeprefix("FILE:"))


def x509_proxy(env=os.environ) -> Path:
    """Where HTCondor (use_x509userproxy) and XRootD look for the grid proxy."""
    return Path(env.get("X509_USER_PROXY", f"/tmp/x509up_u{os.getuid()}"))


def push_kerberos_credential() -> str:
    """Store the user's Kerberos credential in the schedd's credd, as condor_submit does on lxplus; one line."""
    try:
        import htcondor2
    except ImportError:
        raise InputError("profile htcondor: the htcondor2 bindings are missing; pip install -e '.[htcondor]'") from None
    try:
        htcondor2.Credd().add_user_cred(htcondor2.CredType.Kerberos, None)
    except Exception as err:  # the bindings raise HTCondorException and others, with the daemon's words
        raise InputError(
            f"Kerberos credential ({kerberos_cache()}): the credd did not take it ({err}); run kinit (lxplus: "
            "kinit $USER@CERN.CH) and start again, or drop htcondor_submit_MY__SendCredential from the profile "
            "on a pool without a credd") from None
    return "pushed the Kerberos credential to the credd (jobs get it through MY.SendCredential)"


def check_proxy(urls: list[str], env=os.environ) -> str:
    """The proxy that jobs reading ``urls`` will get; InputError naming the fix when there is none."""
    proxy = x509_proxy(env)
    if not proxy.is_file():
        more = f" (and {len(urls) - 1} more root:// inputs)" if len(urls) > 1 else ""
        raise InputError(f"{urls[0]}{more}: no X509 proxy at {proxy} (X509_USER_PROXY); run voms-proxy-init "
                         "--voms cms --valid 192:00 and start again")
    return f"jobs reading root:// inputs get the X509 proxy {proxy}"


def before_submission(executor: str, send_credential, urls: list[str], env=os.environ) -> list[str]:
    """The submit node's part before the first job goes out (Snakefile ``onstart``), for HTCondor: the Kerberos
    credential when the jobs ask for it (``send_credential``: the profile's htcondor_submit_MY__SendCredential),
    the X509 proxy when ``urls`` are read. What was done, one line each."""
    if executor != "htcondor":
        return []
    done = []
    if str(send_credential).strip().lower() in ("true", "1", "yes"):
        done.append(push_kerberos_credential())
    if urls:
        done.append(check_proxy(urls, env))
    return done


# where batch systems say which GPUs a job was given (HTCondor, SLURM, then what both set for CUDA)
GPU_VARIABLES = ("_CONDOR_AssignedGPUs", "SLURM_STEP_GPUS", "SLURM_JOB_GPUS", "CUDA_VISIBLE_DEVICES")


def assigned_gpus(env=os.environ) -> tuple[str, str] | None:
    """(variable, value) naming the GPUs this process was given, or None when it was given none."""
    for name in GPU_VARIABLES:
        value = env.get(name, "").strip()
        if value and value not in ("-1", "NoDevFiles", "none"):
            return name, value
    return None
