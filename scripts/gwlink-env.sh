# Shell helpers of scripts/gwcrashtest.sh and scripts/bench.sh: a gwsim
# bank and a gateway link to it in a switchd configuration. Source it
# after internal/posim/scripts/switchd-env.sh and switchd_config.

# gwsim_start DIR starts bin/gwsim on free loopback ports other than the
# switch's, with two bank cards rich enough for any run (DIR/accounts.yaml,
# also for posim --bank-accounts) and the extra gwsim flags given; sets
# GWSIM_ADDR, GWSIM_HTTP, GWSIM_PID.
gwsim_start() {
  local dir=$1; shift
  local taken=" $POS_ADDR $GW_ADDR $HTTP_ADDR ${RECHARGE_ADDR:-} "
  GWSIM_ADDR=$POS_ADDR
  while [[ "$taken" == *" $GWSIM_ADDR "* ]]; do GWSIM_ADDR=127.0.0.1:$(free_port); done
  GWSIM_HTTP=$GWSIM_ADDR
  while [[ "$taken $GWSIM_ADDR " == *" $GWSIM_HTTP "* ]]; do GWSIM_HTTP=127.0.0.1:$(free_port); done
  cat >"$dir/accounts.yaml" <<YAML
accounts:
  - {card: "6222020000000000018", account: "1102000000000018", holder: "Load One", pin: "123456", balance: "100000000.00"}
  - {card: "6222020000000000026", account: "1102000000000026", holder: "Load Two", pin: "654321", balance: "100000000.00"}
YAML
  bin/gwsim --addr "$GWSIM_ADDR" --http "$GWSIM_HTTP" --institution 01020000 --quiet \
    --accounts "$dir/accounts.yaml" "$@" >"$dir/gwsim.log" 2>&1 &
  GWSIM_PID=$!
  # At most 10 s, each probe at most 2 s: a port taken meanwhile by a
  # program that accepts and never answers must not hold the script, and
  # a gwsim that exited (its port taken) must not be mistaken for the
  # program now answering on that port.
  local deadline=$((SECONDS + 10))
  while [ "$SECONDS" -lt "$deadline" ]; do
    kill -0 "$GWSIM_PID" 2>/dev/null || break
    if curl -fsS --max-time 2 "http://$GWSIM_HTTP/accounts" >"$dir/opening.json" 2>/dev/null &&
      kill -0 "$GWSIM_PID" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "gwsim did not start:" >&2; cat "$dir/gwsim.log" >&2; return 1
}

# gwsim_stop stops GWSIM_PID.
gwsim_stop() {
  if [ -n "${GWSIM_PID:-}" ]; then kill -TERM "$GWSIM_PID" 2>/dev/null || true; wait "$GWSIM_PID" 2>/dev/null || true; fi
  GWSIM_PID=
}

# gwlink_config DIR points the demo configuration's link demo-bank (BIN
# 622202, the demo ZMK seeded: testdata/demo/config.yaml) at gwsim, with
# two connections, a 1 s send timeout and a store-and-forward schedule
# short enough for a test.
gwlink_config() {
  local dir=$1
  grep -q '^  - name: demo-bank$' "$dir/config.yaml" || { echo "gwlink_config: no demo-bank link in the demo configuration" >&2; return 1; }
  sed -i -e "s#addresses: \[\"127.0.0.1:8590\"\]#addresses: [\"$GWSIM_ADDR\"]#" \
    -e '/^    institution_id: "01020000"$/a\    pool_size: 2\n    send_timeout: 1s\n    reconnect_wait: 100ms\n    max_reconnect_wait: 1s' \
    "$dir/config.yaml"
  grep -q "addresses: \[\"$GWSIM_ADDR\"\]" "$dir/config.yaml" || { echo "gwlink_config: link address not set" >&2; return 1; }
  cat >>"$dir/config.yaml" <<YAML
saf:
  initial_delay: 500ms
  interval: 500ms
  max_interval: 2s
  max_attempts: 1000
YAML
}

# gwlink_wait_up waits until the link is up: at most 10 s in all, each
# look at most 2 s (switchctl's own timeout is 10 s: a hundred looks at an
# admin port that accepts but never answers took 17 minutes), and
# no longer once switchd has exited. The answer is read whole, not piped
# into grep -q (under pipefail a writer cut off by grep's early exit
# fails the pipeline).
gwlink_wait_up() {
  local deadline=$((SECONDS + 10)) out
  while [ "$SECONDS" -lt "$deadline" ]; do
    if [ -n "${SWITCHD_PID:-}" ] && ! kill -0 "$SWITCHD_PID" 2>/dev/null; then
      echo "gwlink_wait_up: switchd exited" >&2
      return 1
    fi
    out=$(bin/switchctl gateways --admin "$ADMIN_URL" --token "$TOKEN" --timeout 2s 2>/dev/null) || true
    [[ "$out" == *'"state": "up"'* ]] && return 0
    sleep 0.1
  done
  echo "gateway link not up after 10 s: $out" >&2
  return 1
}
