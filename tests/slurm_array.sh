#!/usr/bin/env bash
# ctest: pipelines/slurm/heatmap-array.sbatch on a real single-node Slurm started here: munged and
# slurmctld/slurmd from Debian's packages, on their own ports, config, key and spool under a
# scratch directory (nothing in /etc is touched), as root. The heatmap array (2 shards) and then a
# dataset (--extract array, and the merge queued behind it with --dependency=afterany) must finish
# with every slide done and one manifest per shard. Exit 77 (skipped) without the packages or
# without root (a failure under CI=true); tools/setup.sh test installs them.
#   tests/slurm_array.sh WSI_HEATMAP SOURCE_DIR
set -euo pipefail
cli=$(readlink -f "$1") src=$(readlink -f "$2")
# A missing prerequisite skips the test, except under CI=true (.ci/run), where it fails.
missing() {
  if [ "${CI:-}" = true ]; then echo "FAILED (CI=true): $*" >&2; exit 1; fi
  echo "SKIPPED: $*"; exit 77
}
for p in munged mungekey slurmctld slurmd sbatch sinfo squeue; do
  command -v "$p" >/dev/null || missing "$p is not installed (Debian: slurmctld slurmd slurm-client munge)"
done
[ "$(id -u)" -eq 0 ] || missing "starting slurmd needs root"

work=$(mktemp -d "${TMPDIR:-/tmp}/wsi-slurm.XXXXXX")
chmod 755 "$work"
pids=()
mounted_cgroup=
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 1
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  [ -z "$mounted_cgroup" ] || umount "$mounted_cgroup" 2>/dev/null || umount -l "$mounted_cgroup" 2>/dev/null || true
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT
# The cluster itself cannot start here (a container without the needed privileges, ...): that is
# the machine, not the script under test, so the test is skipped with the reason.
no_cluster() {
  echo "SKIPPED: a single-node Slurm cannot start here: $*"
  for f in "$work"/log/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -5 "$f"; }; done
  exit 77
}
fail() {
  echo "FAILED: $*" >&2
  for f in "$work"/log/*.log "$work"/out*/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -20 "$f"; }; done >&2
  exit 1
}

# Ports from the PID, so two runs on one machine do not meet.
port=$((20000 + ($$ % 20000)))
host=$(hostname -s 2>/dev/null || hostname)
mkdir -p "$work/munge" "$work/log" "$work/state" "$work/spool"
chmod 700 "$work/munge"
mungekey --create --keyfile="$work/munge/munge.key" >/dev/null 2>&1 || no_cluster "mungekey failed"
munged --force --key-file="$work/munge/munge.key" --socket="$work/munge/munge.sock" \
  --pid-file="$work/munge/munged.pid" --log-file="$work/log/munged.log" --seed-file="$work/munge/seed" \
  >/dev/null 2>&1 || no_cluster "munged did not start"
pids+=("$(cat "$work/munge/munged.pid")")

# slurmd initialises its cgroup plugin even with proctrack/linuxproc and task/none, and refuses to
# start where /sys/fs/cgroup holds no file system (a chroot). There it gets an empty tmpfs of its
# own, declared a cgroup v1 tree in cgroup.conf, which no plugin configured here uses.
if ! awk '$2 == "/sys/fs/cgroup" {found = 1} END {exit !found}' /proc/mounts; then
  mkdir -p "$work/cgroup"
  mount -t tmpfs -o size=1m wsi-slurm-cgroup "$work/cgroup" || no_cluster "/sys/fs/cgroup is not mounted and no stand-in can be"
  mounted_cgroup=$work/cgroup
  printf 'CgroupPlugin=cgroup/v1\nCgroupMountpoint=%s\n' "$work/cgroup" >"$work/cgroup.conf"
fi

