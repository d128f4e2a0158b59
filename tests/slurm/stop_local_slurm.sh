#!/usr/bin/env bash
# Stop the single-node Slurm that start_local_slurm.sh started, and nothing else.
#
#   tests/slurm/stop_local_slurm.sh [--state-dir DIR]
#
# Cancels the jobs still in that cluster, then stops the slurmd, slurmctld and munged whose PIDs the start
# script recorded in the state directory (default /tmp/mvcl-slurm, or $MVCL_SLURM_STATE_DIR); a daemon it
# did not start (say, a munged that was already running) is left alone. Removes the /etc/slurm/slurm.conf
# link only if the start script made it. Logs and jobcomp.log stay in the state directory. Idempotent.
set -euo pipefail

STATE_DIR="${MVCL_SLURM_STATE_DIR:-/tmp/mvcl-slurm}"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --state-dir) STATE_DIR="$2"; shift 2 ;;
        -h | --help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "stop_local_slurm.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done

log() { echo "stop_local_slurm: $*" >&2; }

if [[ ! -d "$STATE_DIR" ]]; then
    log "no state directory $STATE_DIR: nothing to stop"
    exit 0
fi
CONF="$STATE_DIR/slurm.conf"

pid_of() {  # pid_of NAME: the recorded PID of daemon NAME, if that process still runs NAME
    local file="$STATE_DIR/$1.pid" pid
    [[ -s "$file" ]] || return 1
    pid="$(cat "$file")"
    [[ -r "/proc/$pid/comm" && "$(cat "/proc/$pid/comm")" == "$1" ]] || return 1
    echo "$pid"
}

stop() {  # stop NAME: SIGTERM, wait up to 10 s, then SIGKILL
    local pid
    pid="$(pid_of "$1")" || { rm -f "$STATE_DIR/$1.pid"; return 0; }
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
        [[ -d "/proc/$pid" ]] || break
        sleep 0.1
    done
    if [[ -d "/proc/$pid" ]]; then
        log "$1 (pid $pid) ignored SIGTERM; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$STATE_DIR/$1.pid"
    log "stopped $1 (pid $pid)"
}

if pid_of slurmctld >/dev/null && [[ -f "$CONF" ]]; then
    jobs="$(SLURM_CONF="$CONF" squeue --noheader --format=%i 2>/dev/null || true)"
    if [[ -n "$jobs" ]]; then
        log "cancelling jobs still queued or running: $(tr '\n' ' ' <<<"$jobs")"
        # shellcheck disable=SC2086  # one argument per job id
        SLURM_CONF="$CONF" scancel $jobs || true
        sleep 1
    fi
fi

stop slurmd
stop slurmctld
stop munged

if [[ -s "$STATE_DIR/linked_conf" ]]; then
    link="$(cat "$STATE_DIR/linked_conf")"
    if [[ -L "$link" && "$(readlink "$link")" == "$CONF" ]]; then
        rm -f "$link"
    fi
    rm -f "$STATE_DIR/linked_conf"
fi
