#!/usr/bin/env bash
# make abuse: while posim's well-behaved terminals run at ABUSE_RATE
# (default 1,000 TPS), a second client sends ABUSE_FRAMES (default 10,000)
# malformed frames — random bytes, bad lengths, bad bitmaps, oversize
# fields, wrong MACs, replays — and holds ABUSE_IDLE (default 2,000) idle
# connections. Passes when the terminals see zero errors, their p99 stays
# under 10 ms, and switchd's goroutines (go_goroutines) and heap
# (go_memstats_heap_inuse_bytes right after a collection) return to their
# level before the abuse.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
rate=${ABUSE_RATE:-1000}
frames=${ABUSE_FRAMES:-10000}
idle=${ABUSE_IDLE:-2000}
hold=${ABUSE_HOLD:-20}
terms=${ABUSE_TERMINALS:-50}
source internal/posim/scripts/switchd-env.sh

make -s build
start_work abuse

switchd_config "$work"
switchd_start "$work"
duration=$((hold + 45))
bin/posim --addr "$POS_ADDR" --admin "$ADMIN_URL" --token "$TOKEN" --terminals "$terms" --rate "$rate" \
  --mix consume --duration "${duration}s" --timeout 5s >"$work/posim.out" 2>"$work/posim.err" &
POSIM_PID=$!
for _ in $(seq 300); do grep -q '^progress' "$work/posim.out" 2>/dev/null && break; sleep 0.1; done
grep -q '^progress' "$work/posim.out" || { echo "posim did not start:"; cat "$work/posim.err"; exit 1; }
sleep 4
# heap_after_gc: the heap in use right after a collection (pprof's heap
# profile with gc=1 runs one): what the switch holds, not how much garbage
# the collector's pacing (runtime.heap_floor_mib) lets wait.
heap_after_gc() {
  curl -fsS --max-time 30 -H "Authorization: Bearer $TOKEN" "$ADMIN_URL/api/debug/pprof/heap?gc=1" >/dev/null
  metric go_memstats_heap_inuse_bytes
}
g0=$(metric go_goroutines); h0=$(heap_after_gc); r0=$(metric process_resident_memory_bytes)
echo "abuse: before: goroutines $g0, heap in use $((h0 >> 20)) MiB, RSS $((r0 >> 20)) MiB (posim at $rate TPS, $terms terminals)"

bin/posim abuse --addr "$POS_ADDR" --frames "$frames" --idle "$idle" --hold "${hold}s" >"$work/abuse.out" 2>&1 &
ABUSE_PID=$!
sleep $((hold / 2))
gp=$(metric go_goroutines); rp=$(metric process_resident_memory_bytes)
echo "abuse: during: goroutines $gp, RSS $((rp >> 20)) MiB"
wait "$ABUSE_PID" || { cat "$work/abuse.out"; echo "abuse client failed"; exit 1; }
cat "$work/abuse.out"

# Settle: the switch drops the abusers' connections as they close or time
# out (frame timeout 10 s); give it up to 20 s to come back.
back=no
for _ in $(seq 40); do
  g1=$(metric go_goroutines); h1=$(heap_after_gc)
  if [ "$g1" -le $((g0 + 10)) ] && awk -v a="$h1" -v b="$h0" 'BEGIN {exit !(a <= 1.5 * b + 16 * 1048576)}'; then back=yes; break; fi
  sleep 0.5
done
r1=$(metric process_resident_memory_bytes)
echo "abuse: after: goroutines $g1, heap in use $((h1 >> 20)) MiB, RSS $((r1 >> 20)) MiB"

wait "$POSIM_PID" && posim_rc=0 || posim_rc=$?
POSIM_PID=
line=$(grep '^summary' "$work/posim.out")
echo "$line"
fail=0
[ "$posim_rc" -eq 0 ] || { echo "FAIL: posim exited $posim_rc"; cat "$work/posim.err"; fail=1; }
[ "$(field errors "$line")" = 0 ] || { echo "FAIL: well-behaved terminals saw errors"; fail=1; }
awk -v p="$(field p99_ms "$line")" 'BEGIN {exit !(p < 10)}' || { echo "FAIL: p99 not under 10 ms"; fail=1; }
[ "$back" = yes ] || { echo "FAIL: goroutines or heap did not return to their level before the abuse"; fail=1; }
[ $fail -eq 0 ] || exit 1
echo "abuse: PASS — zero errors, p99 $(field p99_ms "$line") ms, goroutines $g0 → $gp → $g1"
