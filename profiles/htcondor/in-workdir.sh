#!/bin/sh
# HTCondor job_wrapper for pools that start jobs in a sandbox (see docs/htcondor.md): run the job in the
# working directory the workflow was submitted from (GNNJEC_WORKDIR, set by the profile's environment line).
cd "$GNNJEC_WORKDIR" || exit 1
exec "$@"
