#!/bin/bash
# memtest.sh WINDOW [env...]: fresh pgweir (scram2.toml, two workers), warmed; RSS delta per client for 1000 idle logins
W=$1; shift
pkill -f idle_clients.py; pkill -f -- "-c scram2.toml"; sleep 1
(env "$@" setsid ${PGWEIR:-./pgweir} -c scram2.toml > s2.log 2>&1 &); sleep 1.5; P=$(pgrep -f -- "-c scram2.toml")
export PATH=/usr/lib/postgresql/15/bin:$PATH PGPASSWORD=bench
pgbench -h 127.0.0.1 -p 26452 -U bench -n -S -c 10 -j 2 -t 20 bench >/dev/null 2>&1; sleep 1
cat /proc/$P/smaps > smaps0.txt; b=$(awk '/VmRSS/{print $2}' /proc/$P/status); rm -f idle.ready
(ulimit -n 20000; python3 /work/main/bench/idle_clients.py --port 26452 --password bench -n 1000 --window $W --ready-file /tmp/pe/idle.ready --timeout 120 --hold 60 > idle.out 2>&1 &)
for i in $(seq 200); do [ -f /tmp/pe/idle.ready ] && break; sleep 0.1; done; sleep 1
a=$(awk '/VmRSS/{print $2}' /proc/$P/status); cat /proc/$P/smaps > smaps1.txt
echo "window $W $*: $b -> $a KB, $(( (a - b) )) KB per 1000 clients; $(cat idle.ready)"
