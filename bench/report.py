#!/usr/bin/env python3
"""Helpers for bench/run.sh.

  report.py latency FILE...   pgbench --log files -> "p50 p99 p99.9 n" of the service time in µs
                              (logged time minus schedule lag, i.e. from when the transaction was sent)
  report.py report DIR        DIR/results.csv + DIR/meta.txt -> DIR/report.md (also printed), DIR/*.png
Standard library only; plots need gnuplot (package gnuplot-nox) and are skipped without it.
"""
import collections
import csv
import os
import random
import shutil
import statistics
import subprocess
import sys

TARGET_ORDER = ["direct", "pgbouncer", "pgbouncer-2", "pgweir", "pgweir-w1", "pgweir-w1-uring", "pgweir-w2", "pgweir-w2-uring",
                "relay-epoll", "relay-uring", "relay-hybrid"]


def percentile(sorted_values, q):
    if not sorted_values:
        return float("nan")
    k = (len(sorted_values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def latency(files):
    values = []
    for path in files:
        with open(path) as f:
            for line in f:
                cols = line.split()
                if len(cols) < 6 or not cols[2].isdigit():
                    continue  # "skipped" / "failed" transactions
                t = int(cols[2])
                if len(cols) >= 7 and cols[6].lstrip("-").isdigit():
                    t -= int(cols[6])
                values.append(t)
    values.sort()
    print("%.0f %.0f %.0f %d" % (percentile(values, 0.5), percentile(values, 0.99), percentile(values, 0.999), len(values)))


# --------------------------------------------------------------------------- report
class Data:
    def __init__(self, path):
        # (workload, variant, clients, target) -> metric -> [values of the ok repetitions]
        self.values = collections.defaultdict(lambda: collections.defaultdict(list))
        self.status = collections.defaultdict(list)  # same key -> statuses
        # same key -> metric -> {repetition: value}, to pair the targets' runs of one repetition
        self.by_rep = collections.defaultdict(lambda: collections.defaultdict(dict))
        with open(path) as f:
            for row in csv.DictReader(f):
                key = (row["workload"], row["variant"], int(row["clients"]), row["target"])
                if row["metric"] == "status":
                    self.status[key].append(row["value"])
                else:
                    try:
                        value = float(row["value"])
                    except ValueError:
                        continue
                    self.values[key][row["metric"]].append(value)
                    self.by_rep[key][row["metric"]][row["rep"]] = value

    def keys(self, workload):
        return sorted({k for k in list(self.values) + list(self.status) if k[0] == workload},
                      key=lambda k: (k[1], k[2], order(k[3])))

    def median(self, workload, variant, clients, target, metric):
        v = self.values.get((workload, variant, clients, target), {}).get(metric)
        return statistics.median(v) if v else None

    def ratio_cell(self, workload, variant, clients, target, metric):
        """The ratio of medians to PgBouncer, and with two repetitions or more the lowest and highest ratio of
        one repetition's pair of runs: a range that spans 1.0 says the difference is within run-to-run noise."""
        text = ratio(self.median(workload, variant, clients, target, metric),
                     self.median(workload, variant, clients, "pgbouncer", metric))
        mine = self.by_rep.get((workload, variant, clients, target), {}).get(metric, {})
        base = self.by_rep.get((workload, variant, clients, "pgbouncer"), {}).get(metric, {})
        pairs = [mine[r] / base[r] for r in mine if r in base and mine[r] > 0 and base[r] > 0]
        if text != "–" and len(pairs) >= 2:
            text += " (%.2f–%.2f)" % (min(pairs), max(pairs))
        return text

    def cell(self, workload, variant, clients, target, metric, digits=0):
        key = (workload, variant, clients, target)
        st = self.status.get(key, [])
        m = self.median(workload, variant, clients, target, metric)
        bad = sum(1 for s in st if s != "ok")
        if m is None:
            if key not in self.status and key not in self.values:
                return "–"
            if st and bad:
                return "fails" if "died" not in st else "proxy died"
            return "n/a"
        text = fmt(m, digits)
        if bad:
            text += " (%d/%d failed)" % (bad, len(st))
        return text


def order(t):
    return (TARGET_ORDER.index(t) if t in TARGET_ORDER else len(TARGET_ORDER), t)


def fmt(v, digits=0):
    if v is None:
        return "–"
    if digits == 0 and abs(v) >= 100:
        return "{:,.0f}".format(v).replace(",", " ")
    return ("{:.%df}" % max(digits, 1 if abs(v) < 100 else 0)).format(v)


def ratio(a, b):
    if a is None or b is None or a <= 0 or b <= 0:
        return "–"
    return "%.2f" % (a / b)


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def proxies(targets):
    return [t for t in targets if t != "direct"]


def throughput_section(d, wl, title, per_what="tx", note=""):
    """Tables per variant: rows = clients; TPS per target, proxy CPU µs per tx, pgweir*/PgBouncer ratios (and the
    bare relays' of workload h)."""
    keys = d.keys(wl)
    if not keys:
        return ""
    out = ["## " + title, ""]
    if note:
        out += [note, ""]
    for variant in sorted({k[1] for k in keys}, key=variant_order):
        vkeys = [k for k in keys if k[1] == variant]
        targets = sorted({k[3] for k in vkeys}, key=order)
        pw = [t for t in targets if t.startswith(("pgweir", "relay"))]
        header = ["clients"] + ["%s TPS" % t for t in targets]
        header += ["%s/pgbouncer TPS" % t for t in pw if "pgbouncer" in targets]
        header += ["%s CPU µs/%s" % (t, per_what) for t in proxies(targets)]
        header += ["%s/pgbouncer CPU" % t for t in pw if "pgbouncer" in targets]
        rows = []
        for c in sorted({k[2] for k in vkeys}):
            r = [c] + [d.cell(wl, variant, c, t, "tps") for t in targets]
            if "pgbouncer" in targets:
                r += [d.ratio_cell(wl, variant, c, t, "tps") for t in pw]
            r += [d.cell(wl, variant, c, t, "cpu_us_per_tx", 1) for t in proxies(targets)]
            if "pgbouncer" in targets:
                r += [d.ratio_cell(wl, variant, c, t, "cpu_us_per_tx") for t in pw]
            rows.append(r)
        out += ["### %s" % variant, "", table(header, rows), ""]
    return "\n".join(out)


def variant_order(v):
    known = ["simple", "extended", "prepared", "trust", "scram-sha-256", "simple-tls", "connect-tls"]
    return (known.index(v) if v in known else len(known), v)


def median_interval(values, resamples=2000):
    """A 90 % bootstrap interval of the median of `values` (fixed seed: the same data gives the same report)."""
    rng = random.Random(1)
    meds = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(resamples))
    return meds[resamples // 20], meds[resamples - 1 - resamples // 20]


def latency_section(d):
    keys = d.keys("b")
    if not keys:
        return ""
    variant = keys[0][1]
    targets = sorted({k[3] for k in keys}, key=order)
    out = ["## b. Latency at a fixed rate (%s tx/s, pgbench -S -M simple -c 10 -j 2 -R)" % variant.replace("rate", ""), "",
           "Service time per transaction from pgbench --log (logged time minus schedule lag), median over repetitions "
           "of each repetition's percentile; added = target − direct.", ""]
    rows = []
    for t in targets:
        p = {m: d.median("b", variant, 10, t, m) for m in ("lat_p50_us", "lat_p99_us", "lat_p999_us")}
        base = {m: d.median("b", variant, 10, "direct", m) for m in p}
        added = {m: (None if p[m] is None or base[m] is None or t == "direct" else p[m] - base[m]) for m in p}
        rows.append([t, d.cell("b", variant, 10, t, "lat_p50_us"), d.cell("b", variant, 10, t, "lat_p99_us"),
                     d.cell("b", variant, 10, t, "lat_p999_us"), fmt(added["lat_p50_us"]), fmt(added["lat_p99_us"]),
                     d.cell("b", variant, 10, t, "tps"), d.cell("b", variant, 10, t, "cpu_us_per_tx", 1) if t != "direct" else "–"])
    out.append(table(["target", "p50 µs", "p99 µs", "p99.9 µs", "added p50 µs", "added p99 µs", "TPS achieved", "proxy CPU µs/tx"], rows))
    dp = {t: [None if d.median("b", variant, 10, t, m) is None or d.median("b", variant, 10, "direct", m) is None
              else d.median("b", variant, 10, t, m) - d.median("b", variant, 10, "direct", m) for m in ("lat_p50_us", "lat_p99_us")]
          for t in ("pgbouncer", "pgweir")}
    out += ["", "pgweir/pgbouncer added latency: p50 %s, p99 %s; proxy CPU per tx at this rate: %s" % (
        ratio(dp["pgweir"][0], dp["pgbouncer"][0]), ratio(dp["pgweir"][1], dp["pgbouncer"][1]),
        ratio(d.median("b", variant, 10, "pgweir", "cpu_us_per_tx"), d.median("b", variant, 10, "pgbouncer", "cpu_us_per_tx")))]
    # Each repetition runs every target back to back: pgweir − PgBouncer within one repetition leaves out the
    # drift between repetitions.
    def paired(target):
        parts = []
        for m in ("lat_p50_us", "lat_p99_us"):
            mine = d.by_rep.get(("b", variant, 10, target), {}).get(m, {})
            base = d.by_rep.get(("b", variant, 10, "pgbouncer"), {}).get(m, {})
            diffs = [mine[r] - base[r] for r in mine if r in base]
            if diffs:
                part = "%s below PgBouncer's in %d of %d repetitions, median difference %+.0f µs" % (
                    m[4:7], sum(1 for x in diffs if x < 0), len(diffs), statistics.median(diffs))
                if len(diffs) >= 5:  # fewer say nothing about an interval (a smoke run has one)
                    part += " (90 %% interval %+.0f to %+.0f)" % median_interval(diffs)
                parts.append(part)
        return "; ".join(parts)
    mine, twin = paired("pgweir"), paired("pgbouncer-2")
    if mine:
        out += ["", "Per repetition, pgweir's " + mine + "."]
    if twin:
        # The same program twice: what a difference of this size between two proxies is worth.
        out += ["", "A/A: a second PgBouncer, configured like the first, in the same repetitions: " + twin + "."]
    out.append("")
    return "\n".join(out)


def idle_section(d):
    keys = d.keys("c")
    if not keys:
        return ""
    out = ["## c. Memory per idle client", "",
           "Fresh proxy, warmed with its 10 server connections; N clients log in (SCRAM) and stay idle. "
           "`idle`: RSS read 1 s after the last login. `busy`: each client then runs one query (SELECT 1), and RSS "
           "is read BUSY_SETTLE seconds later (default 4; pgweir parks a client idle for `client_park_after`, 2 s). "
           "KB/client = (VmRSS after − VmRSS before) / clients logged in; median over repetitions. "
           "Direct PostgreSQL would need one backend process per client (not measured).", ""]
    rows = []
    for variant in ("idle", "busy"):
        for n in sorted({k[2] for k in keys if k[1] == "%s%d" % (variant, k[2])}):
            var = "%s%d" % (variant, n)
            r = [variant, n]
            for t in ("pgbouncer", "pgweir"):
                r += [d.cell("c", var, n, t, "kb_per_client", 2), d.cell("c", var, n, t, "rss_before_kb"),
                      d.cell("c", var, n, t, "rss_after_kb"), d.cell("c", var, n, t, "clients_ok")]
            r.append(ratio(d.median("c", var, n, "pgweir", "kb_per_client"), d.median("c", var, n, "pgbouncer", "kb_per_client")))
            rows.append(r)
    out.append(table(["variant", "clients", "pgbouncer KB/client", "pgbouncer RSS before KB", "pgbouncer RSS after KB", "pgbouncer logged in",
                      "pgweir KB/client", "pgweir RSS before KB", "pgweir RSS after KB", "pgweir logged in", "pgweir/pgbouncer"], rows))
    return "\n".join(out) + "\n"


def stream_section(d):
    keys = d.keys("f")
    if not keys:
        return ""
    out = ["## f. Result streaming (pgbench -f 'SELECT generate_series(1, N)', 1 client, simple protocol)", "",
           "MB/s = executions/s × wire bytes of one result (RowDescription, N DataRows, CommandComplete, ReadyForQuery); "
           "proxy CPU µs per MB of result.", ""]
    rows = []
    targets = sorted({k[3] for k in keys}, key=order)
    for var in sorted({k[1] for k in keys}, key=lambda v: int(v[4:])):
        r = ["%d" % int(var[4:])] + [d.cell("f", var, 1, t, "mb_per_s", 1) for t in targets]
        r.append(ratio(d.median("f", var, 1, "pgweir", "mb_per_s"), d.median("f", var, 1, "pgbouncer", "mb_per_s")))
        r += [d.cell("f", var, 1, t, "cpu_us_per_mb", 1) for t in proxies(targets)]
        r.append(ratio(d.median("f", var, 1, "pgweir", "cpu_us_per_mb"), d.median("f", var, 1, "pgbouncer", "cpu_us_per_mb")))
        rows.append(r)
    header = ["rows"] + ["%s MB/s" % t for t in targets] + ["pgweir/pgbouncer MB/s"] + \
             ["%s CPU µs/MB" % t for t in proxies(targets)] + ["pgweir/pgbouncer CPU"]
    out.append(table(header, rows))
    return "\n".join(out) + "\n"


def syscall_section(d):
    keys = d.keys("s")
    if not keys:
        return ""
    out = ["## Syscalls per transaction (strace -c -f attached to the proxy; pgbench -S -M simple -c 10)", "",
           "Total syscalls of all the proxy's threads while pgbench ran (includes the 10 client logins; the proxies' server connections were opened by a warm-up run), divided by transactions. "
           "strace slows the proxy down a lot: only the counts mean something here, not the speed. "
           "`pgweir` is the main pgweir of a–f (one worker per core; its server.io is in the list above); "
           "`pgweir-w1` has one worker, like PgBouncer's single thread, and server.io = epoll; `pgweir-w1-uring` is that "
           "with server.io = io_uring.", ""]
    rows = []
    measured = [t for t in ("pgbouncer", "pgweir", "pgweir-w1", "pgweir-w1-uring") if d.cell("s", "simple", 10, t, "syscalls") not in ("", "–")]
    for t in measured:
        rows.append([t, d.cell("s", "simple", 10, t, "syscalls_per_tx", 2), d.cell("s", "simple", 10, t, "syscalls"),
                     d.cell("s", "simple", 10, t, "tx")])
    for t in measured[1:]:
        rows.append([t + "/pgbouncer", ratio(d.median("s", "simple", 10, t, "syscalls_per_tx"),
                                             d.median("s", "simple", 10, "pgbouncer", "syscalls_per_tx")), "", ""])
    out.append(table(["proxy", "syscalls/tx", "syscalls", "transactions"], rows))
    return "\n".join(out) + "\n"


def plots(d, directory, workload, prefix):
    """PNG per variant: TPS vs clients and proxy CPU µs/tx vs clients, one line per target."""
    made = []
    if not shutil.which("gnuplot"):
        return made
    keys = d.keys(workload)
    for variant in sorted({k[1] for k in keys}, key=variant_order):
        vkeys = [k for k in keys if k[1] == variant]
        clients = sorted({k[2] for k in vkeys})
        targets = sorted({k[3] for k in vkeys}, key=order)
        for metric, label in (("tps", "TPS"), ("cpu_us_per_tx", "proxy CPU µs per transaction")):
            series = []
            for t in targets:
                pts = [(c, d.median(workload, variant, c, t, metric)) for c in clients]
                pts = [(c, v) for c, v in pts if v is not None]
                if pts:
                    series.append((t, pts))
            if not series:
                continue
            name = "%s_%s_%s.png" % (prefix, variant, metric)
            dat = os.path.join(directory, "raw", name.replace(".png", ".dat"))
            with open(dat, "w") as f:
                for t, pts in series:
                    f.write("# %s\n" % t)
                    for c, v in pts:
                        f.write("%d %g\n" % (c, v))
                    f.write("\n\n")
            plot = ", ".join("'%s' index %d using 1:2 with linespoints title '%s'" % (dat, i, t) for i, (t, _) in enumerate(series))
            script = "\n".join([
                "set terminal png size 900,560 noenhanced",
                "set output '%s'" % os.path.join(directory, name),
                "set title '%s: %s — %s (median of repetitions)'" % (prefix, label, variant),
                "set xlabel 'clients'", "set ylabel '%s'" % label,
                "set logscale x" if len(clients) > 1 and min(clients) > 0 else "",
                "set xtics (%s)" % ", ".join("'%d' %d" % (c, c) for c in clients),
                "set offsets graph 0.05, graph 0.05, graph 0.05, 0",
                "set yrange [0:*]", "set grid", "set key outside right",
                "plot " + plot, ""])
            r = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
            if r.returncode == 0:
                made.append(name)
            else:
                sys.stderr.write("gnuplot failed for %s: %s\n" % (name, r.stderr[:300]))
    return made


def report(directory):
    d = Data(os.path.join(directory, "results.csv"))
    meta = open(os.path.join(directory, "meta.txt")).read().strip().splitlines()
    parts = ["# pgweir vs PgBouncer benchmark", "", *["- " + m for m in meta], "",
             "Medians over repetitions. Ratios are pgweir ÷ PgBouncer: above 1 is better for TPS and MB/s, "
             "below 1 is better for CPU, memory, syscalls and latency. CPU µs/tx is the proxy process's "
             "utime+stime delta over the run divided by the transactions pgbench completed. "
             "A ratio's bracket (lo–hi), with two repetitions or more: the lowest and highest of the per-repetition "
             "ratios, each between two runs of the same repetition; where it spans 1.0, the two proxies differ by "
             "less than one run differs from the next. "
             "\"fails\": pgbench aborted in every repetition; \"–\": not measured.", ""]
    def with_plots(section, wl):
        if section:
            parts.append(section)
            made = plots(d, directory, wl, wl)
            if made:
                parts.extend(["Plots: " + ", ".join("[%s](%s)" % (m, m) for m in made), ""])

    with_plots(throughput_section(d, "a", "a. Read-only throughput (pgbench -S, -T, -j 2)",
               note="Transaction pooling, pool size 10. `prepared` uses named prepared statements: in transaction "
                    "mode a proxy that does not track them fails (PgBouncer 1.18 does not; for pgweir a failure "
                    "means n/a in transaction mode, a separate issue)."), "a")
    parts.append(latency_section(d))
    parts.append(idle_section(d))
    parts.append(throughput_section(d, "d", "d. New connections per second (pgbench -S -C -c 10 -j 2)", per_what="connection",
                 note="TPS here includes a full connect + login per transaction, so it is connections per second; "
                      "CPU µs per connection. The auth method applies to both proxies and to PostgreSQL itself (for direct)."))
    parts.append(throughput_section(d, "e", "e. Client TLS (sslmode=require)",
                 note="simple-tls: pgbench -S -M simple; connect-tls: pgbench -S -C -c 10 (CPU per connection, TLS "
                      "handshake included). Proxy to PostgreSQL stays plaintext."))
    parts.append(stream_section(d))
    with_plots(throughput_section(d, "g", "g. pgweir worker threads (pgbench -S; pgweir with workers = 1 and 2, server.io = epoll and io_uring, PgBouncer alongside)"), "g")
    with_plots(throughput_section(d, "h", "h. The floor: bare relays beside PgBouncer and pgweir (one worker, epoll and io_uring)",
               note="`relay-epoll`, `relay-uring` and `relay-hybrid` (bench/floor/relay.cpp) are session poolers "
                    "reduced to copying bytes: each client gets a warm backend of its own while it stays, and nothing "
                    "of the protocol but the login is looked at. They show the least a proxy can spend per "
                    "transaction with epoll (recv, send, epoll_wait), with io_uring (one ring, DEFER_TASKRUN, sends "
                    "and recvs submitted together with the wait), and with that io_uring woken through epoll_wait "
                    "(as inside an epoll event loop). `pgweir-w1-uring` is pgweir with one worker and "
                    "server.io = io_uring."), "h")
    parts.append(syscall_section(d))
    text = "\n".join(p for p in parts if p is not None).rstrip() + "\n"
    with open(os.path.join(directory, "report.md"), "w") as f:
        f.write(text)
    sys.stdout.write(text)


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "latency":
        latency(sys.argv[2:])
    elif len(sys.argv) == 3 and sys.argv[1] == "report":
        report(sys.argv[2])
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
