#!/bin/bash
# bench/compare.sh [--quick] [--repeat N] [--brokers "mosquitto flashmq midge"] [--out DIR]
#
# Runs the same scenarios against Debian's mosquitto, FlashMQ (when $FLASHMQ or the default
# build of ../shared/tools/peers/build-flashmq exists) and midge, interleaved (scenario 1 on
# each broker, then scenario 2, ...), each on a fresh broker listening on 127.0.0.1, and prints
# one table: scenario | metric | mosquitto | flashmq | midge | midge ÷ best peer.
# --repeat N runs every scenario N times (rounds interleaved too) and reports each metric's
# median: on a shared 2-core machine one run can be off by a third.
# Raw `result` lines of midge-bench are kept in DIR/results.txt.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
QUICK=0
REPEAT=1
BROKERS="mosquitto flashmq midge"
OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --repeat) REPEAT=$2; shift ;;
    --brokers) BROKERS=$2; shift ;;
    --out) OUT=$2; shift ;;
    -h|--help) sed -n 2,10p "$0"; exit 0 ;;
    *) echo "compare.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

MOSQUITTO=${MOSQUITTO:-/usr/sbin/mosquitto}
MIDGE=${MIDGE:-$ROOT/target/release/midge}
BENCH=${BENCH:-$ROOT/target/release/midge-bench}
FLASHMQ=${FLASHMQ:-$HOME/.cache/midge-peers/flashmq-v1.26.2/build/flashmq}
QUEUE=1000  # max_queued_messages / max_qos_msg_pending_per_client, the same for all

if [ "${NO_BUILD:-0}" != 1 ]; then
  (cd "$ROOT" && cargo build --release -q -p midge -p midge-bench) || exit 1
fi
HAVE=""
for b in $BROKERS; do
  case $b in
    mosquitto) [ -x "$MOSQUITTO" ] && HAVE="$HAVE mosquitto" || echo "# no $MOSQUITTO: skipped" >&2 ;;
    flashmq) [ -x "$FLASHMQ" ] && HAVE="$HAVE flashmq" || echo "# no FlashMQ at $FLASHMQ (set FLASHMQ): skipped" >&2 ;;
    midge) [ -x "$MIDGE" ] && HAVE="$HAVE midge" || { echo "compare.sh: no $MIDGE" >&2; exit 1; } ;;
    *) echo "compare.sh: unknown broker $b" >&2; exit 2 ;;
  esac
done
PEERS=$(echo $HAVE | tr ' ' '\n' | grep -vx midge | tr '\n' ' ')

ulimit -n "$(ulimit -Hn)"  # brokers and midge-bench both need many sockets for `idle`
WORK=${OUT:-$(mktemp -d /tmp/midge-compare.XXXXXX)}
mkdir -p "$WORK"
RESULTS=$WORK/results.txt
: >"$RESULTS"
# Below the ephemeral range (32768-60999), where the clients' own ports could collide.
PORT=$((20000 + RANDOM % 10000))
BROKER_PID=""

# start_broker NAME: fresh config and process on a new port; sets PORT and BROKER_PID.
start_broker() {
  PORT=$((PORT + 1))
  local conf=$WORK/$1.conf log=$WORK/$1.log
  case $1 in
    mosquitto|midge)
      printf 'user root\nlistener %s 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\nmax_queued_messages %s\n' \
        "$PORT" "$QUEUE" >"$conf"
      if [ "$1" = midge ]; then "$MIDGE" -c "$conf" >"$log" 2>&1 &
      else "$MOSQUITTO" -c "$conf" >"$log" 2>&1 &
      fi ;;
    flashmq)
      rm -rf "$WORK/flashmq-store"; mkdir -p "$WORK/flashmq-store"
      cat >"$conf" <<EOF
allow_anonymous true
storage_dir $WORK/flashmq-store
log_file $WORK/flashmq-store/flashmq.log
max_qos_msg_pending_per_client $QUEUE
listen {
  protocol mqtt
  port $PORT
  inet4_bind_address 127.0.0.1
  tcp_nodelay true
}
EOF
      "$FLASHMQ" -c "$conf" >"$log" 2>&1 & ;;
  esac
  BROKER_PID=$!
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then return 0; fi
    kill -0 "$BROKER_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "compare.sh: $1 did not start on port $PORT:" >&2
  tail -3 "$log" >&2
  stop_broker
  return 1
}

stop_broker() {
  [ -n "$BROKER_PID" ] || return 0
  kill -TERM "$BROKER_PID" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$BROKER_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$BROKER_PID" 2>/dev/null
  wait "$BROKER_PID" 2>/dev/null
  BROKER_PID=""
}
trap 'stop_broker; exit 130' INT TERM

if [ $QUICK = 1 ]; then
  TIMING="--duration 2 --warmup 0.5 --drain 5"
else
  TIMING="--duration 5 --warmup 1 --drain 15"
fi

