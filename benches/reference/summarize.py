"""Prints compare.sh's table from its runs (name, wall s, max RSS KiB, user s,
sys s per line) and pinstream's `stats:` line (records and bytes of the
archive), then the performance issue's goals as met / NOT met.

    python3 benches/reference/summarize.py RUNS.tsv STATS.txt
"""
import re
import statistics
import sys


def main():
    runs, stats = sys.argv[1], sys.argv[2]
    by = {}
    for line in open(runs):
        name, wall, rss, user, sys_ = line.rstrip("\n").split("\t")
        by.setdefault(name, []).append((float(wall), int(rss), float(user) + float(sys_)))
    text = open(stats).read()
    records = int(re.search(r"records=(\d+)", text).group(1))
    nbytes = int(re.search(r"bytes=(\d+)", text).group(1))
    med = {n: tuple(statistics.median(x[i] for x in v) for i in range(3)) for n, v in by.items()}
    base = med["pinstream replay"][0]
    print(f"\n{records:,} records, {nbytes / 1e9:.2f} GB; medians of {len(by['pinstream replay'])} runs "
          f"(PySpark: {len(by.get('PySpark local[2]', []))})\n")
    print(f"| {'engine':<30} | {'wall s':>7} | {'records/s':>10} | {'MB/s':>6} | {'peak RSS MB':>11} | "
          f"{'CPU s':>6} | {'wall / pinstream':>16} |")
    print(f"|{'-' * 32}|{'-' * 9}:|{'-' * 11}:|{'-' * 7}:|{'-' * 12}:|{'-' * 7}:|{'-' * 17}:|")
    for n, (wall, rss, cpu) in med.items():
        print(f"| {n:<30} | {wall:7.2f} | {records / wall:10,.0f} | {nbytes / 1e6 / wall:6.0f} | "
              f"{rss / 1024:11.0f} | {cpu:6.1f} | {wall / base:16.2f} |")
    print()

    def goal(what, ok):
        print(f"goal: {what}: {'met' if ok else 'NOT met'}")

    peers = [n for n in ("DuckDB", "Polars", "chDB") if n in med]
    if peers:
        fastest = min(peers, key=lambda n: med[n][0])
        goal(f"replay <= 0.5 x fastest peer ({fastest} {med[fastest][0]:.2f} s): {base / med[fastest][0]:.2f} x",
             base <= 0.5 * med[fastest][0])
    if "PySpark local[2]" in med:
        s = med["PySpark local[2]"][0]
        goal(f"replay <= 1/30 x PySpark ({s:.1f} s): 1/{s / base:.1f}", base <= s / 30)
    if "pinstream replay --state-dir" in med:
        d = med["pinstream replay --state-dir"][0]
        goal(f"durable <= 1.3 x temporary: {d / base:.2f} x", d <= 1.3 * base)
    if "floor: parse" in med:
        f = med["floor: parse"][0]
        goal(f"replay <= 1.5 x parse floor ({f:.2f} s): {base / f:.2f} x", base <= 1.5 * f)
    rss = med["pinstream replay"][1] / 1024
    goal(f"replay peak RSS <= 512 MB: {rss:.0f} MB", rss <= 512)


if __name__ == "__main__":
    main()
