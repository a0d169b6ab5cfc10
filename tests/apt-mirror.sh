#!/usr/bin/env bash
# Prints the mirror URI apt is configured to fetch suite CODENAME from (default: this
# system's codename), as apt itself parsed sources.list and sources.list.d (one-line or
# deb822). Used by tests/run.sh to add a backports line without naming any host itself.
# Needs apt's lists (apt-get update) to be present. Exits 1 when no source serves CODENAME.
set -euo pipefail
codename=${1:-$(. /etc/os-release && echo "${VERSION_CODENAME:-}")}
mirror=$(apt-get indextargets --format '$(RELEASE) $(REPO_URI)' 'Created-By: Packages' |
  awk -v c="$codename" '$1 == c { print $2; exit }')
if [ -z "$mirror" ]; then
  echo "tests/apt-mirror.sh: no apt source serves ${codename:-this release} (run apt-get update?)" >&2
  exit 1
fi
echo "$mirror"
