#!/usr/bin/env bash
# Start a single-node Slurm on this host, for testing `snakemake --profile slurm` (CI and laptops).
#
#   tests/slurm/start_local_slurm.sh [--gpus N] [--state-dir DIR]
#
# Idempotent: when the daemons it started are alive and the configuration is unchanged it only checks that
# the node is idle. It installs Debian's slurm-wlm and munge when missing (needs root and apt-get), writes
# slurm.conf into the state directory (default /tmp/mvcl-slurm, or $MVCL_SLURM_STATE_DIR), starts munged,
# slurmctld and slurmd without systemd, waits until `sinfo` shows the node idle, and records the PIDs of
# what it started so that stop_local_slurm.sh stops those and nothing else.
#
# --gpus N declares N fake GPUs (character devices with /dev/null's numbers) so that a test can check that
# jobs ask for GPUs (`--gpus=1`); nothing can compute on them.
#
# Every finished job leaves one line in <state>/jobcomp.log (JobCompType=jobcomp/filetxt): proof that a job
# ran through Slurm. The last line of output is `export SLURM_CONF=...`: the Slurm commands (and Snakemake's
# Slurm executor) find this cluster through it; /etc/slurm/slurm.conf also points here when it was free.
set -euo pipefail

STATE_DIR="${MVCL_SLURM_STATE_DIR:-/tmp/mvcl-slurm}"
GPUS=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --gpus) GPUS="$2"; shift 2 ;;
        --state-dir) STATE_DIR="$2"; shift 2 ;;
        -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "start_local_slurm.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
if ! [[ "$GPUS" =~ ^[0-9]+$ ]]; then
    echo "start_local_slurm.sh: --gpus needs a whole number, got '$GPUS'" >&2
    exit 2
fi

