#!/bin/bash
# lat3.sh ROUNDS SECS name:port:pid ... -> like lat2.sh plus CPU us/tx at the rate (schedstat)
R=$1; S=$2; shift 2
export PATH=/usr/lib/postgresql/15/bin:$PATH
mkdir -p /tmp/pe/lat; out=/tmp/pe/lat3.out; : > $out
cpu() { cat /proc/$1/task/*/schedstat | awk '{s+=$1} END {printf "%.0f\n", s}'; }
targets=("$@"); n=${#targets[@]}
for round in $(seq $R); do
for i in $(seq 0 $((n-1))); do
  t=${targets[$(( (i+round) % n ))]}
  IFS=: read name port pid <<< "$t"
  rm -f /tmp/pe/lat/x.*
  a=$(cpu $pid)
  pgbench -h 127.0.0.1 -p $port -U bench -n -S -M simple -c 10 -j 2 -R 2000 -T $S --log --log-prefix=/tmp/pe/lat/x bench >/dev/null 2>&1
  b=$(cpu $pid)
  tx=$(cat /tmp/pe/lat/x.* | wc -l)
  echo "$name $round $(python3 /work/main/bench/report.py latency /tmp/pe/lat/x.*) $(( (b-a)/tx ))" >> $out
done; done
python3 - "$out" "${targets[0]%%:*}" <<'PY'
import sys, statistics as st, collections
rows=[l.split() for l in open(sys.argv[1])]
base=sys.argv[2]
d=collections.defaultdict(dict)
for name,r,p50,p99,p999,n,ns in rows: d[name][r]=(float(p50),float(p99),float(ns))
for name in d:
    rs=d[name]
    p50=[v[0] for v in rs.values()]; p99=[v[1] for v in rs.values()]; ns=[v[2] for v in rs.values()]
    diff50=[rs[r][0]-d[base][r][0] for r in rs if r in d[base]]
    diff99=[rs[r][1]-d[base][r][1] for r in rs if r in d[base]]
    print("%-6s p50 %5.0f p99 %5.0f cpu us/tx %5.1f | vs %s: p50 %+5.0f (%d/%d below) p99 %+6.0f cpu x%.2f" % (name, st.median(p50), st.median(p99), st.median(ns)/1000, base, st.median(diff50), sum(x<0 for x in diff50), len(diff50), st.median(diff99), st.median(ns)/st.median([v[2] for v in d[base].values()])))
PY