# run_scenario ID "TITLE" midge-bench arguments...
run_scenario() {
  local id=$1 title=$2; shift 2
  echo "# $title" >&2
  local round
  for round in $(seq "$REPEAT"); do
  for b in $HAVE; do
    start_broker "$b" || { echo "$id $b result error=broker_did_not_start" >>"$RESULTS"; continue; }
    local line
    line=$(timeout 300 "$BENCH" "$@" $TIMING --port "$PORT" --broker-pid "$BROKER_PID" --label "$b" 2>>"$WORK/bench.err")
    echo "$line" | sed -n '2p' | sed "s/^ */#   $b: /" >&2
    line=$(echo "$line" | grep '^result ' || echo "result error=midge-bench_failed")
    echo "$id $b $line" >>"$RESULTS"
    echo "$title" >"$WORK/title.$id"
    stop_broker
  done
  done
}

# field ID BROKER KEY: a value from the stored result lines (the median over repeats).
field() {
  awk -v id="$1" -v b="$2" -v k="$3" '$1 == id && $2 == b {
    for (i = 3; i <= NF; i++) { n = index($i, "="); if (substr($i, 1, n - 1) == k) print substr($i, n + 1) } }' "$RESULTS" |
    sort -g | awk '{ x[NR] = $0 } END { if (NR) print x[int((NR + 1) / 2)] }'
}

SCEN=()
add() { SCEN+=("$*"); }
add "p10q0|pairs 10x10 QoS 0 flood|pairs -n 10 --qos 0"
add "p10q1|pairs 10x10 QoS 1|pairs -n 10 --qos 1"
add "p10q2|pairs 10x10 QoS 2|pairs -n 10 --qos 2"
add "RATE"
add "RATEFAST"
add "fo100q0|fan-out 1->100 QoS 0|fan-out -n 100 --qos 0"
add "fo100q1|fan-out 1->100 QoS 1|fan-out -n 100 --qos 1"
add "fo100q2|fan-out 1->100 QoS 2|fan-out -n 100 --qos 2"
add "fi10q0|fan-in 10->1 QoS 0 flood|fan-in -n 10 --qos 0"
add "idle10k|idle 10k connections|idle -n 10000"
if [ $QUICK = 0 ]; then
  add "p1q1|pairs 1x1 QoS 1|pairs -n 1 --qos 1"
  add "p100q1|pairs 100x100 QoS 1|pairs -n 100 --qos 1"
  add "p100q0|pairs 100x100 QoS 0 flood|pairs -n 100 --qos 0"
  add "p10q1b256|pairs 10x10 QoS 1 256 B|pairs -n 10 --qos 1 --payload 256"
  add "p10q1b4k|pairs 10x10 QoS 1 4 KiB|pairs -n 10 --qos 1 --payload 4096"
  add "p10q0b4k|pairs 10x10 QoS 0 4 KiB flood|pairs -n 10 --qos 0 --payload 4096"
  add "fi100q1|fan-in 100->1 QoS 1|fan-in -n 100 --qos 1"
  add "fi100q0|fan-in 100->1 QoS 0 flood|fan-in -n 100 --qos 0"
  add "fo10q1|fan-out 1->10 QoS 1|fan-out -n 10 --qos 1"
  add "fo1000q0|fan-out 1->1000 QoS 0|fan-out -n 1000 --qos 0"
  add "fo1000q1|fan-out 1->1000 QoS 1 256 B|fan-out -n 1000 --qos 1 --payload 256"
  add "conn5k|connect 5000|connect -n 5000"
  add "idlemax|idle, as many as ulimit -n allows|idle"
fi

STARTED=$(date +%s)
for s in "${SCEN[@]}"; do
  if [ "$s" = RATE ] || [ "$s" = RATEFAST ]; then
    # Half of a peer's QoS 1 peak measured above (all brokers if there is no peer): the
    # slowest peer's for RATE, the fastest one's for RATEFAST (when that is another peer).
    slowest="" fastest=""
    for b in ${PEERS:-$HAVE}; do
      r=$(field p10q1 "$b" rate_per_s)
      [ -n "$r" ] && [ "$r" -gt 0 ] 2>/dev/null || continue
      if [ -z "$slowest" ] || [ "$r" -lt "$slowest" ]; then slowest=$r; fi
      if [ -z "$fastest" ] || [ "$r" -gt "$fastest" ]; then fastest=$r; fi
    done
    if [ "$s" = RATE ]; then
      RATE=$(( ${slowest:-20000} / 2 ))
      run_scenario p10q1r "pairs 10x10 QoS 1 at $RATE msg/s" pairs -n 10 --qos 1 --rate "$RATE"
    elif [ -n "$fastest" ] && [ "$fastest" != "$slowest" ]; then
      RATE=$(( fastest / 2 ))
      run_scenario p10q1rf "pairs 10x10 QoS 1 at $RATE msg/s" pairs -n 10 --qos 1 --rate "$RATE"
    fi
    continue
  fi
  IFS='|' read -r id title args <<<"$s"
  # shellcheck disable=SC2086
  run_scenario "$id" "$title" $args
