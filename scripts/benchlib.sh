# Timing helpers shared by the benchmark scripts (sourced, not run).

# secs CMD...: wall-clock seconds CMD takes (its output discarded)
secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1 || true; e=$(date +%s.%N); echo "$e - $s" | bc; }
# rss CMD...: peak resident set of CMD in KB
rss() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1; }
# best CMD...: the best of 3 runs of secs
best() {
  local b=999999 t
  for _ in 1 2 3; do t=$(secs "$@"); if (( $(echo "$t < $b" | bc) )); then b=$t; fi; done
  echo "$b"
}
