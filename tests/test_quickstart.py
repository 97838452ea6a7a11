"""`memebot quickstart` end to end (offline: simulator -> store -> quality -> backtest -> train through the promotion
gate -> paper trading with the champion, or the @challenger when no model beat the baselines -> reports); its
refusals; and nbval over the tutorial notebooks."""

import json, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_quickstart_whole_loop(memebot, tmp_path):
    d = tmp_path / "qs"
    r = memebot("quickstart", "--dir", d, "--seed", "3", "--json", check=True)
    out = json.loads(r.stdout)
    assert Path(out["store"]).exists() and out["sim"]["launches"] == 5 and out["sim"]["candles"] > 1000
    assert out["backtest"]["bars"] > 1000 and out["backtest"]["metrics"]["trades"] >= 1
    assert Path(out["backtest"]["tearsheet"]).exists() and (d / "backtest" / "equity.csv").exists()
    fams = {m["family"]: m for m in out["models"]}
    assert set(fams) == {"logreg", "gbm"}
    # the gate's rule, re-checked from the reported held-out scores: a model no better than the best naive baseline by
    # the margin is refused (@challenger) even when there is no champion yet
    from memebot.config import load_settings

    margin = load_settings().ai.promotion_margin
    for m in fams.values():
        assert m["baseline"] in ("persistence", "momentum", "majority") and m["reason"].startswith("log_loss")
        if m["log_loss"] > m["baseline_log_loss"] - margin:
            assert m["decision"] == "challenger" and "does not beat best baseline" in m["reason"]
    # on this simulated market (seed 3) neither model beats the baselines: no champion, and the quickstart says so;
    # the paper step trades the gate's @challenger (the last refused version), labelled as such
    assert out["champion"] is None and [fams[f]["decision"] for f in ("logreg", "gbm")] == ["challenger", "challenger"]
    chal = fams["gbm"]
    assert chal["alias"] == "challenger" and fams["logreg"]["alias"] is None
    p = out["paper"]
    assert (
        p["model"] == "models:/quickstart-1m@challenger"
        and p["alias"] == "challenger"
        and p["strategy"].startswith("model_signal")
    )
    assert f"v{chal['version']}, gbm" in p["note"] and "not a champion" in p["note"]
    # the paper node ran the challenger through model_signal over the busiest simulated half hour; whatever it decided,
    # its ledger agrees with its fills, and every order it sent carries the served version
    assert p["predictions"] >= 30 and p["last_p_up"] and p["consistency"] == []
    from memebot.data.store import Store

    assert Path(p["ledger"]) == d / "runs" / "quickstart.duckdb"  # the node's own ledger, in the folder
    with Store(p["ledger"], read_only=True) as st:
        tags = {
            t for (t,) in st.cursor().execute("SELECT DISTINCT tag FROM orders WHERE run_id = 'quickstart'").fetchall()
        }
        n_orders = st.cursor().execute("SELECT count(*) FROM orders WHERE run_id = 'quickstart'").fetchone()[0]
        n_fills = st.cursor().execute("SELECT count(*) FROM fills WHERE run_id = 'quickstart'").fetchone()[0]
    assert n_orders == p["order_stats"]["submitted"] and n_fills == p["fills"]
    # nothing it sent was refused by the default [risk] limits (the default seed's run shows it trading)
    assert p["order_stats"]["rejected"] == 0 and p["risk"] == "active"
    # and the quickstart writes nothing outside its folder (no kill file, node state or ledger elsewhere)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["qs"]
    assert (d / "risk_state.json").exists() and json.loads((d / "risk_state.json").read_text())["running"] is False
    assert tags <= {f"model_signal v{chal['version']}"}
    for name, needle in (("quality", "Data quality report"), ("models", "held-out"), ("daily", "kill switch")):
        html = Path(out["reports"][name]).read_text()
        assert needle in html and "Traceback" not in html, name
    models_html = Path(out["reports"]["models"]).read_text()
    assert "quickstart-1m" in models_html and "does not beat best baseline" in models_html
    saved = json.loads((d / "quickstart.json").read_text())
    assert saved["champion"] is None and saved["paper"]["note"] == p["note"]
    # the human-readable summary says it plainly
    from memebot.commands.ops import quickstart_story
    from memebot.ops import QuickstartResult

    story = "\n".join(quickstart_story(QuickstartResult(**saved), load_settings()))
    assert "champion: none (no model beat the naive baselines" in story and "@challenger" in story


def test_quickstart_default_seed_trades_and_explains(memebot, tmp_path):
    "With the default seed a model is promoted, and paper trading with default settings sends orders that fill."
    d = tmp_path / "qs"
    r = memebot("quickstart", "--dir", d, check=True)
    saved = json.loads((d / "quickstart.json").read_text())
    p = saved["paper"]
    assert saved["champion"] is not None and p["alias"] == "champion"
    assert (
        p["order_stats"]["submitted"] > 0
        and p["fills"] > 0
        and p["order_stats"]["rejected"] == 0
        and p["risk"] == "active"
    )
    assert p["pnl"]["fees"] > 0  # the backtest's fill model and fees, in paper too
    out = r.stdout
    assert "before fees" in out and "annualised from one simulated day" in out  # it explains its numbers
    assert f"{p['order_stats']['submitted']} orders: {p['fills']} filled, 0 rejected" in out
    assert all(len(l) <= 80 or l.startswith("    /") for l in out.splitlines()), out  # 80 columns; paths unbroken
    assert "{" not in r.stderr and "report_rendered" not in r.stderr  # no log lines flood the story


def test_quickstart_refusals(memebot, tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "mine.txt").write_text("keep me")
    r = memebot("quickstart", "--dir", tmp_path / "busy")
    assert r.returncode == 2 and "not empty" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert (tmp_path / "busy" / "mine.txt").read_text() == "keep me"  # nothing of the user's is touched
    r = memebot("quickstart", "--minutes", "30", "--dir", tmp_path / "x")
    assert r.returncode == 2 and "minutes" in r.stderr


def test_tutorials_nbval(tmp_path):
    """The tutorial notebooks run top to bottom (`pytest --nbval-lax nbs/tutorials`)."""
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--nbval-lax",
            "-q",
            "-p",
            "no:cacheprovider",
            str(ROOT / "nbs" / "tutorials"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout[-4000:]
    assert " passed" in r.stdout
