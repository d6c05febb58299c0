#!/usr/bin/env bash
# Start a throw-away single-node SLURM cluster (munged + slurmctld + slurmd) on loopback.
#
# Usage: .ci/slurm/start.sh STATE_DIR
#
# Everything (configs, munge key, state, spool, logs, pid files, fake GPU devices) lives in
# STATE_DIR. Afterwards `source STATE_DIR/env.sh` points the SLURM client tools at the cluster,
# and `.ci/slurm/stop.sh STATE_DIR` stops exactly the daemons recorded in STATE_DIR/pids.
#
# Optional environment:
#   SLURM_CI_CTLD_PORT   slurmctld port (default 6817)
#   SLURM_CI_SLURMD_PORT slurmd port    (default 6818)
#   SLURM_CI_TIMEOUT     seconds to wait for the node to become idle (default 60)
#   SLURM_CI_NO_INSTALL  if set to 1, never call apt-get (fail if packages are missing)
#
# Needs root (daemons run as root, munged as user munge). Designed for Debian 12 CI machines
# without systemd/cgroups: proctrack/linuxproc, no accounting database.
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
PACKAGES=(slurmctld slurmd slurm-client munge)
MARKER=.slurm-ci-state
CTLD_PORT=${SLURM_CI_CTLD_PORT:-6817}
SLURMD_PORT=${SLURM_CI_SLURMD_PORT:-6818}
TIMEOUT=${SLURM_CI_TIMEOUT:-60}

log() { printf '[slurm-start] %s\n' "$*" >&2; }
die() { printf '[slurm-start] ERROR: %s\n' "$*" >&2; exit 1; }

if [[ $# -ne 1 || -z $1 ]]; then
    echo "usage: $0 STATE_DIR" >&2
    exit 2
fi
[[ $(id -u) -eq 0 ]] || die "must run as root (starts slurmd/slurmctld and munged as user munge)"

# --- packages ---------------------------------------------------------------------------------
pkg_installed() {
    [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true) == installed ]]
}
missing=()
for p in "${PACKAGES[@]}"; do
    pkg_installed "$p" || missing+=("$p")
