#!/bin/sh
# The Ferry image's entrypoint for a Kubernetes Indexed Job: the pod's completion index
# (JOB_COMPLETION_INDEX, 0-based) becomes `ferry batch run --shard INDEX+1/FERRY_SHARDS`,
# and the shard's JSON and JUnit reports land in FERRY_REPORTS (merge them afterwards with
# `ferry batch report --json all.json --junit all.xml FERRY_REPORTS/shard-*.json`).
#
# Environment:
#   JOB_COMPLETION_INDEX  set by Kubernetes for an Indexed Job (0 .. completions-1)
#   FERRY_SHARDS          the Job's completions (the number of shards)
#   FERRY_MANIFEST        the batch manifest (default /manifest/manifest.toml)
#   FERRY_REPORTS         the report directory (default /data/out/reports)
#   FERRY_JOBS            VMs converted at once in this pod (default: from cores and memory)
#   FERRY                 the ferry binary (default: ferry on PATH)
set -eu
index="${JOB_COMPLETION_INDEX:?JOB_COMPLETION_INDEX is not set (run as an Indexed Job)}"
shards="${FERRY_SHARDS:?FERRY_SHARDS is not set (the Job's completions)}"
case "$index$shards" in
*[!0-9]*) echo "entrypoint: JOB_COMPLETION_INDEX=$index FERRY_SHARDS=$shards: not numbers" >&2; exit 2 ;;
esac
shard=$((index + 1))
manifest="${FERRY_MANIFEST:-/manifest/manifest.toml}"
reports="${FERRY_REPORTS:-/data/out/reports}"
mkdir -p "$reports"
set -- batch run --shard "$shard/$shards" --report "$reports/shard-$shard.json" --junit "$reports/shard-$shard.xml"
if [ -n "${FERRY_JOBS:-}" ]; then
    set -- "$@" --jobs "$FERRY_JOBS"
fi
exec "${FERRY:-ferry}" "$@" "$manifest"
