#!/usr/bin/env python3
"""legs.py TRACE: a proxy's time on each relay leg at a light fixed rate, from raw_syscalls enter/exit events
(perf script --ns -F tid,time,event,trace). A leg runs from the return of the call the proxy slept in (epoll_wait,
or io_uring_enter waiting for a completion) to the system call that sends (sendto, or io_uring_enter submitting
without waiting), and on to the next sleeping call. The query leg is the one whose send goes to PostgreSQL."""
import re, sys, collections

def q(xs, p):
    xs = sorted(xs)
    return xs[int(p * (len(xs) - 1))] if xs else float('nan')

def legs(path):
    out = collections.defaultdict(list)
    wake = sent = None
    kind = None
    pending = None
    for line in open(path):
        m = re.match(r'\s*(\d+)\s+([\d.]+):\s+raw_syscalls:sys_(enter|exit): NR (\d+) (.*)', line)
        if not m:
            continue
        _, t, ev, nr, rest = m.groups()
        t = float(t) * 1e6
        nr = int(nr)
        if ev == 'exit':
            if pending == 'sleep':
                wake = t
            elif pending == 'send':
                out['send call ' + kind].append(t - sent_at)
            pending = None
            continue
        a = rest.strip('()').split(', ')
        sleeping = nr == 232 or (nr == 426 and int(a[2], 16) > 0)
        sending = nr == 44 or (nr == 426 and int(a[2], 16) == 0 and int(a[1], 16) > 0)
        if sending:
            # sendto's length, or the io_uring leg by what else the submission carries (the query leg re-arms two
            # receives beside its send)
            if nr == 44:
                kind = 'reply' if int(a[2], 16) == 66 else 'query'
            else:
                kind = 'reply' if int(a[1], 16) == 1 else 'query'
            if wake is not None:
                out['wake->send ' + kind].append(t - wake)
            if sent is None:
                sent = (t, kind)
            sent_at = t
            wake = None
            pending = 'send'
        elif sleeping:
            if sent is not None:
                out['send->sleep ' + sent[1]].append(t - sent[0])
            sent = None
            pending = 'sleep'
        else:
            pending = None
    return out

for path in sys.argv[1:]:
    o = legs(path)
    print(path, ' | '.join('%s p50 %.1f' % (k, q(v, .5)) for k, v in sorted(o.items()) if len(v) > 200))
