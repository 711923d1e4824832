# Shared shell helpers of scripts/bench.sh, crashtest.sh and abuse.sh:
# start a fresh switchd on a temp data directory and free loopback ports,
# with a configuration generated from testdata/demo/config.yaml. Source it
# from the repository root.

# free_port prints a loopback TCP port nobody listens on, below the
# kernel's ephemeral range (32768 up by default): switchd is killed and
# started again on it, and a port in that range may meanwhile become the
# local port of any connection made on the machine.
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 12000))
    if ! ss -ltn 2>/dev/null | awk '{print $4}' | grep -q ":$p\$"; then
      echo "$p"; return
    fi
  done
}

# start_work NAME makes the scratch directory $work (/tmp/cardswitch-NAME.*)
# and traps EXIT to stop posim ($POSIM_PID, when set) and switchd; $work is
# removed on success and kept as evidence when the script fails.
start_work() {
  WORK_NAME=$1
  work=$(mktemp -d "/tmp/cardswitch-$1.XXXXXX")
  POSIM_PID=
  trap _work_cleanup EXIT
}
_work_cleanup() {
  local rc=$?
  if [ -n "$POSIM_PID" ]; then kill -TERM "$POSIM_PID" 2>/dev/null || true; wait "$POSIM_PID" 2>/dev/null || true; fi
  switchd_stop
  if [ $rc -ne 0 ]; then echo "$WORK_NAME FAILED; evidence kept in $work" >&2; else rm -rf "$work"; fi
}

# switchd_config DIR writes DIR/config.yaml (data in DIR/data, LMK in
# DIR/lmk.key) and sets POS_ADDR, GW_ADDR, HTTP_ADDR, ADMIN_URL, TOKEN.
# Every simulated terminal and abuser connects from 127.0.0.1, so the POS
# per-peer connection limit is raised to max_connections (5000).
switchd_config() {
  local dir=$1
  local v p taken=" "
  for v in POS_ADDR GW_ADDR HTTP_ADDR RECHARGE_ADDR; do # four different ports
    p=$(free_port)
    while [[ "$taken" == *" $p "* ]]; do p=$(free_port); done
    taken+="$p "
    printf -v "$v" '127.0.0.1:%s' "$p"
  done
  ADMIN_URL=http://$HTTP_ADDR
  TOKEN=demo-admin-token
  sed -e "s#^data_dir: .*#data_dir: $dir/data#" \
      -e "s#^  file: ./demo-lmk.key#  file: $dir/lmk.key#" \
      -e "s#127.0.0.1:8583#$POS_ADDR#" -e "s#127.0.0.1:8584#$GW_ADDR#" -e "s#127.0.0.1:9583#$HTTP_ADDR#" \
      -e "s#127.0.0.1:9584#$RECHARGE_ADDR#" \
      -e "s#^  level: info#  level: warn#" \
      -e "/^pos:\$/a\\  max_connections_per_peer: 5000" \
      testdata/demo/config.yaml > "$dir/config.yaml"
  grep -q "data_dir: $dir/data" "$dir/config.yaml" && grep -q "^  max_connections_per_peer: 5000\$" "$dir/config.yaml" \
    || { echo "config generation failed" >&2; return 1; }
}

# PEBBLE_GLIBC_TUNABLES asks glibc to back large allocations with
# transparent huge pages: Pebble's memtables (64 MiB each, C memory in a
# cgo build) are searched at random by every insert, and on 4 KiB pages
# each step of the search can miss the TLB. The systemd unit sets the
# same (docs/operations.md, "Huge pages for the memtables"); switchd and
# bench.sh's baseline server both run with it.
PEBBLE_GLIBC_TUNABLES=glibc.malloc.hugetlb=1

# switchd_start DIR starts bin/switchd on DIR/config.yaml, sets SWITCHD_PID,
# and waits until /readyz answers (at most 30 s).
switchd_start() {
  local dir=$1
  GLIBC_TUNABLES=$PEBBLE_GLIBC_TUNABLES bin/switchd --config "$dir/config.yaml" >>"$dir/switchd.log" 2>&1 &
  SWITCHD_PID=$!
  for _ in $(seq 300); do
    # --max-time: a port that accepts and never answers must not hold us.
    if curl -fsS --max-time 2 "http://$HTTP_ADDR/readyz" >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$SWITCHD_PID" 2>/dev/null; then
      echo "switchd exited; log:" >&2; tail -20 "$dir/switchd.log" >&2; return 1
    fi
    sleep 0.1
  done
  echo "switchd not ready after 30 s" >&2
  return 1
}

# switchd_stop stops SWITCHD_PID gracefully (SIGTERM) and waits.
switchd_stop() {
  if [ -n "${SWITCHD_PID:-}" ] && kill -0 "$SWITCHD_PID" 2>/dev/null; then
    kill -TERM "$SWITCHD_PID"
    wait "$SWITCHD_PID" 2>/dev/null || true
  fi
  SWITCHD_PID=
}

# cpu_ticks PID prints utime+stime of a process in clock ticks.
cpu_ticks() {
  awk '{print $14 + $15}' "/proc/$1/stat"
}

# metric NAME prints the value of an unlabelled metric from /metrics.
metric() {
  curl -fsS --max-time 10 "http://$HTTP_ADDR/metrics" | awk -v m="$1" '$1 == m {printf "%.0f\n", $2}'
}

# field KEY LINE prints the value of key=value in a summary line.
field() {
  echo "$2" | tr ' ' '\n' | awk -F= -v k="$1" '$1 == k {print $2}'
}
