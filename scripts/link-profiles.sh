#!/bin/sh
# Make `snakemake --profile local|slurm|htcondor` work as typed: link this checkout's profiles/<name> into
# Snakemake's user profile folder (${XDG_CONFIG_HOME:-~/.config}/snakemake/<name>). A profile of that name that
# is the user's own is left alone (use --profile profiles/<name> then); a link to another checkout's profiles
# of this project is moved to this one. Run by `make install`; safe to run again.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
dest="${XDG_CONFIG_HOME:-$HOME/.config}/snakemake"
mkdir -p "$dest"
for name in local slurm htcondor; do
    source="$here/profiles/$name"
    target="$dest/$name"
    if [ -L "$target" ]; then
        current=$(readlink "$target")
        [ "$current" = "$source" ] && continue
        case "$current" in
            */profiles/"$name")
                if [ -f "$current/../../src/gnnjec/__init__.py" ] || [ ! -e "$current" ]; then
                    ln -sfn "$source" "$target"
                    echo "link-profiles: --profile $name now uses $source (was $current)"
                    continue
                fi ;;
        esac
    fi
    if [ -e "$target" ] || [ -L "$target" ]; then
        echo "link-profiles: kept your own $target; for this project's use --profile profiles/$name" >&2
        continue
    fi
    ln -s "$source" "$target"
    echo "link-profiles: --profile $name -> $source"
done
