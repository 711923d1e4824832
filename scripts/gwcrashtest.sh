#!/usr/bin/env bash
# make gwcrashtest: bank cards through a gateway link while switchd is
# killed. gwsim (the bank) drops GWCRASH_DROP percent (default 5) of its
# financial answers after processing them; posim presents gwsim's bank
# cards; switchd is SIGKILLed GWCRASH_KILLS times (default 10) and
# restarted. At the end, once the store-and-forward queue has drained,
# gwsim's balance of every card must equal its opening balance minus the
# consumes posim saw approved (00) and did not reverse: every bank debit
# the terminal was not told about has been reversed, and none twice
# (gwsim's record is checked for a second credit of any original too).
#
#   GWCRASH_KILLS      kills (default 10; make test runs 2)
#   GWCRASH_TERMINALS  terminals (default 10)
#   GWCRASH_DROP       percent of bank answers dropped (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
kills=${GWCRASH_KILLS:-10}
terms=${GWCRASH_TERMINALS:-10}
drop=${GWCRASH_DROP:-5}
source internal/posim/scripts/switchd-env.sh
source scripts/gwlink-env.sh

make -s build
start_work gwcrashtest
GWSIM_PID=
_gw_cleanup() {
  local rc=$?
  gwsim_stop
  return $rc
}
trap '_gw_cleanup; _work_cleanup' EXIT

switchd_config "$work"
gwsim_start "$work" --drop "$drop"
gwlink_config "$work"
switchd_start "$work"
gwlink_wait_up

duration=$((kills * 6 + 10))
bin/posim --addr "$POS_ADDR" --admin "$ADMIN_URL" --token "$TOKEN" --terminals "$terms" --mix consume --cards bank \
  --bank-accounts "$work/accounts.yaml" \
  --duration "${duration}s" --timeout 3s --reconnect-for 90s --drain 90s \
  --ack-log "$work/ack.log" >"$work/posim.out" 2>"$work/posim.err" &
POSIM_PID=$!
for _ in $(seq 300); do grep -q '^progress' "$work/posim.out" 2>/dev/null && break; sleep 0.1; done
grep -q '^progress' "$work/posim.out" || { echo "posim did not start:"; cat "$work/posim.err"; exit 1; }

echo "gwcrashtest: $kills kills, gwsim dropping $drop% of answers, $terms terminals (data in $work)"
for i in $(seq "$kills"); do
  sleep "$(awk -v r=$RANDOM 'BEGIN {printf "%.2f", 0.5 + 3.5 * r / 32767}')"
  kill -KILL "$SWITCHD_PID"
  wait "$SWITCHD_PID" 2>/dev/null || true
  switchd_start "$work"
  echo "  kill $i/$kills: switchd restarted (pid $SWITCHD_PID)"
done

wait "$POSIM_PID" && posim_rc=0 || posim_rc=$?
POSIM_PID=
grep '^summary' "$work/posim.out" || true
if [ "$posim_rc" -ne 0 ]; then cat "$work/posim.err"; echo "gwcrashtest: posim failed (rc $posim_rc)"; exit 1; fi

# Let the queue drain: the bank answers everything now.
curl -fsS -X PUT -H 'Content-Type: application/json' -d '{"drop_percent": 0}' "http://$GWSIM_HTTP/faults" >/dev/null
drained=
for _ in $(seq 600); do
  if bin/switchctl saf list --admin "$ADMIN_URL" --token "$TOKEN" >"$work/saf.json" 2>/dev/null &&
     [ "$(jq '.entries | length' "$work/saf.json")" = 0 ] &&
     bin/switchctl saf list --dead --admin "$ADMIN_URL" --token "$TOKEN" >"$work/dead.json" 2>/dev/null &&
     [ "$(jq '.entries | length' "$work/dead.json")" = 0 ]; then drained=1; break; fi
  sleep 0.1
done
[ -n "$drained" ] || { cat "$work/saf.json" "$work/dead.json" 2>/dev/null; echo "gwcrashtest: store-and-forward queue did not drain"; exit 1; }
switchd_stop

curl -fsS "http://$GWSIM_HTTP/accounts" >"$work/final.json"
curl -fsS "http://$GWSIM_HTTP/entries?limit=100000" >"$work/entries.json"
[ "$(jq length "$work/entries.json")" -lt 100000 ] || { echo "gwcrashtest: more than 100000 bank entries; shorten the run"; exit 1; }

# posim's ack log names cards by index, not number: compare the whole
# bank. Kept by the terminals: approved consumes whose reversal was not
# approved. Kept by the bank: approved consumes not reversed. Both the
# count and the amount must agree, the bank's balances must have moved
# by exactly that amount, and no original may have been credited twice.
read -r want_n want_fen < <(awk '$4 == "consume" && $7 == "00" { amt[$1" "$2" "$3] = $6 }
     $4 == "reversal" && $7 == "00" { rev[$1" "$2" "$3] = 1 }
     END { n = 0; s = 0; for (k in amt) if (!(k in rev)) { n++; s += amt[k] }; print n, s }' "$work/ack.log")
kept_n=$(jq '[.[] | select(.op == "consume" and .response_code == "00" and (.reversed | not))] | length' "$work/entries.json")
kept_fen=$(jq '[.[] | select(.op == "consume" and .response_code == "00" and (.reversed | not)) | .amount_fen] | add // 0' "$work/entries.json")
moved=$(jq '[.[] | .opening_fen - .balance_fen] | add' "$work/final.json")
twice=$(jq -r '[.[] | select(.op == "reversal" and .delta_fen != 0) | .original] | group_by(.) | map(select(length > 1)) | length' "$work/entries.json")
debits=$(jq '[.[] | select(.op == "consume" and .response_code == "00")] | length' "$work/entries.json")
echo "gwcrashtest: bank debits $debits, of which reversed $((debits - kept_n)); kept $kept_n (${kept_fen} fen); terminals approved and kept $want_n (${want_fen} fen); balances moved ${moved} fen"
if [ "$kept_n" != "$want_n" ] || [ "$kept_fen" != "$want_fen" ] || [ "$moved" != "$want_fen" ] || [ "$twice" != 0 ]; then
  echo "gwcrashtest: FAILED ($twice originals credited twice)"
  exit 1
fi
[ "$debits" -gt 0 ] || { echo "gwcrashtest: FAILED: no bank debit at all"; exit 1; }
echo "gwcrashtest: PASS — $kills/$kills kills; every bank debit the terminal was not told about reversed exactly once; balances match"
