#!/usr/bin/env bash
# gwprof.sh: CPU of the bank-card consume forwarded on a gateway link to
# gwsim (make bench's "through a gateway link" row), for this tree and any
# other trees given, measured back to back, alternating run by run: switchd's
# CPU µs per consume (posim --switch-pid), gwsim's, and pprof CPU profiles of
# both split by area. docs/BENCHMARKS.md, "The forwarded consume".
#
#   scripts/gwprof.sh OUTDIR [TREE...]     (default TREE: this tree)
#   make gwprof                            (OUTDIR /tmp/cardswitch-gwprof)
#
# A TREE is a checkout of this repository (git worktree add --detach DIR
# COMMIT for another commit); TREE:N runs N local-ledger closed-loop runs
# on the same data directory first, as make bench's earlier rows did.
#
#   GWPROF_RUNS  runs per tree (default 5)   GWPROF_DUR  posim --duration (default 15s)
#   GWPROF_RATE  posim --rate (default: closed loop; closed-loop CPU per consume
#                follows throughput, so on a loaded machine a fixed rate
#                compares trees more steadily)
#   GWPROF_PROF  seconds of each profile, from 6 s into the run (default 8; 0: none)
#   GWPROF_BUILD 0: use each tree's bin/ as it is (default: make -s build)
#
# Each run: a fresh data directory, gwsim and switchd (the tree's binaries
# and demo configuration, this tree's helpers), the link waited up, then
# posim --terminals 100 --mix consume --cards bank closed loop. Results:
# OUTDIR/results.tsv, OUTDIR/NAME.RUN.{switchd,gwsim}.pprof. On a shared
# machine only the trees' ratios, in medians of several runs, mean anything.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:?usage: gwprof.sh OUTDIR [TREE...]}; shift
[ $# -ge 1 ] || set -- "$here"
runs=${GWPROF_RUNS:-5}
dur=${GWPROF_DUR:-15s}
profs=${GWPROF_PROF:-8}
export PATH="/usr/local/go/bin:$PATH"
mkdir -p "$out"
res=$out/results.tsv
[ -f "$res" ] || printf 'tree\trun\ttps\tswitchd_cpu_us\tgwsim_cpu_us\terrors\n' >"$res"
if [ "${GWPROF_BUILD:-1}" != 0 ]; then
  for t in "$@"; do (cd "${t%%:*}" && make -s build); done
fi

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
tree_name() { # TREE[:N] -> its name in the results
  local n
  n=$(basename "${1%%:*}")
  [[ "$1" != *:* ]] || n=$n-p${1##*:}
  echo "$n"
}

# one_run TREE[:N] RUN, in a subshell: its processes are stopped by pid when
# it leaves, whatever happens. Every wait is bounded.
one_run() (
  local tree=${1%%:*} n=$2 name work prefill=0
  name=$(tree_name "$1")
  [[ "$1" != *:* ]] || prefill=${1##*:}
  cd "$tree"
  source "$here/internal/posim/scripts/switchd-env.sh"
  source "$here/scripts/gwlink-env.sh"
  work=$(mktemp -d /tmp/cardswitch-gwprof.XXXXXX)
  GWSIM_PID= SWITCHD_PID= PP= CP1= CP2=
  trap '[ -z "$PP" ] || kill -TERM $PP 2>/dev/null; for p in $CP1 $CP2; do kill $p 2>/dev/null; done; switchd_stop; gwsim_stop; rm -rf "$work"' EXIT
  switchd_config "$work"
  if [ "$prefill" != 0 ]; then
    switchd_start "$work"
    for _ in $(seq "$prefill"); do
      timeout 300 bin/posim --addr "$POS_ADDR" --admin "$ADMIN_URL" --token "$TOKEN" --terminals 100 \
        --duration 10s --mix consume --quiet >/dev/null 2>>"$work/prefill.err"
    done
    switchd_stop
  fi
  gwsim_start "$work"
  gwlink_config "$work"
  switchd_start "$work"
  gwlink_wait_up
  local g0 g1
  g0=$(ticks "$GWSIM_PID")
  timeout 300 bin/posim --addr "$POS_ADDR" --admin "$ADMIN_URL" --token "$TOKEN" --terminals 100 \
    --duration "$dur" --mix consume --quiet --switch-pid "$SWITCHD_PID" \
    --cards bank --bank-accounts "$work/accounts.yaml" ${GWPROF_RATE:+--rate "$GWPROF_RATE"} \
    >"$work/posim.out" 2>"$work/posim.err" &
  PP=$!
  if [ "$profs" != 0 ]; then
    sleep 6 # past posim's provisioning and sign-on
    timeout $((profs + 30)) curl -fsS --max-time $((profs + 20)) -H "Authorization: Bearer $TOKEN" \
      "$ADMIN_URL/api/debug/pprof/profile?seconds=$profs" >"$out/$name.$n.switchd.pprof" 2>/dev/null &
    CP1=$!
    timeout $((profs + 30)) curl -fsS --max-time $((profs + 20)) \
      "http://$GWSIM_HTTP/debug/pprof/profile?seconds=$profs" >"$out/$name.$n.gwsim.pprof" 2>/dev/null &
    CP2=$!
    wait "$CP1" || rm -f "$out/$name.$n.switchd.pprof"
    wait "$CP2" || rm -f "$out/$name.$n.gwsim.pprof"
    CP1= CP2=
  fi
  local rc=0
  wait "$PP" || rc=$?
  PP=
  g1=$(ticks "$GWSIM_PID")
  local sum tps cpu errs appr decl gcpu
  sum=$(grep '^summary' "$work/posim.out" || true)
  [ $rc -eq 0 ] && [ -n "$sum" ] || { echo "$name run $n: posim exit $rc" >&2; tail -5 "$work/posim.err" >&2; return 1; }
  tps=$(field tps "$sum"); errs=$(field errors "$sum")
  appr=$(field approved "$sum"); decl=$(field declined "$sum")
  cpu=$(sed -n 's/^switch cpu_us_per_tx=//p' "$work/posim.out")
  gcpu=$(awk -v t=$((g1 - g0)) -v n=$((appr + decl)) -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", t * 1e6 / hz / n}')
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$n" "$tps" "$cpu" "$gcpu" "$errs" >>"$res"
  echo "$name run $n: tps=$tps switchd_cpu_us=$cpu gwsim_cpu_us=$gcpu errors=$errs"
)

for n in $(seq "$runs"); do
  for t in "$@"; do
    # A start can lose a port to another process on a shared machine:
    # a run is tried again, at most twice.
    one_run "$t" "$n" || one_run "$t" "$n" || one_run "$t" "$n"
  done
done

med() { sort -g | awk '{a[NR]=$1} END {if (!NR) {print "-"; exit} printf "%.1f\n", NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
echo
echo "medians: tree, runs, TPS, switchd µs/consume, gwsim µs/consume"
for t in "$@"; do
  name=$(tree_name "$t")
  col() { awk -F'\t' -v t="$name" -v c="$1" '$1 == t {print $c}' "$res" | med; }
  printf '  %-20s %3s %9s %9s %9s\n' "$name" "$(awk -F'\t' -v t="$name" '$1 == t' "$res" | wc -l)" "$(col 3)" "$(col 4)" "$(col 5)"
done

# switchd's profiles split by area: each function's cumulative samples ÷
# (the run's TPS × the profile's seconds), median over a tree's runs.
[ "$profs" != 0 ] || exit 0
funcs=(
  'switch/transport.(*Acceptor).serveConn'
  'switch/links.(*Link).Forward'
  'switch/links.(*Link).buildRequest'
  'switch/links.(*Link).addMAC'
  'switch/links.(*Link).sendWriteAhead'
  'switch/links.(*Link).exchange'
  'switch/links.(*Link).commit'
  'switch/links.(*Link).inbound'
  'switch/links.(*reader).ReadMessage'
  'switch/links.(*writer).WriteMessage'
  'moov-io/iso8583.(*Message).Pack'
  'moov-io/iso8583-connection.(*Connection).handleResponse'
  'moov-io/iso8583-connection.(*Connection).readResponseLoop'
  'pebble/v2.(*memTable).apply'
  'pebble/v2.(*DB).compactAndWrite'
  'pebble/v2/record.(*LogWriter).flushLoop'
  'runtime.gcBgMarkWorker'
  'runtime.mallocgc'
)
split=$out/split.tsv
: >"$split"
tail -n +2 "$res" | while IFS=$'\t' read -r name run tps _ _ _; do
  p=$out/$name.$run.switchd.pprof
  [ -s "$p" ] || continue
  go tool pprof -top -cum -nodecount=100000 "$p" 2>/dev/null >"$out/top.tmp" || continue
  awk -v name="$name" -v run="$run" -v n="$(awk -v t="$tps" -v s="$profs" 'BEGIN {print t * s}')" -v list="$(printf '%s\n' "${funcs[@]}")" '
    function secs(v) { if (v ~ /ms$/) { sub(/ms$/, "", v); return v / 1000 } sub(/s$/, "", v); return v }
    BEGIN { nf = split(list, f, "\n") }
    /Total samples =/ { t = $0; sub(/.*Total samples = /, "", t); sub(/ .*/, "", t); printf "%s\t%s\tTOTAL\t%.1f\n", name, run, secs(t) * 1e6 / n }
    NF >= 6 { for (i = 1; i <= nf; i++) if (!(i in seen) && length($NF) >= length(f[i]) && substr($NF, length($NF) - length(f[i]) + 1) == f[i]) {
        seen[i] = 1; printf "%s\t%s\t%s\t%.1f\n", name, run, f[i], secs($4) * 1e6 / n } }
    END { for (i = 1; i <= nf; i++) if (!(i in seen)) printf "%s\t%s\t%s\t0\n", name, run, f[i] }' "$out/top.tmp" >>"$split"
done
rm -f "$out/top.tmp"
echo
printf '%-58s' "switchd µs per consume by area (profiles)"
for t in "$@"; do printf '%14s' "$(tree_name "$t")"; done; echo
for f in TOTAL "${funcs[@]}"; do
  printf '%-58s' "$f"
  for t in "$@"; do
    printf '%14s' "$(awk -F'\t' -v t="$(tree_name "$t")" -v f="$f" '$1 == t && $3 == f {print $4}' "$split" | med)"
  done
  echo
done
