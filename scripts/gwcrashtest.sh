#!/usr/bin/env bash
# make gwcrashtest: bank cards through a gateway link while switchd is
# killed. gwsim (the bank) drops GWCRASH_DROP percent (default 5) of its
# financial answers after processing them; posim presents gwsim's bank
# cards with consumes and pre-auths, completed or cancelled (--mix
# preauth); switchd is SIGKILLed GWCRASH_KILLS times (default 10) and
# restarted. At the end, once the store-and-forward queue has drained,
# gwsim's balances must have moved by exactly the consumes and completions
# posim saw approved (00) and did not reverse, and the bank's standing
# pre-auth holds must be exactly the pre-auths posim saw approved and did
# not reverse, complete or cancel: every bank debit or hold the terminal
# was not told about has been reversed, and none twice (gwsim's record is
# checked for a second credit of any original too).
#
#   GWCRASH_KILLS      kills (default 10; make test runs 2)
#   GWCRASH_TERMINALS  terminals (default 10)
#   GWCRASH_DROP       percent of bank answers dropped (default 5)
#   GWCRASH_MIX        posim's --mix (default preauth; consume for consumes only)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
kills=${GWCRASH_KILLS:-10}
terms=${GWCRASH_TERMINALS:-10}
drop=${GWCRASH_DROP:-5}
mix=${GWCRASH_MIX:-preauth}
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
bin/posim --addr "$POS_ADDR" --admin "$ADMIN_URL" --token "$TOKEN" --terminals "$terms" --mix "$mix" --cards bank \
  --bank-accounts "$work/accounts.yaml" \
  --duration "${duration}s" --timeout 3s --reconnect-for 90s --drain 90s \
  --ack-log "$work/ack.log" >"$work/posim.out" 2>"$work/posim.err" &
POSIM_PID=$!
for _ in $(seq 300); do grep -q '^progress' "$work/posim.out" 2>/dev/null && break; sleep 0.1; done
grep -q '^progress' "$work/posim.out" || { echo "posim did not start:"; cat "$work/posim.err"; exit 1; }

echo "gwcrashtest: $kills kills, gwsim dropping $drop% of answers, $terms terminals, mix $mix (data in $work)"
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
# bank. Kept by the terminals: approved consumes and completions whose
# reversal was not approved (debits), and approved pre-auths not reversed,
# less the approved completions and cancels not reversed (standing holds:
# posim completes and cancels the whole held amount). Kept by the bank:
# approved consumes and completions not reversed, and pre-auths whose
# hold stands. Counts and amounts must agree, the bank's balances must
# have moved by exactly the debits, its accounts hold exactly the standing
# holds, and no original may have been credited twice.
read -r want_n want_fen want_hold_n want_hold_fen < <(awk '
     $7 == "00" && ($4 == "consume" || $4 == "pre_auth_completion" || $4 == "pre_auth" || $4 == "pre_auth_cancel") {
       typ[$1" "$2" "$3] = $4; amt[$1" "$2" "$3] = $6 }
     $4 == "reversal" && $7 == "00" { rev[$1" "$2" "$3] = 1 }
     END { n = 0; s = 0; hn = 0; hs = 0
       for (k in amt) if (!(k in rev)) {
         t = typ[k]
         if (t == "consume" || t == "pre_auth_completion") { n++; s += amt[k] }
         if (t == "pre_auth") { hn++; hs += amt[k] }
         if (t == "pre_auth_completion" || t == "pre_auth_cancel") { hn--; hs -= amt[k] }
       }
       print n, s, hn, hs }' "$work/ack.log")
debit='(.op == "consume" or .op == "pre_auth_completion")'
kept_n=$(jq "[.[] | select($debit and .response_code == \"00\" and (.reversed | not))] | length" "$work/entries.json")
kept_fen=$(jq "[.[] | select($debit and .response_code == \"00\" and (.reversed | not)) | .amount_fen] | add // 0" "$work/entries.json")
held_n=$(jq '[.[] | select(.op == "pre_auth" and .hold_open == true)] | length' "$work/entries.json")
held_fen=$(jq '[.[] | select(.op == "pre_auth" and .hold_open == true) | .amount_fen] | add // 0' "$work/entries.json")
acct_held=$(jq '[.[] | .held_fen] | add // 0' "$work/final.json")
moved=$(jq '[.[] | .opening_fen - .balance_fen] | add' "$work/final.json")
twice=$(jq -r '[.[] | select(.op == "reversal" and .delta_fen != 0) | .original] | group_by(.) | map(select(length > 1)) | length' "$work/entries.json")
debits=$(jq "[.[] | select($debit and .response_code == \"00\")] | length" "$work/entries.json")
preauths=$(jq '[.[] | select(.op == "pre_auth" and .response_code == "00")] | length' "$work/entries.json")
echo "gwcrashtest: bank debits $debits, of which reversed $((debits - kept_n)); kept $kept_n (${kept_fen} fen); terminals approved and kept $want_n (${want_fen} fen); balances moved ${moved} fen"
echo "gwcrashtest: bank pre-auths $preauths; holds standing $held_n (${held_fen} fen, accounts hold ${acct_held} fen); terminals' standing pre-auths $want_hold_n (${want_hold_fen} fen)"
if [ "$kept_n" != "$want_n" ] || [ "$kept_fen" != "$want_fen" ] || [ "$moved" != "$want_fen" ] || [ "$twice" != 0 ] ||
   [ "$held_n" != "$want_hold_n" ] || [ "$held_fen" != "$want_hold_fen" ] || [ "$acct_held" != "$want_hold_fen" ]; then
  echo "gwcrashtest: FAILED ($twice originals credited twice)"
  exit 1
fi
[ "$debits" -gt 0 ] || { echo "gwcrashtest: FAILED: no bank debit at all"; exit 1; }
if [ "$mix" = preauth ] && [ "$preauths" = 0 ]; then echo "gwcrashtest: FAILED: no pre-auth approved at the bank"; exit 1; fi
echo "gwcrashtest: PASS — $kills/$kills kills; every bank debit and hold the terminal was not told about reversed exactly once; balances and holds match"
