"""Docs site build time (issue 14): `memebot docs build` executed and not, beside nbdev-test over the same notebooks.

nbdev-test is the peer: it executes the same notebooks (skipping the same flagged cells) without rendering anything, so
the difference is what staging, mkdocs-jupyter and mkdocs cost. Run from the project root:

    .venv/bin/python bench/bench_docs.py --workers 2
"""

import argparse, shutil, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2, help="notebooks executed at once (docs build and nbdev-test)")
    args = ap.parse_args()
    from memebot.docs import build_docs

    out = Path(tempfile.mkdtemp(prefix="bench-docs-"))
    rows = []
    try:
        rows.append(("docs build --no-execute", timed(lambda: build_docs(ROOT, out / "a", execute=False))))
        rows.append(
            (
                f"docs build --execute --workers {args.workers}",
                timed(lambda: build_docs(ROOT, out / "b", execute=True, workers=args.workers)),
            )
        )
        exe = Path(sys.executable).parent / "nbdev-test"
        rows.append(
            (
                f"nbdev-test --n-workers {args.workers} (peer)",
                timed(lambda: subprocess.run([str(exe), "--n-workers", str(args.workers)], cwd=ROOT, check=True)),
            )
        )
    finally:
        shutil.rmtree(out, ignore_errors=True)
    print("| what | seconds |\n|---|---|")
    for what, s in rows:
        print(f"| {what} | {s:.1f} |")


if __name__ == "__main__":
    main()
