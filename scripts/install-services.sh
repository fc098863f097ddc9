#!/usr/bin/env bash
# Debian packages of the real services the test suite starts on loopback (XRootD server; a single-node
# SLURM cluster: munge, slurmctld, slurmd and the client commands; iproute2 and util-linux for the
# private network namespace they run in). Installs what is missing when run as root with apt-get;
# otherwise says what the tests that need them will skip. Safe to run again.
set -euo pipefail

packages=(xrootd-server munge slurmctld slurmd slurm-client iproute2 util-linux)
missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "note: not installing ${missing[*]} (needs root and apt-get); the tests that start these services will skip" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null || { echo "apt-get update failed; installing ${missing[*]} from the cached lists" >&2; }
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "installed ${missing[*]}"