done
ELAPSED=$(( $(date +%s) - STARTED ))

# The table. Higher is better for msgs/s, lower for the rest; the ratio is midge ÷ best peer.
awk -v brokers="$HAVE" -v peers="$PEERS" -v order="$(for s in "${SCEN[@]}"; do case $s in RATE) echo p10q1r ;; RATEFAST) echo p10q1rf ;; *) echo "${s%%|*}" ;; esac; done | tr '\n' ' ')" \
    -v workdir="$WORK" '
function get(id, b, k) { return (id SUBSEP b SUBSEP k) in v ? v[id, b, k] : "" }
function cell(id, b, k, scale, fmt,   x, f) {
  x = get(id, b, k); f = get(id, b, "flags")
  if (x == "" || x == "-") s = (get(id, b, "error") != "" && get(id, b, "error") != "-") ? "error" : "-"
  else s = sprintf(fmt, x * scale)
  if (k == "rate_per_s" && f != "" && f != "-") s = s " " f
  return s
}
function row(id, title, label, k, scale, fmt, higher,   b, s, best, have, m, r, line) {
  line = "| " title " | " label
  for (bi = 1; bi <= nb; bi++) line = line " | " cell(id, B[bi], k, scale, fmt)
  have = 0
  for (pi = 1; pi <= np; pi++) {
    x = get(id, P[pi], k); if (x == "" || x == "-" || x + 0 <= 0) continue
    if (!have || (higher ? x + 0 > best : x + 0 < best)) best = x + 0
    have = 1
  }
  m = get(id, "midge", k)
  r = (have && m != "" && m != "-") ? sprintf("%.2f×", m / best) : "-"
  print line " | " r " |"
}
BEGIN {
  nb = split(brokers, B, " "); np = split(peers, P, " ")
  # All values of every repeat, then the median of each metric (flags and errors: the union).
  while ((getline l < (workdir "/results.txt")) > 0) {
    n = split(l, f, " ")
    for (i = 4; i <= n; i++) {
      e = index(f[i], "="); key = f[1] SUBSEP f[2] SUBSEP substr(f[i], 1, e - 1); x = substr(f[i], e + 1)
      c = ++count[key]; all[key, c] = x
    }
  }
  for (key in count) {
    split(key, kk, SUBSEP)
    if (kk[3] == "flags" || kk[3] == "error") {
      u = "-"
      for (c = 1; c <= count[key]; c++) if (all[key, c] != "-" && index(u, all[key, c]) == 0) u = (u == "-" ? all[key, c] : u "," all[key, c])
      v[key] = u
      continue
    }
    m = 0
    for (c = 1; c <= count[key]; c++) if (all[key, c] != "-" && all[key, c] != "") sorted[++m] = all[key, c] + 0
    if (m == 0) { v[key] = all[key, 1]; continue }
    for (i = 2; i <= m; i++) { t = sorted[i]; j = i - 1; while (j > 0 && sorted[j] > t) { sorted[j + 1] = sorted[j]; j-- } sorted[j + 1] = t }
    v[key] = sorted[int((m + 1) / 2)]
  }
  head = "| scenario | metric"
  for (bi = 1; bi <= nb; bi++) head = head " | " B[bi]
  print head " | midge ÷ best peer |"
  sep = "|---|---"; for (bi = 1; bi <= nb; bi++) sep = sep "|---"; print sep "|---|"
  no = split(order, O, " ")
  for (oi = 1; oi <= no; oi++) {
    id = O[oi]; title = ""
    if ((getline title < (workdir "/title." id)) <= 0) continue  # not run
    if (id ~ /^idle/) {
      row(id, title, "RSS B/connection", "rss_per_conn_b", 1, "%.0f", 0)
      continue
    }
    if (id ~ /^conn/) {
      row(id, title, "connections/s", "rate_per_s", 1, "%.0f", 1)
      row(id, title, "CPU µs/connection", "cpu_us_per_unit", 1, "%.1f", 0)
      continue
    }
    row(id, title, "msgs/s", "rate_per_s", 1, "%.0f", 1)
    row(id, title, "p99 ms", "p99_us", 0.001, "%.2f", 0)
    row(id, title, "CPU µs/msg", "cpu_us_per_unit", 1, "%.2f", 0)
    row(id, title, "peak RSS MB", "rss_peak_kb", 1 / 1024, "%.1f", 0)
    lost = 0
    for (bi = 1; bi <= nb; bi++) if (get(id, B[bi], "lost") + 0 > 0) lost = 1
    if (lost) {
      line = "| " title " | lost %"
      for (bi = 1; bi <= nb; bi++) {
        e = get(id, B[bi], "expected") + 0
        line = line " | " (e > 0 ? sprintf("%.3g", 100 * get(id, B[bi], "lost") / e) : "-")
      }
      print line " | |"
    }
  }
}'
echo
echo "$(nproc) cores, $(uname -r); $ELAPSED s; mode: $([ $QUICK = 1 ] && echo quick || echo full), median of $REPEAT run(s) per cell; raw results: $RESULTS"
