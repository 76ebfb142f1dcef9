#!/bin/bash
# pct3.sh ROUNDS SECS name:port ... -> pgbench logs in $PCT_DIR/NAME_rROUND.*; the cycle is rotated each round
# and reversed every other round, so no target always follows the same one.
R=$1; S=$2; shift 2; export PATH=/usr/lib/postgresql/15/bin:$PATH
D=${PCT_DIR:-/tmp/pe/tl}; rm -rf $D; mkdir -p $D; t=("$@"); n=${#t[@]}
for r in $(seq $R); do for i in $(seq 0 $((n-1))); do
  if (( r % 2 == 0 )); then j=$(( (n - 1 - i + r + 1) % n )); else j=$(( (i + r) % n )); fi
  x=${t[$j]}; name=${x%%:*}; port=${x##*:}
  pgbench -h 127.0.0.1 -p $port -U bench -n -S -M simple -c 10 -j 2 -R 2000 -T $S --log --log-prefix=$D/${name}_r$r bench >/dev/null 2>&1
done; done
