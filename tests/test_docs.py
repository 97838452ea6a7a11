"""The docs site builds from the notebooks, and a real browser (headless Chromium) opens the index and an API page."""

import os, shutil, subprocess
from pathlib import Path
import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def test_docs_build_and_browse(memebot, tmp_path):
    site = tmp_path / "site"
    memebot("docs", "build", "--no-execute", "--out", site, check=True)
    index, api = site / "index.html", site / "10_data.store.html"
    assert index.exists() and api.exists()
    html = api.read_text()
    assert "Market data" in html and "upsert" in html  # navigation by layer, and the page's API
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
