#!/usr/bin/env bash
# make crashtest: under posim load, SIGKILL switchd at random moments
# CRASH_KILLS times (default 20), restarting it each time. posim's
# terminals behave like real ones (on a timeout or a lost connection they
# reconnect and reverse the unanswered transaction until the reversal is
# answered). At the end the ledger must be consistent (switchctl ledger
# check) and every card must hold its opening balance plus exactly the
# approved, not reversed transactions of posim's ack log: nothing
# acknowledged lost, nothing unacknowledged surviving.
#
#   CRASH_KILLS      kills (default 20; make crashtest-ci uses 3)
#   CRASH_TERMINALS  terminals (default 20)
#   CRASH_MIX        posim mix (default mixed)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
kills=${CRASH_KILLS:-20}
terms=${CRASH_TERMINALS:-20}
mix=${CRASH_MIX:-mixed}
source internal/posim/scripts/switchd-env.sh

make -s build
start_work crashtest

switchd_config "$work"
switchd_start "$work"
# Long enough for every kill (at most 4 s apart, plus the restart).
duration=$((kills * 6 + 10))
bin/posim --addr "$POS_ADDR" --admin "$ADMIN_URL" --token "$TOKEN" --terminals "$terms" --mix "$mix" \
  --duration "${duration}s" --timeout 3s --reconnect-for 90s --drain 90s \
  --ack-log "$work/ack.log" --cards-out "$work/cards.txt" >"$work/posim.out" 2>"$work/posim.err" &
POSIM_PID=$!
# Wait for the load to start (provisioning done, first progress line).
for _ in $(seq 300); do grep -q '^progress' "$work/posim.out" 2>/dev/null && break; sleep 0.1; done
grep -q '^progress' "$work/posim.out" || { echo "posim did not start:"; cat "$work/posim.err"; exit 1; }

echo "crashtest: $kills kills under posim --terminals $terms --mix $mix (data in $work)"
for i in $(seq "$kills"); do
  sleep "$(awk -v r=$RANDOM 'BEGIN {printf "%.2f", 0.5 + 3.5 * r / 32767}')"
  acked=$(wc -l <"$work/ack.log")
  kill -KILL "$SWITCHD_PID"
  wait "$SWITCHD_PID" 2>/dev/null || true
  switchd_start "$work"
  echo "  kill $i/$kills: switchd restarted (pid $SWITCHD_PID), ~$acked acks flushed so far"
done

wait "$POSIM_PID" && posim_rc=0 || posim_rc=$?
POSIM_PID=
grep '^summary' "$work/posim.out"
cat "$work/posim.err"
switchd_stop
if [ "$posim_rc" -ne 0 ]; then echo "crashtest: posim failed (rc $posim_rc)"; exit 1; fi

bin/switchctl ledger check --data "$work/data" >"$work/check.out" || { cat "$work/check.out"; echo "crashtest: ledger check FAILED"; exit 1; }
tail -1 "$work/check.out"
bin/posim verify --ack-log "$work/ack.log" --cards "$work/cards.txt" --data "$work/data" --switchctl bin/switchctl
echo "crashtest: PASS — $kills/$kills kills, ledger consistent, zero lost or phantom transactions"
