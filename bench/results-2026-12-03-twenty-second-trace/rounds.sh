#!/bin/bash
# rounds.sh R: R rounds, rotating order, of the syscall trace (legs.py) and the wake placement (schx.sh)
cd /tmp/pe
PGB=$(pgrep -f "pgbouncer pgb.ini" | tail -1); R1=$(pgrep -f "pgweir -c cur2"); EP=$(pgrep -f "pgweir -c w1.toml"); R2=$(pgrep -f "pgweir -c w2.toml")
T=("pgb:26430:$PGB" "ring1:26466:$R1" "ring2:26453:$R2" "epoll1:26440:$EP")
for ((r = 1; r <= $1; r++)); do
  for ((i = 0; i < 4; i++)); do
    IFS=: read name port pid <<< "${T[$(( (i + r) % 4 ))]}"
    ./wts.sh $name $port $pid > /dev/null
    echo "r$r $(python3 t22/legs.py /tmp/pe/wts-$name.txt)"
    echo "r$r $(./schx.sh $name $port $pid)"
  done
done
