#!/usr/bin/env bash
# A single-node SLURM on localhost, from Debian's packages, for tests/test_slurm.py and CI.
#
#   bash .ci/local_slurm.sh install   # apt-get the daemons (root; a no-op when present)
#   bash .ci/local_slurm.sh start     # munged, slurmctld, slurmd; returns once a job step runs
#   bash .ci/local_slurm.sh stop      # ends the daemons this script started
#   bash .ci/local_slurm.sh status
#
# It writes /etc/slurm/slurm.conf (where slurmd and srun look when a job step has
# dropped SLURM_CONF from its environment) and refuses to replace one it did not write.
# Made to run inside a container: no systemd, no cgroups (ProctrackType linuxproc,
# TaskPlugin none), no accounting database (job state comes from squeue, which keeps
# finished jobs for MinJobAge seconds; profiles/slurm's README section says how the
# test tells the executor plugin so).
set -euo pipefail

CONF=/etc/slurm/slurm.conf
MARK="# written by regbench .ci/local_slurm.sh"
STATE=${REGBENCH_SLURM_DIR:-/tmp/regbench-slurm}   # pid files, logs, spool
PARTITION=regbench
MUNGE_RUN=/run/munge

log() { echo "local_slurm: $*" >&2; }

cmd_install() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
        && command -v munged >/dev/null; then
        log "slurmctld, slurmd, slurm-client and munge already installed"
        return
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends slurmctld slurmd slurm-client munge
}

# a pid file whose process is alive and is the daemon named (a stale file's pid may be reused)
alive() { [[ -f $1 ]] && [[ $(cat "/proc/$(cat "$1")/comm" 2>/dev/null) == "$2" ]]; }

write_conf() {
    if [[ -f $CONF ]] && ! grep -qF "$MARK" "$CONF"; then
        log "$CONF exists and was not written by this script: not replacing it"
        exit 1
    fi
    local host mem
    host=$(hostname -s)
    # leave 1 GiB to the system; jobs that ask for more memory than this never start
    mem=$(( $(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo) - 1024 ))
    mkdir -p /etc/slurm "$STATE/ctld" "$STATE/d"
    cat > "$CONF" <<EOF
$MARK
ClusterName=regbench
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
# no cgroups inside a container
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
MailProg=/bin/true
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
ReturnToService=2
# squeue reports a finished job for this long: the executor plugin's status check reads it
MinJobAge=600
SlurmdTimeout=120
InactiveLimit=0
KillWait=10
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$mem State=UNKNOWN
PartitionName=$PARTITION Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

start_munge() {
    if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
        return  # a munged already answers
    fi
    [[ -s /etc/munge/munge.key ]] || mungekey --create --keyfile=/etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
    install -d -o munge -g munge -m 0711 "$MUNGE_RUN"   # munged refuses any other mode
    for dir in /var/log/munge /var/lib/munge; do
        [[ -d $dir ]] || install -d -o munge -g munge -m 0700 "$dir"
    done
    runuser -u munge -- munged
    touch "$STATE/started-munge"
}

wait_idle() {
    local deadline=$(( SECONDS + ${1:-60} )) state=""
    while (( SECONDS < deadline )); do
        state=$(sinfo -h -p "$PARTITION" -o %T 2>/dev/null || true)
        [[ $state == idle ]] && return
        sleep 0.5
    done
    log "node not idle after ${1:-60} s (state '${state}'); logs in $STATE"
    tail -n 20 "$STATE"/slurmctld.log "$STATE"/slurmd.log >&2 || true
    exit 1
}

cmd_start() {
    command -v slurmctld >/dev/null || { log "SLURM is not installed: bash $0 install"; exit 1; }
    mkdir -p "$STATE"
    start_munge   # also when SLURM runs: a reinstalled munge package stops munged
    if alive "$STATE/slurmctld.pid" slurmctld && alive "$STATE/slurmd.pid" slurmd; then
        log "already running"
        wait_idle 60
        return
    fi
    write_conf
    slurmctld -c   # -c: a clean state, no jobs left from an earlier run
    slurmd
    wait_idle 60
    # one real job step: what a workflow job does (sbatch, then srun inside it)
    timeout 60 srun -p "$PARTITION" -N1 -n1 -t 1 true
    log "running: partition $PARTITION, $(nproc) CPUs; logs in $STATE"
}

stop_pid() {
    local file=$1 name=$2 pid
    alive "$file" "$name" || return 0
    pid=$(cat "$file")
    kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
}

cmd_stop() {
    scancel -p "$PARTITION" 2>/dev/null || true
    stop_pid "$STATE/slurmd.pid" slurmd
    stop_pid "$STATE/slurmctld.pid" slurmctld
    if [[ -f $STATE/started-munge ]]; then
        stop_pid "$MUNGE_RUN/munged.pid" munged
        rm -f "$STATE/started-munge"
    fi
    log "stopped"
}

cmd_status() {
    if alive "$STATE/slurmctld.pid" slurmctld && alive "$STATE/slurmd.pid" slurmd; then
        sinfo -p "$PARTITION"
    else
        echo "not running"
        return 1
    fi
}

case ${1:-} in
    install | start | stop | status) "cmd_$1" ;;
    *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
