#!/usr/bin/env bash
# Start (or stop) a 3-member etcd cluster on loopback, for side-by-side
# comparisons with paxoskv. etcd fsyncs its WAL before acknowledging (its
# default), like paxoskv with durability sync. Needs Debian's etcd-server
# (benches/install-deps.sh).
#
#   benches/etcd-cluster.sh start DIR    # members on 127.0.0.1:12379, 22379, 32379
#   benches/etcd-cluster.sh stop DIR
#   benches/etcd-cluster.sh pids DIR     # the members' pids, m1 first (loadgen --nemesis)
#   benches/etcd-cluster.sh member DIR N # run member N in the foreground (a restart after a kill)
set -euo pipefail
action=${1:?start|stop}
dir=${2:?data directory}
initial="m1=http://127.0.0.1:12380,m2=http://127.0.0.1:22380,m3=http://127.0.0.1:32380"
# Member $1's command line (the same for its first start and a restart).
member() {
    local i=$1
    ETCD_UNSUPPORTED_ARCH=$(dpkg --print-architecture 2>/dev/null || echo amd64) \
    exec etcd --name "m$i" --data-dir "$dir/m$i" \
        --listen-client-urls "http://127.0.0.1:${i}2379" --advertise-client-urls "http://127.0.0.1:${i}2379" \
        --listen-peer-urls "http://127.0.0.1:${i}2380" --initial-advertise-peer-urls "http://127.0.0.1:${i}2380" \
        --initial-cluster "$initial" --initial-cluster-state new --initial-cluster-token paxoskv-bench \
        --log-level warn
}
case $action in
member)
    i=${3:?member number}
    echo $$ >"$dir/m$i.pid" # exec keeps the pid: stop finds the restarted member
    member "$i" >>"$dir/m$i.log" 2>&1
    ;;
pids)
    for i in 1 2 3; do cat "$dir/m$i.pid"; done
    ;;
start)
    command -v etcd >/dev/null || { echo "missing etcd: run benches/install-deps.sh" >&2; exit 2; }
    rm -rf "$dir"
    mkdir -p "$dir"
    for i in 1 2 3; do
        (member "$i") >"$dir/m$i.log" 2>&1 &
        echo $! >"$dir/m$i.pid"
    done
    for _ in $(seq 100); do
        if ETCDCTL_API=3 etcdctl --endpoints=127.0.0.1:12379,127.0.0.1:22379,127.0.0.1:32379 endpoint health \
            >/dev/null 2>&1; then
            echo "etcd ready: 127.0.0.1:12379,127.0.0.1:22379,127.0.0.1:32379"
            exit 0
        fi
        sleep 0.2
    done
    echo "etcd did not become healthy; logs in $dir" >&2
    exit 1
    ;;
stop)
    pids=()
    for pid in "$dir"/m*.pid; do
        [[ -f $pid ]] && pids+=("$(cat "$pid")")
    done
    kill "${pids[@]}" 2>/dev/null || true
    # Wait for them to exit (a member may take seconds to hand over its
    # leadership), so that the next start finds the ports free.
    for _ in $(seq 100); do
        kill -0 "${pids[@]}" 2>/dev/null || exit 0
        sleep 0.1
    done
    kill -9 "${pids[@]}" 2>/dev/null || true
    ;;
*)
    echo "usage: $0 start|stop|pids DIR, or $0 member DIR N" >&2
    exit 2
    ;;
esac
