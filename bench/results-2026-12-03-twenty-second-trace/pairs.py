#!/usr/bin/env python3
"""pairs.py LAT3OUT: per-round paired differences of p50 and p99 between every two targets, with a 90 % bootstrap
interval of the median difference."""
import sys, random, statistics as st, collections, itertools
d = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    f = line.split()
    d[f[0]][f[1]] = (float(f[2]), float(f[3]))
random.seed(1)
for a, b in itertools.permutations(sorted(d), 2):
    if a < b: continue
    for i, m in ((0, 'p50'), (1, 'p99')):
        xs = [d[a][r][i] - d[b][r][i] for r in d[a] if r in d[b]]
        bs = sorted(st.median(random.choices(xs, k=len(xs))) for _ in range(4000))
        print('%s - %s %s median %+.1f [%+.1f, %+.1f] below %d/%d' % (a, b, m, st.median(xs), bs[200], bs[3800], sum(x < 0 for x in xs), len(xs)))
