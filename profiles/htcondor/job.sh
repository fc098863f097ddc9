#!/bin/sh
# One Snakemake job on an HTCondor execute point, run from the sandbox HTCondor started it in (profiles/htcondor
# sets this as the job_wrapper; its arguments are snakemake's). GNNJEC_PYTHON is the Python that ran snakemake on
# the submit node, by absolute path, on a filesystem the workers mount (AFS, EOS, CVMFS): the project's environment.

# HTCondor holds a job whose listed outputs are missing, and then nothing comes back, not even the rule's log.
# A failed job has none of its outputs: leave empty placeholders in their place, so that the log comes back
# with them; the submitting snakemake reports the job's exit status and removes a failed job's outputs.
placeholders() {
    [ -n "${_CONDOR_JOB_AD:-}" ] && [ -f "$_CONDOR_JOB_AD" ] || return 0
    listed=$(sed -n 's/^TransferOutput *= *"\(.*\)" *$/\1/p' "$_CONDOR_JOB_AD")
    old_ifs=$IFS
    IFS=,
    for name in $listed; do
        name=$(echo "$name" | sed 's/^ *//; s/ *$//')
        if [ -n "$name" ] && [ ! -e "$name" ]; then
            mkdir -p "$(dirname "$name")" && : > "$name"
        fi
    done
    IFS=$old_ifs
}

# transferred back whole (the profile's htcondor_transfer_output_files), so there even if the job stops here
mkdir -p results/logs results/benchmarks

# the plugin passes environment values in HTCondor's old syntax, where quotes are kept: they are dropped here
python=${GNNJEC_PYTHON#\"}
python=${python%\"}
if [ -z "$python" ] || [ ! -x "$python" ]; then
    echo "profiles/htcondor/job.sh: GNNJEC_PYTHON '$python' is not an executable on $(hostname); put the project's" \
         "environment on a path the workers mount (AFS, EOS, CVMFS) and submit from it (docs/htcondor.md)" >&2
    placeholders
    exit 2
fi
PATH="${python%/*}:${PATH:-/usr/bin:/bin}"
export PATH
"$python" -m snakemake "$@"
status=$?
[ "$status" -eq 0 ] || placeholders
exit "$status"
