#!/bin/bash
# wts.sh name port pid -> raw syscall trace of the proxy during 3 s at 2000 tx/s
name=$1; port=$2; pid=$3
export PATH=/usr/lib/postgresql/15/bin:$PATH
pgbench -h 127.0.0.1 -p $port -U bench -n -S -M simple -c 10 -j 2 -R 2000 -T 6 bench >/dev/null 2>&1 &
sleep 1.5
perf record -q -e raw_syscalls:sys_enter,raw_syscalls:sys_exit -p $pid -o /tmp/pe/wts-$name.data -- sleep 3 2>/dev/null
wait
perf script --ns -i /tmp/pe/wts-$name.data -F tid,time,event,trace 2>/dev/null > /tmp/pe/wts-$name.txt
wc -l /tmp/pe/wts-$name.txt
