#!/usr/bin/env bash
# make benchpair OLD=path NEW=path: is one switchd binary faster than
# another? Runs the two AT THE SAME TIME, each on its own fresh data
# directory and driven by its own posim (closed loop, consume), so that
# both see the same machine: on two cores shared with other work, runs
# taken one after the other move by ±10 % between them, more than most
# changes (docs/BENCHMARKS.md, "Comparing two binaries"). Each run starts
# the other binary first; the same binary twice differs by about 1 %.
#
#   PAIR_RUNS       runs, default 4 (half of them with NEW started first)
#   PAIR_DURATION   length of each run, default 12s
#   PAIR_TERMINALS  terminals of each posim, default 50
#   PAIR_MIX        posim --mix, default consume
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
old=${OLD:?OLD=path of the old switchd binary} new=${NEW:?NEW=path of the new switchd binary}
[ -x "$old" ] && [ -x "$new" ] || { echo "benchpair: OLD and NEW must be executable switchd binaries" >&2; exit 2; }
runs=${PAIR_RUNS:-4}
dur=${PAIR_DURATION:-12s}
terms=${PAIR_TERMINALS:-50}
mix=${PAIR_MIX:-consume}
source internal/posim/scripts/switchd-env.sh
make -s build # posim

work=$(mktemp -d /tmp/cardswitch-benchpair.XXXXXX)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# start_one NAME BIN: a fresh switchd from BIN on $work/NAME; sets NAME_pid,
# NAME_pos and NAME_admin.
start_one() {
  local name=$1 bin=$2 dir=$work/$1
  rm -rf "$dir"; mkdir -p "$dir"
  switchd_config "$dir"
  GLIBC_TUNABLES=$PEBBLE_GLIBC_TUNABLES "$bin" --config "$dir/config.yaml" >>"$dir/switchd.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  for _ in $(seq 300); do
    curl -fsS --max-time 2 "http://$HTTP_ADDR/readyz" >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || { echo "benchpair: $bin exited; log:" >&2; tail -20 "$dir/switchd.log" >&2; exit 1; }
    sleep 0.1
  done
  printf -v "${name}_pid" '%s' "$pid"
  printf -v "${name}_pos" '%s' "$POS_ADDR"
  printf -v "${name}_admin" '%s' "$ADMIN_URL"
}
stop_all() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  pids=()
}
load() { # NAME: posim against NAME's switchd, summary into $work/NAME.out
  local name=$1 pid pos admin
  pid=${name}_pid pos=${name}_pos admin=${name}_admin
  bin/posim --addr "${!pos}" --admin "${!admin}" --token "$TOKEN" --terminals "$terms" --duration "$dur" \
    --mix "$mix" --quiet --switch-pid "${!pid}" >"$work/$name.out" 2>>"$work/$name.err"
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

declare -a o_cpu n_cpu o_tps n_tps d_cpu d_tps
echo "== benchpair: $old (old) and $new (new) at the same time, $terms terminals each, --mix $mix, $runs x $dur"
for i in $(seq "$runs"); do
  if [ $((i % 2)) -eq 1 ]; then start_one old "$old"; start_one new "$new"; else start_one new "$new"; start_one old "$old"; fi
  load old & lo=$!
  load new & ln=$!
  wait "$lo" "$ln" || { echo "benchpair: a posim failed" >&2; cat "$work"/*.err >&2; exit 1; }
  stop_all
  oc=$(sed -n 's/^switch cpu_us_per_tx=//p' "$work/old.out"); nc=$(sed -n 's/^switch cpu_us_per_tx=//p' "$work/new.out")
  ot=$(field tps "$(grep '^summary' "$work/old.out")"); nt=$(field tps "$(grep '^summary' "$work/new.out")")
  oe=$(field errors "$(grep '^summary' "$work/old.out")"); ne=$(field errors "$(grep '^summary' "$work/new.out")")
  [ "$oe" = 0 ] && [ "$ne" = 0 ] || { echo "benchpair: errors in run $i (old $oe, new $ne)" >&2; exit 1; }
  echo "  run $i: old $oc µs/tx $ot TPS, new $nc µs/tx $nt TPS"
  o_cpu+=("$oc"); n_cpu+=("$nc"); o_tps+=("$ot"); n_tps+=("$nt")
  d_cpu+=("$(awk -v a="$nc" -v b="$oc" 'BEGIN {printf "%.3f", a / b}')")
  d_tps+=("$(awk -v a="$nt" -v b="$ot" 'BEGIN {printf "%.3f", a / b}')")
done
m() { printf '%s\n' "$@" | median; }
echo "switchd CPU per transaction: old median $(m "${o_cpu[@]}") µs, new median $(m "${n_cpu[@]}") µs; new/old per run ${d_cpu[*]}, median $(m "${d_cpu[@]}")"
echo "TPS: old median $(m "${o_tps[@]}"), new median $(m "${n_tps[@]}"); new/old per run ${d_tps[*]}, median $(m "${d_tps[@]}")"
