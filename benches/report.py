"""Writes BENCHMARKS.md from the `metric:` lines the benchmarks printed (scripts/bench)."""
import datetime
import os
import platform
import re
import subprocess
import sys

out = sys.argv[1]
metrics = {}
for name in ["service", "end_to_end", "end_to_end_slurm", "parsl", "python", "dashboard"]:
    path = os.path.join(out, name + ".txt")
    if not os.path.exists(path):
        continue
    for line in open(path):
        m = re.match(r"metric: (.+?) = ([0-9.]+) (\S+)", line)
        if m:
            metrics[m.group(1)] = (float(m.group(2)), m.group(3))


def cpu():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def commit():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "unknown"


print("# Benchmarks\n")
print("Measured by `scripts/bench` (one run; figures from one machine, shared and noisy, so read")
print("ratios rather than absolute values). Every Lifeline task records every transition durably.\n")
print(f"- date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}")
print(f"- commit: {commit()}")
print(f"- machine: {os.cpu_count()} cores ({cpu()}), {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') // 2**30} GiB, {platform.system()} {platform.release()}")
print("- command: `scripts/bench`\n")
print("| figure | value | unit |")
print("|---|---:|---|")
def number(value):
    return f"{int(value):,}" if value == int(value) and value >= 1000 else f"{value:g}"


for name, (value, unit) in metrics.items():
    print(f"| {name} | {number(value)} | {unit} |")

pairs = [
    ("throughput, 10,000 no-op Python tasks", "lifeline no-op Python tasks, batch of 10000", "parsl no-op Python tasks, batch of 10000"),
    ("round trip p50", "lifeline round trip p50", "parsl round trip p50"),
    ("round trip p99", "lifeline round trip p99", "parsl round trip p99"),
    ("throughput through the Python Executor, 10,000 no-op tasks", "lifeline Python Executor no-op tasks, batch of 10000", "parsl no-op Python tasks, batch of 10000"),
    ("round trip p50 through the Python Executor", "lifeline Python Executor round trip p50", "parsl round trip p50"),
    ("round trip p99 through the Python Executor", "lifeline Python Executor round trip p99", "parsl round trip p99"),
]
print("\n## Lifeline beside Parsl (same machine, same run, 8 workers each)\n")
print("| figure | Lifeline | Parsl | Lifeline / Parsl |")
print("|---|---:|---:|---:|")
for label, ours, theirs in pairs:
    if ours in metrics and theirs in metrics:
        a, unit = metrics[ours]
        b, _ = metrics[theirs]
        print(f"| {label} ({unit}) | {number(a)} | {number(b)} | {a / b:.2f} |")
print("\nFor throughput a ratio above 1 favours Lifeline; for latency, below 1.")
