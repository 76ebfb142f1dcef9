#!/bin/bash
# schx.sh name port pid : cross/same CPU wakeups of the proxy at 2000 tx/s
name=$1; port=$2; pid=$3
export PATH=/usr/lib/postgresql/15/bin:$PATH
pgbench -h 127.0.0.1 -p $port -U bench -n -S -M simple -c 10 -j 2 -R 2000 -T 5 bench >/dev/null 2>&1 &
sleep 1.5
perf sched record -q -o /tmp/pe/sch-$name.data -- sleep 2 >/dev/null 2>&1
wait
perf sched timehist -w -i /tmp/pe/sch-$name.data 2>/dev/null > /tmp/pe/schw-$name.txt
python3 - /tmp/pe/schw-$name.txt "$pid" <<'PY'
import sys,re,collections
def q(xs,p): xs=sorted(xs); return xs[int(p*(len(xs)-1))] if xs else float('nan')
pid=sys.argv[2]; wcpu=None; cat=collections.defaultdict(list)
for l in open(sys.argv[1]):
    m=re.match(r'\s*([\d.]+)\s+\[(\d+)\]\s+(\S+)\s+(.*)',l)
    if not m: continue
    t,cpu,task,rest=m.groups()
    if 'awakened:' in rest:
        if '/'+pid+']' in rest or '['+pid+']' in rest: wcpu=(cpu,task)
        continue
    if ('/'+pid+']' in task or '['+pid+']' in task) and wcpu:
        f=rest.split()
        try: d=float(f[1])*1000
        except: continue
        k='same' if wcpu[0]==cpu else 'cross'
        cat[k].append(d); cat['all'].append(d); wcpu=None
n=len(cat['all'])
print('%-6s wakes %d cross %.1f%% | delay all p50 %.0f p90 %.0f mean %.1f | same mean %.1f cross mean %.1f' % (sys.argv[1].split('-')[-1][:-4], n, 100*len(cat['cross'])/n, q(cat['all'],.5), q(cat['all'],.9), sum(cat['all'])/n, sum(cat['same'])/max(1,len(cat['same'])), sum(cat['cross'])/max(1,len(cat['cross']))))
PY
