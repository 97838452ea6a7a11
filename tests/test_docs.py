"""The docs site builds from the notebooks, and a real browser (headless Chromium) opens the index and an API page."""

import os, shutil, subprocess, sys
from pathlib import Path
import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _git_status(root):
    return subprocess.run(
        ["git", "status", "--porcelain", "--ignored"], cwd=root, capture_output=True, text=True
    ).stdout


def test_docs_build_and_browse(cli_env, tmp_path):
    root = Path(__file__).resolve().parent.parent
    before = _git_status(root)
    site = tmp_path / "site"
    env = {k: v for k, v in cli_env.items() if k != "MEMEBOT_SETTINGS"}  # from any directory: no settings file either
    exe = Path(sys.executable).parent / "memebot"
    r = subprocess.run(
        [str(exe), "docs", "build", "--no-execute", "--out", str(site)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert _git_status(root) == before  # nothing written into the repository (ignored files included)
    index, api = site / "index.html", site / "10_data.store.html"
    assert index.exists() and api.exists()
    html = api.read_text()
    assert "Market data" in html and "upsert" in html  # navigation by layer, and the page's API
    assert "| export" not in html and "| default_exp" not in html and "| hide" not in html  # no nbdev directives
    assert "overflow-x: auto" in (site / "extra.css").read_text()  # long code lines scroll inside their block
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is required in CI (.ci/run installs it)")
        pytest.skip("chromium not installed (apt-get install chromium)")
    for page in (index, api):
        shot = tmp_path / f"{page.stem}.png"
        r = subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={tmp_path / 'chrome'}",
                "--window-size=1200,900",
                f"--screenshot={shot}",
                page.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert shot.exists() and shot.stat().st_size > 20_000, r.stderr[-800:]
    dom = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            f"--user-data-dir={tmp_path / 'chrome2'}",
            "--dump-dom",
            api.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "data.store" in dom.stdout and "Idempotent upserts" in dom.stdout
