# pct2.py DIR base,other,...: service time (time - schedule_lag, as bench/report.py) per round from pgbench logs
# DIR/NAME_rN.*; per percentile: pooled value, median of per-round differences from base, rounds below base,
# and a 90 % bootstrap interval of that median.
import glob, collections, statistics as st, sys, random
d = collections.defaultdict(dict)
for f in glob.glob(sys.argv[1] + '/*'):
    name, r = f.split('/')[-1].split('.')[0].rsplit('_r', 1)
    v = d[name].setdefault(int(r), [])
    for l in open(f):
        c = l.split()
        if len(c) >= 7 and c[2].isdigit(): v.append(int(c[2]) - int(c[6]))
for v in d.values():
    for r in v: v[r].sort()
P = [50, 90, 99, 99.9]
def pc(v, p): return v[min(len(v) - 1, int(len(v) * p / 100))]
names = sys.argv[2].split(','); base = names[0]; random.seed(1)
for n in names:
    rs = d[n]; pooled = sorted(x for v in rs.values() for x in v)
    print('%-8s rounds %2d  pooled ' % (n, len(rs)) + '  '.join('p%s %5d' % (p, pc(pooled, p)) for p in P))
    if n == base: continue
    for p in P:
        df = [pc(rs[r], p) - pc(d[base][r], p) for r in rs if r in d[base]]
        boots = sorted(st.median(random.choices(df, k=len(df))) for _ in range(2000))
        print('          p%-4s vs %s: median %+6.0f  90%% CI [%+6.0f, %+6.0f]  below in %d/%d' % (
            p, base, st.median(df), boots[100], boots[1899], sum(x < 0 for x in df), len(df)))
