# hist.py FILE: percentiles of critical-path.patch's histograms (0: worker's wake -> its send's submission, in
# user space, turns that woke to one completion; 1: that submitting io_uring_enter's duration), 0.25 µs buckets.
import collections, sys
h = collections.defaultdict(list)
for line in open(sys.argv[1]):
    k, v, n = line.split()
    h[int(k)].append((float(v), int(n)))
for k, v in sorted(h.items()):
    total = sum(n for _, n in v); acc = 0; out = {}
    for x, n in v:
        acc += n
        for p in (10, 50, 90, 99):
            if p not in out and acc >= total * p / 100: out[p] = x
    print(k, total, ' '.join('p%d %.2f' % (p, out[p]) for p in sorted(out)), 'mean %.2f' % (sum(x * n for x, n in v) / total))
