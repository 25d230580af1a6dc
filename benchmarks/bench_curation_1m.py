"""`pricer data` on a generated million-line raw file: raw lines/s and peak memory of all its
processes together, today's code and (optionally) an older checkout on the same file.

The file is made as benchmarks/bench_curation.py makes it (real listings of
../shared/data/amazon-pricer/train.jsonl in the layout of the six real raw records, ~3.4 kB a
line), except that a fifth of the lines have no price (`null`), as issue 19 asks
(`--all-priced`: none, which is bench_curation.py's file exactly).

    .venv/bin/python benchmarks/bench_curation_1m.py                       # 1,000,000 lines
    .venv/bin/python benchmarks/bench_curation_1m.py --lines 20000 \\
        --before /work/before-curation/src --out docs/measurements/x.json   # both sides

Each side is the real command (`python -m pricer data --input FILE --out DIR`, default sizes
400,000 / 2,000, 2 workers) in a subprocess; a thread samples its process tree every second:
the sum of RSS (pages that the forked workers share with their parent counted once per
process: an upper bound) and the sum of PSS (shared pages split between the processes: what
they hold together). CPU time is the subprocess tree's (getrusage of waited-for children). With
`--before`, the two outputs are compared row by row (text, price, category of train and test)
and report by report (all but `out`). Prints one JSON line.
"""

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from report import emit, machine  # one JSON line and the machine, as every benchmark
from bench_curation import make_raw_file  # the same generated file as the 20,000-line benchmark

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_EVERY = 1.0  # seconds between two memory samples of the process tree


def tree_memory(pid: int) -> tuple[int, int]:
    """(sum of RSS, sum of PSS) in bytes of a process and all its descendants."""
    import psutil

    try:
        procs = [psutil.Process(pid)]
        procs += procs[0].children(recursive=True)
    except psutil.NoSuchProcess:
        return 0, 0
    rss = pss = 0
    for proc in procs:
        try:
            fields = dict(line.split(":", 1) for line in
                          Path(f"/proc/{proc.pid}/smaps_rollup").read_text().splitlines()[1:])
            rss += int(fields["Rss"].split()[0]) * 1024
            pss += int(fields["Pss"].split()[0]) * 1024
        except (OSError, KeyError, ValueError):
            pass
    return rss, pss


def run_side(src: Path, raw: Path, out: Path) -> dict:
    """`python -m pricer data` with `src` first on the path: seconds, CPU, peak memory."""
    env = dict(os.environ, PYTHONPATH=str(src))
    peak = {"rss": 0, "pss": 0}
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "pricer", "data", "--input", str(raw),
                             "--out", str(out)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)

    def sample():  # reading smaps_rollup costs CPU: every 0.2 s took ~15 % of a core, so 1 s
        while proc.poll() is None:
            rss, pss = tree_memory(proc.pid)
            peak["rss"], peak["pss"] = max(peak["rss"], rss), max(peak["pss"], pss)
            time.sleep(SAMPLE_EVERY)
        peak["sampler_cpu_s"] = time.thread_time()

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = proc.communicate()
    seconds = time.perf_counter() - start
    sampler.join()
    if proc.returncode:
        raise SystemExit(f"{src}: pricer data failed ({proc.returncode}): {err[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (after.ru_utime + after.ru_stime) - (cpu.ru_utime + cpu.ru_stime)
    report = json.loads((out / "report.json").read_text())
    lines = report["read"]
    return {"src": str(src), "seconds": round(seconds, 1),
            "raw_lines_per_s": round(lines / seconds),
            "cpu_ms_per_line": round(1000 * cpu_s / lines, 3),
            "peak_rss_all_processes_mb": round(peak["rss"] / 1e6),
            "peak_pss_all_processes_mb": round(peak["pss"] / 1e6),
            "load_average_before": round(load, 2),
            "load_average_after": round(os.getloadavg()[0], 2),
            "sampler_cpu_s": round(peak["sampler_cpu_s"], 1), "sample_every_s": SAMPLE_EVERY,
            "read": lines, "kept": report["kept"], "splits": report["splits"],
            "dropped": {k: v for k, v in report["dropped"].items() if v}}


def digest(out: Path) -> dict:
    """A digest of each split's rows (text, price, category, in order) and of the report."""
    from datasets import load_from_disk

    data, sums = load_from_disk(str(out)), {}
    for name in ("train", "test"):
        h = hashlib.sha256()
        for batch in data[name].iter(batch_size=10_000):
            h.update(json.dumps([batch["text"], batch["price"], batch["category"]]).encode())
        sums[name] = h.hexdigest()
    report = json.loads((out / "report.json").read_text())
    report.pop("out")
    sums["report"] = hashlib.sha256(json.dumps(report, sort_keys=True).encode()).hexdigest()
    return sums




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--before", type=Path, help="src/ of an older checkout to run as well")
    parser.add_argument("--out", type=Path, help="also write the JSON line to this file")
    parser.add_argument("--tmp", type=Path, default=None, help="where to write the raw file")
    parser.add_argument("--all-priced", action="store_true",
                        help="every line priced: bench_curation.py's file, line for line")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        raw = Path(tmp) / "raw_meta_Bench.jsonl"
        start = time.perf_counter()
        make_raw_file(raw, args.lines, 0 if args.all_priced else 5)
        result = {"benchmark": "bench_curation_1m", "lines": args.lines,
                  "file_mb": round(raw.stat().st_size / 1e6),
                  "unpriced_share": 0 if args.all_priced else 0.2,
                  "command": "python -m pricer data --input FILE --out DIR (2 workers, "
                             "400,000 / 2,000)",
                  "generate_s": round(time.perf_counter() - start, 1),
                  "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                  "machine": machine()}
        sides = {"after": ROOT / "src"} | ({"before": args.before} if args.before else {})
        for name, src in sides.items():
            result[name] = run_side(src, raw, Path(tmp) / name)
            print(f"{name}: {result[name]}", file=sys.stderr)
            if args.out:  # what is measured so far, should a later side not finish
                args.out.write_text(json.dumps(result) + "\n")
        if args.before:
            result["identical_output"] = digest(Path(tmp) / "after") == digest(Path(tmp) / "before")
            result["speed_ratio_after_vs_before"] = round(
                result["after"]["raw_lines_per_s"] / result["before"]["raw_lines_per_s"], 2)
            result["pss_ratio_after_vs_before"] = round(
                result["after"]["peak_pss_all_processes_mb"]
                / result["before"]["peak_pss_all_processes_mb"], 2)
    emit(result, args.out)


if __name__ == "__main__":
    main()
