#!/usr/bin/env bash
# Stop the single-node SLURM test cluster started by .ci/slurm/start.sh STATE_DIR.
#
# Usage: .ci/slurm/stop.sh STATE_DIR
#
# Stops exactly the daemons recorded in STATE_DIR/pids/*.pid (slurmd, slurmctld, munged, in that
# order): SIGTERM, wait up to 10 s for a real exit (a zombie counts as exited), then SIGKILL.
# A pid whose process is now a different program (pid reused) is left alone. Jobs still queued
# or running on the cluster are cancelled first with scancel so no job step outlives it.
# Never kills by name. Safe to run twice (the second run finds nothing to stop).
set -euo pipefail

log() { printf '[slurm-stop] %s\n' "$*"; }

if [[ $# -ne 1 || -z $1 ]]; then
    echo "usage: $0 STATE_DIR" >&2
    exit 2
fi
STATE_DIR=$(realpath -m -- "$1")
PID_DIR=$STATE_DIR/pids
GRACE=${SLURM_CI_STOP_GRACE:-10}

if [[ ! -d $PID_DIR ]]; then
    log "nothing to stop: no $PID_DIR"
    exit 0
fi

# Prints the state letter of PID (R, S, D, Z, ...) or nothing if there is no such process.
proc_state() {
    local stat rest
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
    rest=${stat##*) }
    printf '%s' "${rest%% *}"
}
# Running = exists and is not a zombie (an exited daemon whose parent has not reaped it yet).
pid_running() {
    local s
    s=$(proc_state "$1")
    [[ -n $s && $s != Z && $s != X ]]
}
proc_comm() { cat "/proc/$1/comm" 2>/dev/null || true; }

read_pid() {
    local f=$1 pid
    [[ -f $f ]] || return 1
    pid=$(tr -dc '0-9' <"$f")
    [[ -n $pid ]] || return 1
    printf '%s' "$pid"
}

# Cancel remaining jobs while slurmctld is still up, so their slurmstepd/job processes end too.
if [[ -f $STATE_DIR/slurm.conf ]] && pid=$(read_pid "$PID_DIR/slurmctld.pid") && pid_running "$pid" \
    && command -v squeue >/dev/null; then
    export SLURM_CONF=$STATE_DIR/slurm.conf
    mapfile -t jobs < <(timeout 10 squeue -h -t pending,running,suspended,completing -o %i 2>/dev/null || true)
    if ((${#jobs[@]})); then
        log "cancelling ${#jobs[@]} unfinished job(s): ${jobs[*]}"
        timeout 10 scancel "${jobs[@]}" 2>/dev/null || true
        for ((i = 0; i < GRACE * 5; i++)); do
            left=$(timeout 10 squeue -h -t pending,running,suspended,completing -o %i 2>/dev/null || true)
            [[ -z $left ]] && break
            sleep 0.2
        done
        [[ -z ${left:-} ]] || log "jobs still not finished after ${GRACE} s: $left"
    fi
fi

stopped=0
for name in slurmd slurmctld munged; do
    f=$PID_DIR/$name.pid
    [[ -e $f ]] || continue
    if ! pid=$(read_pid "$f"); then
        log "$name: unreadable pid file $f, removed"
        rm -f -- "$f"
        continue
    fi
    if ! pid_running "$pid"; then
        log "$name (pid $pid) was not running"
        rm -f -- "$f"
        continue
    fi
    comm=$(proc_comm "$pid")
    if [[ $comm != "$name" ]]; then
        log "$name: pid $pid is now '$comm', not $name (pid reused?); leaving it alone"
        rm -f -- "$f"
        continue
    fi
    kill -TERM "$pid" 2>/dev/null || true
    how=TERM
    for ((i = 0; i < GRACE * 10; i++)); do
        pid_running "$pid" || break
        sleep 0.1
    done
    if pid_running "$pid"; then
        log "$name (pid $pid) still running after ${GRACE} s; sending KILL"
        kill -KILL "$pid" 2>/dev/null || true
        how=KILL
        for ((i = 0; i < 50; i++)); do
            pid_running "$pid" || break
            sleep 0.1
        done
    fi
    if pid_running "$pid"; then
        log "ERROR: $name (pid $pid) is still running (state $(proc_state "$pid"))"
        exit 1
    fi
    log "stopped $name (pid $pid, SIG$how)"
    rm -f -- "$f"
    stopped=$((stopped + 1))
done

# Unexpected pid files (not written by start.sh): report them, touch nothing.
for f in "$PID_DIR"/*.pid; do
    [[ -e $f ]] || continue
    log "left alone: unknown pid file $f"
done

log "stopped $stopped daemon(s) of $STATE_DIR"