cpus=$(nproc)
cat >"$work/slurm.conf" <<CONF
ClusterName=wsitest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$work/munge/munge.sock
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/log/slurmctld.log
SlurmdLogFile=$work/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
SchedulerType=sched/builtin
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$work/slurm.conf
slurmctld -i >/dev/null 2>&1 || no_cluster "slurmctld did not start"
for _ in $(seq 50); do [ -s "$work/slurmctld.pid" ] && break; sleep 0.2; done
pids+=("$(cat "$work/slurmctld.pid")")
slurmd -N "$host" >/dev/null 2>&1 || no_cluster "slurmd did not start"
for _ in $(seq 50); do [ -s "$work/slurmd.pid" ] && break; sleep 0.2; done
pids+=("$(cat "$work/slurmd.pid")")
for _ in $(seq 60); do
  sinfo -h -o %t 2>/dev/null | grep -qE '^(idle|mix)' && break
  sleep 0.5
done
sinfo -h -o %t | grep -qE '^(idle|mix)' || no_cluster "the node never became idle ($(sinfo -h 2>&1))"

# Slides with masks.
mkdir -p "$work/slides" "$work/masks"
for i in 1 2 3; do
  "$cli" synth --out "$work/slides/case $i.tif" --mask "$work/masks/case $i.mask.tif" --size 2048x2048 \
    --mpp 0.5 --seed "$i" --tumours 1 >/dev/null || fail "synth failed"
done

# wait_jobs ID...: until the jobs have left the queue.
wait_jobs() {
  for _ in $(seq 600); do
    [ -z "$(squeue -h -j "$(IFS=,; echo "$*")" 2>/dev/null)" ] && return 0
    sleep 1
  done
  fail "jobs $* did not finish in 10 minutes"
}

# 1. Heatmaps: a 2-task array, one shard each.
cd "$work"
job=$(WSI_HEATMAP=$cli WSI_ARGS="--no-gradcam" WSI_TIMEOUT=600 \
  sbatch --parsable --array=1-2 --cpus-per-task=1 --mem=0 --output="$work/out-heatmap-%a.log" \
  "$src/pipelines/slurm/heatmap-array.sbatch" "$work/slides" "$work/heatmaps") || fail "sbatch refused the array"
wait_jobs "$job"
[ -f "$work/heatmaps/manifest.shard-1-of-2.json" ] && [ -f "$work/heatmaps/manifest.shard-2-of-2.json" ] ||
  fail "each shard should write its manifest ($(ls "$work/heatmaps" 2>&1 | tr '\n' ' '))"
done_slides=$(cat "$work"/heatmaps/manifest.shard-*.csv | grep -c ',done,' || true)
[ "$done_slides" -eq 3 ] || { cat "$work"/heatmaps/manifest.shard-*.csv; fail "3 slides should be done over both shards, not $done_slides"; }
for i in 1 2 3; do
  [ -f "$work/heatmaps/case_$i/case_$i.prob.tif" ] || fail "missing heatmaps/case_$i/case_$i.prob.tif"
done

# 2. A dataset: the --extract array, then the merge queued behind it.
opts="--extract --mask $work/masks/{stem}.mask.tif --split train=0.5,test=0.5 --balance undersample"
job=$(WSI_HEATMAP=$cli WSI_ARGS="$opts" sbatch --parsable --array=1-2 --cpus-per-task=1 --mem=0 \
  --output="$work/out-extract-%a.log" "$src/pipelines/slurm/heatmap-array.sbatch" "$work/slides" "$work/dataset-run") ||
  fail "sbatch refused the extract array"
merge=$(sbatch --parsable --dependency="afterany:$job" --mem=0 --output="$work/out-merge.log" \
  --wrap "'$cli' batch '$work/slides' -o '$work/dataset-run' --merge-only $opts") || fail "sbatch refused the merge"
wait_jobs "$job" "$merge"
[ -f "$work/dataset-run/dataset/patches_summary.json" ] || fail "the merge job left no dataset"
grep -q 'from 3 slides' "$work/out-merge.log" || fail "the merge should take the 3 slides of both shards"
echo "slurm: heatmap array (2 shards) and extract array + dependent merge finished as expected"