done
if ((${#missing[@]})); then
    [[ ${SLURM_CI_NO_INSTALL:-0} != 1 ]] || die "missing packages: ${missing[*]} (SLURM_CI_NO_INSTALL=1)"
    log "installing ${missing[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
for cmd in munged slurmctld slurmd sinfo; do
    command -v "$cmd" >/dev/null || die "$cmd not found after installing ${PACKAGES[*]}"
done
id munge >/dev/null 2>&1 || die "user munge does not exist (the munge package should create it)"

# --- state directory --------------------------------------------------------------------------
STATE_DIR=$(realpath -m -- "$1")
PID_DIR=$STATE_DIR/pids

# Is the process recorded in a pid file still running (not gone, not a zombie)?
pid_running() {
    local pid=$1 stat rest state
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    rest=${stat##*) }          # the field after "(comm) " is the state
    state=${rest%% *}
    [[ $state != Z && $state != X ]]
}

if [[ -d $STATE_DIR ]]; then
    if [[ -d $PID_DIR ]]; then
        for f in "$PID_DIR"/*.pid; do
            [[ -e $f ]] || continue
            pid=$(tr -dc '0-9' <"$f")
            # (a pid reused by an unrelated program does not count)
            if pid_running "$pid" && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$(basename "$f" .pid)" ]]; then
                die "$STATE_DIR already has a running daemon ($(basename "$f" .pid), pid $pid); run .ci/slurm/stop.sh $STATE_DIR first"
            fi
        done
    fi
    if [[ -n $(ls -A -- "$STATE_DIR") && ! -e $STATE_DIR/$MARKER ]]; then
        die "$STATE_DIR exists, is not empty and was not made by this script; refusing to use it"
    fi
    # Stale state of an earlier cluster: wipe it (job ids restart at 1).
    find "$STATE_DIR" -mindepth 1 -maxdepth 1 -exec rm -rf -- {} +
fi
mkdir -p -- "$STATE_DIR"
touch "$STATE_DIR/$MARKER"
# munged runs as user munge and must reach its files below STATE_DIR (mktemp -d makes 0700).
chmod 0755 "$STATE_DIR"
if ! runuser -u munge -- test -x "$STATE_DIR"; then
    die "user munge cannot enter $STATE_DIR (a parent directory is not world-searchable); use a STATE_DIR under /tmp"
fi

# Is a TCP port already listened on (another cluster, or a system slurmctld/slurmd)?
port_in_use() {
    local hex
    hex=$(printf '%04X' "$1")
    awk -v p=":$hex" 'NR > 1 && $4 == "0A" && substr($2, length($2) - 4) == p { found = 1 }
        END { exit !found }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}
for port in "$CTLD_PORT" "$SLURMD_PORT"; do
    if port_in_use "$port"; then
        die "TCP port $port is already in use (another SLURM cluster running?); stop it, or set SLURM_CI_CTLD_PORT / SLURM_CI_SLURMD_PORT"
    fi
done

CONF=$STATE_DIR/slurm.conf
GRES_CONF=$STATE_DIR/gres.conf
LOG_DIR=$STATE_DIR/log
MUNGE_DIR=$STATE_DIR/munge
MUNGE_SOCKET=$MUNGE_DIR/run/munge.socket.2
mkdir -p "$PID_DIR" "$LOG_DIR" "$STATE_DIR/ctld" "$STATE_DIR/spool" "$STATE_DIR/run" "$STATE_DIR/dev"

# If anything below fails, stop what was started so nothing is left running.
started_ok=0
on_exit() {
    local rc=$?
    if [[ $started_ok -ne 1 ]]; then
        log "start failed (exit $rc); stopping anything that was started"
        "$SCRIPT_DIR/stop.sh" "$STATE_DIR" >&2 || true
    fi
}
trap on_exit EXIT

show_logs() {
    local f
    for f in "$LOG_DIR"/munged.log "$LOG_DIR"/slurmctld.log "$LOG_DIR"/slurmd.log; do
        [[ -s $f ]] || continue
        echo "----- tail -n 25 $f -----" >&2
        tail -n 25 -- "$f" >&2
    done
}

# --- munge ------------------------------------------------------------------------------------
mkdir -p "$MUNGE_DIR/etc" "$MUNGE_DIR/run" "$MUNGE_DIR/lib" "$MUNGE_DIR/log"
dd if=/dev/urandom of="$MUNGE_DIR/etc/munge.key" bs=1024 count=1 status=none
chown -R munge:munge "$MUNGE_DIR"
chmod 0700 "$MUNGE_DIR/etc" "$MUNGE_DIR/lib" "$MUNGE_DIR/log"
chmod 0755 "$MUNGE_DIR" "$MUNGE_DIR/run"   # clients (root and job users) connect to the socket
chmod 0400 "$MUNGE_DIR/etc/munge.key"
# munged checks the permissions of the directories holding its files: keep its log inside the
# munge-owned directory and link it into log/ next to the slurm logs.
ln -s "$MUNGE_DIR/log/munged.log" "$LOG_DIR/munged.log"

# --- fake GPUs + configs ----------------------------------------------------------------------
for i in 0 1; do
    mknod "$STATE_DIR/dev/gpu$i" c 1 3   # same device numbers as /dev/null
    chmod 0666 "$STATE_DIR/dev/gpu$i"
done

# Hardware as slurmd sees it, e.g. "CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2
# ThreadsPerCore=1 RealMemory=24105" (first line of `slurmd -C`, without NodeName=).
hw=$(slurmd -C 2>/dev/null | head -n 1 | sed -e 's/^NodeName=[^ ]* *//')
[[ $hw == *CPUs=* ]] || die "could not read the hardware from 'slurmd -C' (got: $hw)"
# With CR_Core_Memory a job without --mem would get the whole node's memory and block every other
# job; give each CPU an equal share by default instead.
cpus=$(sed -n 's/.*\bCPUs=\([0-9]*\).*/\1/p' <<<"$hw")
mem=$(sed -n 's/.*\bRealMemory=\([0-9]*\).*/\1/p' <<<"$hw")
def_mem=$(( ${mem:-0} / ${cpus:-1} ))
((def_mem > 0)) || def_mem=100

cat >"$CONF" <<EOF
# Generated by .ci/slurm/start.sh for a single-node test cluster on loopback.
ClusterName=ci
SlurmctldHost=localhost
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET

StateSaveLocation=$STATE_DIR/ctld
SlurmdSpoolDir=$STATE_DIR/spool
SlurmctldPidFile=$STATE_DIR/run/slurmctld.pid
SlurmdPidFile=$STATE_DIR/run/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info

ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$LOG_DIR/jobcomp.txt
ReturnToService=2
MailProg=/bin/true
MpiDefault=none
MinJobAge=600
SchedulerType=sched/backfill
# default batch_sched_delay=3 makes every batch job wait ~3 s before it is scheduled
SchedulerParameters=batch_sched_delay=0

GresTypes=gpu
NodeName=localhost NodeAddr=127.0.0.1 $hw Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE DefMemPerCPU=$def_mem State=UP
EOF

cat >"$GRES_CONF" <<EOF
# Two fake GPUs (character devices 1:3, i.e. /dev/null) so GPU jobs can be scheduled.
AutoDetect=off
NodeName=localhost Name=gpu File=$STATE_DIR/dev/gpu0
NodeName=localhost Name=gpu File=$STATE_DIR/dev/gpu1
EOF

# Client wrappers: Snakemake's slurm-jobstep executor removes every SLURM_* variable (SLURM_CONF
# included) before it calls `srun` inside a job, and srun then finds no configuration (there is no
# /etc/slurm/slurm.conf). PATH survives, so env.sh puts these wrappers first on PATH; they set
# SLURM_CONF only when it is missing.
mkdir -p "$STATE_DIR/bin"
for tool in srun sbatch salloc squeue scancel scontrol sinfo sacct sattach sstat sprio sshare sdiag; do
    real=$(PATH=/usr/bin:/bin:/usr/sbin:/sbin command -v "$tool" || true)
    [[ -n $real ]] || continue
    cat >"$STATE_DIR/bin/$tool" <<EOF
#!/bin/sh
# generated by .ci/slurm/start.sh: use the test cluster's config when SLURM_CONF is not set
if [ -z "\${SLURM_CONF:-}" ]; then SLURM_CONF=$(printf '%q' "$CONF"); export SLURM_CONF; fi
exec $real "\$@"
EOF
    chmod 0755 "$STATE_DIR/bin/$tool"
done

cat >"$STATE_DIR/env.sh" <<EOF
# source this file to use the test cluster in $STATE_DIR
export SLURM_CONF=$(printf '%q' "$CONF")
# wrappers that restore SLURM_CONF for srun inside Snakemake jobs (see start.sh)
export PATH=$(printf '%q' "$STATE_DIR/bin"):\$PATH
# the munge socket of this cluster (slurm reads it from AuthInfo in slurm.conf; this is for
# the munge/unmunge command line tools)
export SLURM_CI_MUNGE_SOCKET=$(printf '%q' "$MUNGE_SOCKET")
export SLURM_CI_STATE_DIR=$(printf '%q' "$STATE_DIR")
EOF

# --- start the daemons ------------------------------------------------------------------------
# wait_pidfile SRC NAME: wait until the daemon wrote SRC, then record it as pids/NAME.pid.
wait_pidfile() {
    local src=$1 name=$2 i pid
    for ((i = 0; i < 100; i++)); do
        if [[ -s $src ]]; then
            pid=$(tr -dc '0-9' <"$src")
            if [[ -n $pid ]]; then
                echo "$pid" >"$PID_DIR/$name.pid"
                log "$name running, pid $pid"
                return 0
            fi
        fi
        sleep 0.1
    done
    show_logs
    die "$name did not write its pid file $src within 10 s"
}

t0=$SECONDS
log "starting munged"
if ! runuser -u munge -- munged \
        --key-file="$MUNGE_DIR/etc/munge.key" \
        --socket="$MUNGE_SOCKET" \
        --pid-file="$MUNGE_DIR/run/munged.pid" \
        --log-file="$MUNGE_DIR/log/munged.log" \
        --seed-file="$MUNGE_DIR/lib/munged.seed" \
        </dev/null >>"$STATE_DIR/run/munged.out" 2>&1; then
    cat "$STATE_DIR/run/munged.out" >&2 || true
    show_logs
    die "munged failed to start"
fi
wait_pidfile "$MUNGE_DIR/run/munged.pid" munged

log "starting slurmctld"
if ! SLURM_CONF=$CONF slurmctld -f "$CONF" </dev/null >>"$STATE_DIR/run/slurmctld.out" 2>&1; then
    cat "$STATE_DIR/run/slurmctld.out" >&2 || true
    show_logs
    die "slurmctld failed to start"
fi
wait_pidfile "$STATE_DIR/run/slurmctld.pid" slurmctld

log "starting slurmd"
if ! SLURM_CONF=$CONF slurmd -f "$CONF" -N localhost </dev/null >>"$STATE_DIR/run/slurmd.out" 2>&1; then
    cat "$STATE_DIR/run/slurmd.out" >&2 || true
    show_logs
    die "slurmd failed to start"
fi
wait_pidfile "$STATE_DIR/run/slurmd.pid" slurmd

log "waiting (up to ${TIMEOUT} s) for node localhost to become idle"
state=""
deadline=$((SECONDS + TIMEOUT))
while :; do
    state=$(SLURM_CONF=$CONF sinfo -h -n localhost -o %t 2>/dev/null || true)
    [[ $state == idle ]] && break
    for name in munged slurmctld slurmd; do
        if ! pid_running "$(<"$PID_DIR/$name.pid")"; then
            show_logs
            die "$name exited while waiting for the node (node state: '${state}')"
        fi
    done
    if ((SECONDS >= deadline)); then
        show_logs
        die "node localhost not idle after ${TIMEOUT} s (sinfo says: '${state}')"
    fi
    sleep 0.2
done

started_ok=1
log "cluster up in $((SECONDS - t0)) s: source $STATE_DIR/env.sh"
