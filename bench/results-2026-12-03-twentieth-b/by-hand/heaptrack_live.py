# heaptrack_live.py FILE.zst: live malloc bytes over time from a heaptrack recording, and the growth of what is
# live from 3 s before the peak to 1.5 s after it, by the first pgweir frame of each allocation
import sys, subprocess, collections
lines = subprocess.run(['zstd', '-dc', sys.argv[1]], capture_output=True, text=True).stdout.splitlines()
strings = [None]; ips = [None]; traces = [None]; allocs = []
live = collections.Counter(); t = 0; snap = {}
series = []
for l in lines:
    if not l or l[0] == '#': continue
    k = l[0]; p = l[2:].split()
    if k == 's': strings.append(l[2:].split(' ', 1)[1] if ' ' in l[2:] else '')
    elif k == 'i': ips.append(p)
    elif k == 't': traces.append((int(p[0], 16), int(p[1], 16)))
    elif k == 'a': allocs.append((int(p[0], 16), int(p[1], 16)))
    elif k == '+': live[int(p[0], 16)] += 1
    elif k == '-': live[int(p[0], 16)] -= 1
    elif k == 'c':
        t = int(p[0], 16)
        tot = sum(allocs[a][0] * n for a, n in live.items() if n)
        series.append((t, tot))
        snap[t] = +live
# the burst: find the time of the highest live total; report the live set 1.5 s later
tpeak = max(series, key=lambda x: x[1])[0]
after = min((x for x in series if x[0] >= tpeak + 1500), key=lambda x: x[0])
print('peak at %d ms: %d B live; at %d ms: %d B live' % (tpeak, dict(series)[tpeak], after[0], after[1]))
base = min((x for x in series if x[0] >= tpeak - 3000), key=lambda x: x[0])
def name(ipi):
    ip = ips[ipi]
    return (strings[int(ip[2], 16)] or '?') if len(ip) > 2 else '?'
def site(tr):
    frames = []
    while tr:
        ipi, parent = traces[tr]; frames.append(name(ipi)); tr = parent
    for f in frames:
        if 'pgweir' in f and 'slab' not in f: return f[:110]
    return (frames[0] if frames else '?')[:110]
def group(s):
    g = collections.Counter()
    for a, n in s.items():
        size, tr = allocs[a]; g[site(tr)] += size * n
    return g
ga = group(snap[after[0]]); gb = group(snap[base[0]])
print('live growth from %d ms (before the burst) to %d ms, by first pgweir frame:' % (base[0], after[0]))
d = collections.Counter({k: ga[k] - gb.get(k, 0) for k in ga})
for k, v in d.most_common(15): print('%8d  %s' % (v, k))
