#!/usr/bin/env python3
"""pool.py RESULTS.csv...: b's per-repetition differences (p50, p99) pooled over several bench/run.sh runs of the
same data path, with the median, a 90 % bootstrap interval of it, how many repetitions were below, and the mean."""
import csv,random,statistics,sys
d={}
for f in sys.argv[1:]:
    for r in csv.DictReader(open(f)):
        if r['workload']!='b' or not r['metric'].startswith('lat_'): continue
        d[(f,r['rep'],r['target'],r['metric'])]=float(r['value'])
keys=sorted({(k[0],k[1]) for k in d})
for m in ['lat_p50_us','lat_p99_us']:
  for a,bs in [('pgweir',['pgbouncer']),('pgbouncer-2',['pgbouncer']),('pgweir',['pgbouncer','pgbouncer-2'])]:
    diffs=[]
    for f,rep in keys:
        try: diffs.append(d[(f,rep,a,m)]-statistics.mean(d[(f,rep,b,m)] for b in bs))
        except KeyError: pass
    med=statistics.median(diffs)
    random.seed(1)
    boots=sorted(statistics.median(random.choices(diffs,k=len(diffs))) for _ in range(5000))
    below=sum(x<0 for x in diffs)
    print(m,a,'-',bs,'n',len(diffs),'median %+.1f'%med,'90%% [%+.1f, %+.1f]'%(boots[250],boots[4750]),'below %d'%below, 'mean %+.1f'%statistics.mean(diffs))
