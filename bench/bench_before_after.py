"""The event engine's throughput before and after a change, measured in one run on the same machine.

    PYTHONPATH=. .venv/bin/python bench/bench_before_after.py --ref c5a42d4 --rounds 3

Checks out `--ref` into a temporary git worktree, then alternates the two versions' `bench/bench_backtest.py` (engine
rows only, no peers, no sweep) `--rounds` times, so that load on a shared machine hits both alike, and reports the best
loop time of each. The older version runs with its own default risk hook (the account checks of its time); this one runs
with the account checks only (`risk=None`, the like-for-like row) and with the [risk] limits on (what backtests now do).
"""

import argparse, json, os, subprocess, sys, tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(repo: Path, out: Path, runs: int) -> dict:
    args = [
        sys.executable,
        str(repo / "bench" / "bench_backtest.py"),
        "--runs",
        str(runs),
        "--skip-backtesting-py",
        "--skip-sweep",
        "--json",
        str(out),
    ]
    if repo == ROOT:
        args.append("--engine-only")
    from memebot.core import shared_dir

    env = dict(
        os.environ, PYTHONPATH=str(repo), MEMEBOT_SHARED=str(shared_dir(required=True))
    )  # the worktree is elsewhere
    subprocess.run(args, check=True, env=env, cwd=repo, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--ref", required=True, help="the git revision to compare with (e.g. the last commit before the change)"
    )
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=3, help="best-of runs inside each round")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="memebot-before-"))
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(tmp / "repo"), a.ref], cwd=ROOT, check=True, capture_output=True
    )
    best: dict = {}
    try:
        for k in range(a.rounds):
            for name, repo in (("before", tmp / "repo"), ("after", ROOT)):
                doc = run(repo, tmp / f"{name}.json", a.runs)
                for cfg, rows in doc["configs"].items():
                    for r in rows:
                        if "run_s" not in r:
                            continue
                        key = (cfg, f"{name}: {r['engine']}")
                        best[key] = min(best.get(key, (float("inf"), r))[0], r["run_s"]), r
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tmp / "repo")], cwd=ROOT, capture_output=True)
    print(f"\nbest loop time over {a.rounds} alternating rounds x {a.runs} runs (748,422 bars, 25 symbols, 5m)\n")
    print("| EMA | version | fills | run s | bars/s | throughput vs before |")
    print("|---|---|---|---|---|---|")
    for cfg in sorted({c for c, _ in best}):
        base = next(v for (c, n), v in best.items() if c == cfg and n.startswith("before"))[0]
        for (c, n), (t, r) in sorted(best.items()):
            if c != cfg:
                continue
            print(f"| {cfg} | {n} | {r['fills']:,} | {t:.2f} | {r['bars'] / t:,.0f} | {base / t - 1:+.1%} |")


if __name__ == "__main__":
    main()
