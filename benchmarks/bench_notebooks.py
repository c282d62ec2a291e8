"""How long the course notebooks take under nbval, and how much memory they need.

Runs ``pytest --nbval`` on every solution notebook (and ``--nbval-lax`` on every student
notebook), one notebook per pytest process, with an empty model cache as on a fresh machine, and
prints per notebook the wall time and the peak resident memory of the whole process tree (pytest
and its kernel, sampled every 0.1 s). Targets: all notebooks together under 10 minutes on 2 CPU
cores, peak memory under 4 GB.

    python benchmarks/bench_notebooks.py                 # solutions/ and notebooks/
    python benchmarks/bench_notebooks.py --only solutions
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
RUNS = {"solutions": "--nbval", "notebooks": "--nbval-lax"}


def tree_rss(process: psutil.Process) -> int:
    """Resident memory (bytes) of a process and all its descendants."""
    total = 0
    for proc in [process, *process.children(recursive=True)]:
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            pass
    return total


def run_notebook(path: Path, flag: str, env: dict[str, str]) -> tuple[bool, float, int]:
    """``(passed, seconds, peak bytes)`` of one ``pytest <flag> <path>`` run."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", flag, str(path)]
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    watcher = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss(watcher))
        time.sleep(0.1)
    seconds = time.perf_counter() - start
    output = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
    if proc.returncode != 0:
        print(output[-2000:], file=sys.stderr)
    return proc.returncode == 0, seconds, peak


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=tuple(RUNS), help="run only this folder")
    parser.add_argument("--pattern", default="*.ipynb", help="notebook file pattern")
    args = parser.parse_args(argv)

    folders = [args.only] if args.only else list(RUNS)
    with tempfile.TemporaryDirectory(prefix="gruunet-bench-cache-") as cache:
        env = {**os.environ, "GRUUNET_CACHE": cache}
        print(f"CPU threads: {os.cpu_count()} | model cache: empty at start (shared by all runs)")
        print(f"{'notebook':<42} {'mode':<11} {'result':<6} {'seconds':>8} {'peak MB':>8}")
        total, peak_all, failed = 0.0, 0, 0
        for folder in folders:
            for path in sorted((ROOT / folder).glob(args.pattern)):
                ok, seconds, peak = run_notebook(path, RUNS[folder], env)
                total += seconds
                peak_all = max(peak_all, peak)
                failed += not ok
                rel = path.relative_to(ROOT)
                result = "pass" if ok else "FAIL"
                mb = peak / 2**20
                print(f"{str(rel):<42} {RUNS[folder]:<11} {result:<6} {seconds:8.1f} {mb:8.0f}")
    print(f"total: {total:.1f} s ({total / 60:.1f} min), peak memory {peak_all / 2**30:.2f} GB")
    print(f"targets: under 10 min -> {total < 600}; under 4 GB -> {peak_all < 4 * 2**30}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
