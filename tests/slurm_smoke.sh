#!/usr/bin/env bash
# Smoke test of the local single-node SLURM cluster (.ci/slurm/start.sh) and of Snakemake's SLURM
# executor plugin against it. Not a pytest file: run `bash tests/slurm_smoke.sh` as root.
#
#   1. start the cluster in a temporary directory
#   2. sbatch a 1-GPU job and check it saw CUDA_VISIBLE_DEVICES
#   3. run a 1-rule Snakemake workflow (rule asks for gpu=1) through `--executor slurm`
#   4. stop the cluster (also on failure, via a trap)
#
# Environment: SNAKEMAKE (default: .venv/bin/snakemake of this repo), SLURM_SMOKE_KEEP=1 to keep the
# temporary directory, SLURM_SMOKE_TIMEOUT (seconds per job wait, default 60).
set -euo pipefail

REPO=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
SNAKEMAKE=${SNAKEMAKE:-$REPO/.venv/bin/snakemake}
JOB_TIMEOUT=${SLURM_SMOKE_TIMEOUT:-60}

say() { printf '[slurm-smoke] %s\n' "$*"; }
fail() { printf '[slurm-smoke] FAIL: %s\n' "$*" >&2; exit 1; }

[[ -x $SNAKEMAKE ]] || fail "snakemake not found at $SNAKEMAKE (set SNAKEMAKE=...)"

T_ALL=$EPOCHREALTIME
T_PHASE=$T_ALL
TIMINGS=()
# phase_done NAME: record the seconds since the last phase ended.
phase_done() {
    local now=$EPOCHREALTIME dt
    dt=$(awk -v a="$T_PHASE" -v b="$now" 'BEGIN { printf "%.1f", b - a }')
    TIMINGS+=("$(printf '%-28s %6s s' "$1" "$dt")")
    say "phase '$1' took $dt s"
    T_PHASE=$now
}

TMP=$(mktemp -d /tmp/slurm-smoke.XXXXXX)
chmod 0755 "$TMP"   # munged (user munge) must be able to enter the state directory below it
STATE=$TMP/cluster
ok=0

cleanup() {
    local rc=$?
    set +e
    T_PHASE=$EPOCHREALTIME
    say "stopping the cluster"
    "$REPO/.ci/slurm/stop.sh" "$STATE"
    phase_done "stop cluster"
    say "timings:"
    printf '  %s\n' "${TIMINGS[@]}"
    say "total $(awk -v a="$T_ALL" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s"
    if [[ $ok -eq 1 && ${SLURM_SMOKE_KEEP:-0} != 1 ]]; then
        rm -rf -- "$TMP"
        say "PASS"
    else
        say "kept $TMP for inspection (logs: $STATE/log)"
        if [[ $ok -eq 1 ]]; then say "PASS"; else say "FAILED (exit $rc)"; fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_job ID: poll squeue until the job reaches a final state; succeed only on COMPLETED.
wait_job() {
    local id=$1 state="" deadline=$((SECONDS + JOB_TIMEOUT))
    while ((SECONDS < deadline)); do
        state=$(squeue -j "$id" -t all -h -o %T 2>/dev/null || true)
        case $state in
            COMPLETED) return 0 ;;
            FAILED | CANCELLED* | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE | PREEMPTED)
                fail "job $id ended as $state" ;;
        esac
        sleep 0.2
    done
    fail "job $id not COMPLETED after $JOB_TIMEOUT s (last state: '${state}')"
}

# --- 1. cluster ---------------------------------------------------------------------------------
say "starting the cluster in $STATE"
"$REPO/.ci/slurm/start.sh" "$STATE"
# shellcheck source=/dev/null
source "$STATE/env.sh"
sinfo
phase_done "start cluster"

# --- 2. plain sbatch GPU job --------------------------------------------------------------------
mkdir -p "$TMP/sbatch"
cd "$TMP/sbatch"
# shellcheck disable=SC2016  # $CUDA_VISIBLE_DEVICES is expanded by the job, not here
jobid=$(sbatch --parsable --gpus=1 --wrap 'echo $CUDA_VISIBLE_DEVICES > out.txt')
jobid=${jobid%%;*}
say "submitted sbatch job $jobid"
wait_job "$jobid"
[[ -f out.txt ]] || fail "job $jobid wrote no out.txt"
cvd=$(<out.txt)
[[ $cvd =~ ^[0-9]+$ ]] || fail "CUDA_VISIBLE_DEVICES in job $jobid was '$cvd', expected one GPU index"
say "sbatch job $jobid COMPLETED with CUDA_VISIBLE_DEVICES=$cvd"
phase_done "sbatch --gpus=1 job"

# --- 3. Snakemake through the SLURM executor plugin ----------------------------------------------
WF=$TMP/workflow
mkdir -p "$WF/profile"
cat >"$WF/Snakefile" <<'EOF'
rule gpu_job:
    output:
        "result.txt",
    resources:
        gpu=1,
    shell:
        "echo job=$SLURM_JOB_ID gpus=$CUDA_VISIBLE_DEVICES > {output}; command -v python >> {output}"
EOF
# MinJobAge=600 in slurm.conf >= 3 x slurm-init-seconds-before-status-checks, so the plugin keeps
# using squeue (sacct fails without slurmdbd, and the workflow would hang).
cat >"$WF/profile/config.yaml" <<'EOF'
executor: slurm
jobs: 2
default-resources:
  - slurm_partition=debug
slurm-status-command: squeue
slurm-init-seconds-before-status-checks: 1
slurm-keep-successful-logs: true
EOF
cd "$WF"
# sbatch uses --export=ALL: rules' shell commands see the submitter's PATH. Snakemake itself is
# started in the job by absolute path (sys.executable), but `python` and the venv's console scripts
# inside rules are only found if the venv is on PATH here.
VENV_BIN=$(dirname -- "$SNAKEMAKE")
export PATH=$VENV_BIN:$PATH
say "running snakemake --executor slurm"
if ! timeout 300 "$SNAKEMAKE" --profile "$WF/profile" --snakefile "$WF/Snakefile" \
        --directory "$WF" >"$WF/snakemake.log" 2>&1; then
    tail -n 60 "$WF/snakemake.log" >&2
    fail "snakemake failed (log: $WF/snakemake.log)"
fi
[[ -f result.txt ]] || fail "snakemake produced no result.txt"
mapfile -t logs < <(find .snakemake/slurm_logs -type f -name '*.log' 2>/dev/null)
((${#logs[@]} == 1)) || fail "expected 1 SLURM log under .snakemake/slurm_logs, found ${#logs[@]}: ${logs[*]}"
smk_job=$(basename "${logs[0]}" .log)
[[ $smk_job =~ ^[0-9]+$ ]] || fail "SLURM log name ${logs[0]} is not a job id"
state=$(squeue -j "$smk_job" -t all -h -o %T)
[[ $state == COMPLETED ]] || fail "snakemake's SLURM job $smk_job is '$state', not COMPLETED"
head -n 1 result.txt | grep -qx "job=$smk_job gpus=[0-9]" \
    || fail "result.txt does not come from SLURM job $smk_job with one GPU: $(<result.txt)"
[[ $(sed -n 2p result.txt) == "$VENV_BIN/python" ]] \
    || fail "python inside the rule is '$(sed -n 2p result.txt)', not $VENV_BIN/python"
say "snakemake rule ran as SLURM job $smk_job (COMPLETED): $(tr '\n' ' ' <result.txt)"
phase_done "snakemake --executor slurm"

ok=1
