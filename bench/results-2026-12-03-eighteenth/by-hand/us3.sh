#!/bin/bash
# us3.sh ROUNDS CLIENTS SECS name:port:pid ... -> median cpu ns/tx (schedstat over all threads) and tps, rotating order
R=$1; C=$2; S=$3; shift 3
export PATH=/usr/lib/postgresql/15/bin:$PATH
targets=("$@"); n=${#targets[@]}; out=/tmp/pe/us3.out; : > $out
cpu() { cat /proc/$1/task/*/schedstat | awk '{s+=$1} END {printf "%.0f\n", s}'; }
for round in $(seq $R); do for i in $(seq 0 $((n-1))); do
  t=${targets[$(( (i+round) % n ))]}; IFS=: read name port pid <<< "$t"
  a=$(cpu $pid)
  o=$(pgbench -h 127.0.0.1 -p $port -U bench -n -S -T $S -c $C -j $(( C<2?1:2 )) -M ${MODE:-simple} bench 2>&1)
  b=$(cpu $pid)
  tx=$(echo "$o" | grep -oP 'processed: \K[0-9]+'); tps=$(echo "$o" | grep -oP 'tps = \K[0-9.]+' | head -1)
  echo "$name $round $(( (b-a)/tx )) $tps" >> $out
done; done
python3 - $out "${targets[0]%%:*}" <<'PY'
import sys, statistics as st, collections
d=collections.defaultdict(list)
for l in open(sys.argv[1]):
    n,r,ns,tps=l.split(); d[n].append((float(ns),float(tps)))
b=st.median(x[0] for x in d[sys.argv[2]])
for n,v in d.items():
    m=st.median(x[0] for x in v); print("%-6s cpu ns/tx %6.0f (x%.2f of %s)  tps %8.0f" % (n, m, m/b, sys.argv[2], st.median(x[1] for x in v)))
PY
