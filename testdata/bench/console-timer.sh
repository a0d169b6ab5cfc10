# Sourced by the boot benchmarks. timed CMD...: runs CMD with its console in $tmp/log until
# $want appears; prints "wall cpu" (wall seconds to the line; the CPU time is the last one read
# while it ran: a guest may exit right after its line), or "died".
timed() {
  : >"$tmp/log"
  local t0 pid ticks=0 t
  t0=$(date +%s.%N)
  "$@" >/dev/null 2>&1 &
  pid=$!
  until grep -q "$want" "$tmp/log" 2>/dev/null; do
    t=$(awk '{print $14+$15}' /proc/$pid/stat 2>/dev/null) && ticks=$t
    if ! kill -0 $pid 2>/dev/null; then
      grep -q "$want" "$tmp/log" && break
      echo "died"; return
    fi
    sleep 0.05
  done
  local t1
  t1=$(date +%s.%N)
  t=$(awk '{print $14+$15}' /proc/$pid/stat 2>/dev/null) && ticks=$t
  kill $pid 2>/dev/null; wait $pid 2>/dev/null || true
  echo "$(echo "$t1 - $t0" | bc) $(echo "scale=2; $ticks / $(getconf CLK_TCK)" | bc)"
}
