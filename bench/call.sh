#!/bin/sh
# Start-up cost of a local call: `brine call --local test.ping` wall time
# per run (a loop of many runs, so the shell's own cost is spread evenly)
# and peak memory (median of /usr/bin/time's maximum RSS), next to
# salt-call and cf-agent when they are installed. Prints figures and
# ratios; never a pass/fail test.
# Usage: sh bench/call.sh [BRINE_BINARY] [RUNS]
set -eu
brine=${1:-build/release/engine/brine}
runs=${2:-100}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

median() {
  sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2];
    else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# measure NAME RUNS CMD...: prints the figures and keeps them in $tmp/NAME
measure() {
  name=$1 n=$2
  shift 2
  "$@" >/dev/null 2>&1 || true
  start=$(date +%s%N)
  i=0
  while [ "$i" -lt "$n" ]; do
    "$@" >/dev/null 2>&1 || true
    i=$((i + 1))
  done
  end=$(date +%s%N)
  wall_us=$(( (end - start) / 1000 / n ))
  rss=0
  if [ -x /usr/bin/time ]; then
    : > "$tmp/rss"
    i=0
    while [ "$i" -lt 9 ]; do
      /usr/bin/time -f '%M' -o "$tmp/one" "$@" >/dev/null 2>&1 || true
      tail -n 1 "$tmp/one" >> "$tmp/rss"
      i=$((i + 1))
    done
    rss=$(median < "$tmp/rss")
  fi
  printf '%-36s %9.2f ms %9d KiB\n' "$name" "$(echo "$wall_us" | awk '{ print $1 / 1000 }')" \
    "$rss"
  echo "$wall_us $rss" > "$tmp/$name"
}

printf '%-36s %12s %13s\n' "command (mean of $runs runs)" "wall" "peak RSS"
measure "true (process start-up floor)" "$runs" /bin/true
measure "brine call --local test.ping" "$runs" "$brine" call --local test.ping
measure "brine call --local cmd.run 'exit 0'" "$runs" "$brine" call --local cmd.run "exit 0"
if command -v salt-call >/dev/null 2>&1; then
  measure "salt-call --local test.ping" 5 salt-call --local test.ping
fi
if command -v cf-agent >/dev/null 2>&1; then
  printf 'bundle agent main { reports: "ping"; }\n' > "$tmp/ping.cf"
  measure "cf-agent (one report)" 10 cf-agent -K -f "$tmp/ping.cf"
fi
read -r bw br < "$tmp/brine call --local test.ping"
for peer in "salt-call --local test.ping" "cf-agent (one report)"; do
  [ -e "$tmp/$peer" ] || continue
  read -r pw pr < "$tmp/$peer"
  awk -v n="$peer" -v bw="$bw" -v br="$br" -v pw="$pw" -v pr="$pr" 'BEGIN {
    printf "%s vs brine: %.1fx the time, %.1fx the memory\n", n, pw / bw, pr / br }'
done
[ -x /usr/bin/time ] || echo "(peak RSS needs /usr/bin/time: apt-get install time)"