log() { echo "start_local_slurm: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (it installs packages and starts slurmd as root)"

# Seconds a finished job stays visible to squeue. Snakemake's Slurm executor reads job states with squeue
# (accounting is off here, so sacct cannot) and falls back to sacct when MinJobAge is under 3x its
# slurm-init-seconds-before-status-checks; 600 s is far above that for any sane setting.
MIN_JOB_AGE=600

# --- packages ---------------------------------------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null \
    || ! command -v munged >/dev/null; then
    log "installing slurm-wlm and munge with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed (no network?)"
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null \
        || die "apt-get install slurm-wlm munge failed"
fi

mkdir -p "$STATE_DIR"
STATE_DIR="$(cd "$STATE_DIR" && pwd)"
CONF="$STATE_DIR/slurm.conf"
HOST="$(hostname -s)"

alive() {  # alive PIDFILE NAME: the PID in PIDFILE runs a program called NAME
    local pid
    [[ -s "$1" ]] || return 1
    pid="$(cat "$1")"
    [[ -r "/proc/$pid/comm" ]] && [[ "$(cat "/proc/$pid/comm")" == "$2" ]]
}

# --- munge ------------------------------------------------------------------------------------------------
if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    log "munged already answers; using it"
else
    if [[ ! -s /etc/munge/munge.key ]]; then
        log "creating /etc/munge/munge.key"
        install -d -o munge -g munge -m 0700 /etc/munge
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
    # No systemd: nothing else creates munged's socket directory.
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /var/log/munge
    install -d -o munge -g munge -m 0711 /var/lib/munge
    runuser -u munge -- munged
    for _ in $(seq 50); do
        [[ -s /run/munge/munged.pid ]] && break
        sleep 0.1
    done
    cp /run/munge/munged.pid "$STATE_DIR/munged.pid"
    munge -n | unmunge >/dev/null || die "munged started but does not answer (see /var/log/munge/munged.log)"
    log "started munged (pid $(cat "$STATE_DIR/munged.pid"))"
fi

# --- slurm.conf -------------------------------------------------------------------------------------------
# The node as slurmd sees it (CPUs, sockets, cores, threads, memory), so that slurmd registers cleanly.
NODE_HW="$(slurmd -C | head -n 1 | sed -E 's/^NodeName=[^ ]+ //')"
CPUS="$(sed -E 's/.*CPUs=([0-9]+).*/\1/' <<<"$NODE_HW")"
REAL_MEMORY="$(sed -E 's/.*RealMemory=([0-9]+).*/\1/' <<<"$NODE_HW")"
# Without a default, a job that asks for no memory is given the whole node and jobs run one at a time.
DEF_MEM_PER_CPU=$((REAL_MEMORY / CPUS < 1024 ? REAL_MEMORY / CPUS : 1024))

NODE_GRES=""
GRES_TYPES=""
if [[ "$GPUS" -gt 0 ]]; then
    mkdir -p "$STATE_DIR/dev"
    : >"$STATE_DIR/gres.conf.new"
    for i in $(seq 0 $((GPUS - 1))); do
        dev="$STATE_DIR/dev/gpu$i"
        # A character device is all gres/gpu checks; /dev/null's numbers make it harmless.
        [[ -c "$dev" ]] || mknod "$dev" c 1 3 || die "cannot mknod $dev for a fake GPU"
        echo "NodeName=$HOST Name=gpu File=$dev" >>"$STATE_DIR/gres.conf.new"
    done
    NODE_GRES=" Gres=gpu:$GPUS"
    GRES_TYPES=$'GresTypes=gpu\n'
else
    : >"$STATE_DIR/gres.conf.new"
fi

cat >"$CONF.new" <<EOF
# Written by tests/slurm/start_local_slurm.sh: a single-node Slurm for tests. Not for production.
ClusterName=mvcl-local
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# No cgroups in containers: track processes through /proc, bind no tasks.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$DEF_MEM_PER_CPU
# No slurmdbd: sacct is unavailable, squeue reports job states (see MinJobAge).
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MinJobAge=$MIN_JOB_AGE
JobCompType=jobcomp/filetxt
JobCompLoc=$STATE_DIR/jobcomp.log
ReturnToService=2
MpiDefault=none
MailProg=/bin/true
StateSaveLocation=$STATE_DIR/slurmctld
SlurmdSpoolDir=$STATE_DIR/slurmd
SlurmctldPidFile=$STATE_DIR/slurmctld.pid
SlurmdPidFile=$STATE_DIR/slurmd.pid
SlurmctldLogFile=$STATE_DIR/slurmctld.log
SlurmdLogFile=$STATE_DIR/slurmd.log
${GRES_TYPES}NodeName=$HOST NodeAddr=127.0.0.1 $NODE_HW$NODE_GRES State=UNKNOWN
PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF

node_state() { SLURM_CONF="$CONF" sinfo --noheader --nodes="$HOST" --format=%T 2>/dev/null | head -n 1; }

if alive "$STATE_DIR/slurmctld.pid" slurmctld && alive "$STATE_DIR/slurmd.pid" slurmd \
    && cmp -s "$CONF" "$CONF.new" && cmp -s "$STATE_DIR/gres.conf" "$STATE_DIR/gres.conf.new" \
    && [[ "$(node_state)" =~ ^(idle|mixed|allocated)$ ]]; then
    rm -f "$CONF.new" "$STATE_DIR/gres.conf.new"
    log "already running ($(node_state)); SLURM_CONF=$CONF"
    echo "export SLURM_CONF=$CONF"
    exit 0
fi

# A changed configuration (e.g. another --gpus) needs fresh daemons: stop the ones this script started.
for daemon in slurmd slurmctld; do
    if alive "$STATE_DIR/$daemon.pid" "$daemon"; then
        log "restarting $daemon with the new configuration"
        kill "$(cat "$STATE_DIR/$daemon.pid")"
        for _ in $(seq 100); do alive "$STATE_DIR/$daemon.pid" "$daemon" || break; sleep 0.1; done
    fi
done
mv "$CONF.new" "$CONF"
mv "$STATE_DIR/gres.conf.new" "$STATE_DIR/gres.conf"
mkdir -p "$STATE_DIR/slurmctld" "$STATE_DIR/slurmd"
touch "$STATE_DIR/jobcomp.log"

# Let plain `sinfo`/`sbatch` find this cluster too, unless the host already has its own slurm.conf.
if [[ ! -e /etc/slurm/slurm.conf || "$(readlink /etc/slurm/slurm.conf)" == "$CONF" ]]; then
    mkdir -p /etc/slurm
    ln -sfn "$CONF" /etc/slurm/slurm.conf
    echo "/etc/slurm/slurm.conf" >"$STATE_DIR/linked_conf"
fi

# --- daemons ----------------------------------------------------------------------------------------------
export SLURM_CONF="$CONF"
slurmctld -f "$CONF" -i || die "slurmctld did not start (see $STATE_DIR/slurmctld.log)"
for _ in $(seq 100); do scontrol ping >/dev/null 2>&1 && break; sleep 0.2; done
scontrol ping >/dev/null 2>&1 || die "slurmctld does not answer (see $STATE_DIR/slurmctld.log)"
slurmd -f "$CONF" || die "slurmd did not start (see $STATE_DIR/slurmd.log)"
for _ in $(seq 50); do alive "$STATE_DIR/slurmd.pid" slurmd && break; sleep 0.1; done
alive "$STATE_DIR/slurmd.pid" slurmd || die "slurmd exited after starting (see $STATE_DIR/slurmd.log;" \
    "a slurmd that another state directory started may hold its port: pgrep -a slurm)"
log "started slurmctld (pid $(cat "$STATE_DIR/slurmctld.pid")) and slurmd (pid $(cat "$STATE_DIR/slurmd.pid"))"

for _ in $(seq 150); do
    state="$(node_state)"
    [[ "$state" == idle ]] && break
    # A node that was up before a restart may come back down or drained: it is the same node, resume it.
    if [[ "$state" =~ ^(down|drained|draining)|\*$ ]]; then
        scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 || true
    fi
    sleep 0.2
done
[[ "$(node_state)" == idle ]] \
    || die "node $HOST is '$(node_state)', not idle, after 30 s (see $STATE_DIR/slurmd.log, slurmctld.log)"
log "node $HOST idle: $CPUS CPUs, ${REAL_MEMORY} MB, $GPUS fake GPUs; SLURM_CONF=$CONF"
echo "export SLURM_CONF=$CONF"
