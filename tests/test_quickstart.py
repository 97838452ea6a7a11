"""`memebot quickstart` end to end (offline: simulator -> store -> quality -> backtest -> train and promote -> paper
trading with the champion -> reports); its refusals; and nbval over the tutorial notebooks."""
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
    assert set(fams) == {"logreg", "gbm"} and fams["logreg"]["decision"] == "champion"      # first version: no champion yet
    assert out["champion"]["uri"] == "models:/quickstart-1m@champion" and out["champion"]["version"] in ("1", "2")
    # the paper node ran the champion through model_signal over the busiest simulated half hour; whatever it decided,
    # its ledger agrees with its fills, and every order it sent carries the champion's version
    p = out["paper"]
    assert p["model"] == out["champion"]["uri"] and p["strategy"].startswith("model_signal")
    assert p["predictions"] >= 30 and p["last_p_up"] and p["consistency"] == []
    from memebot.data.store import Store
    with Store(out["store"], read_only=True) as st:
        tags = {t for (t,) in st.cursor().execute("SELECT DISTINCT tag FROM orders WHERE run_id = 'quickstart'").fetchall()}
        n_orders = st.cursor().execute("SELECT count(*) FROM orders WHERE run_id = 'quickstart'").fetchone()[0]
        n_fills = st.cursor().execute("SELECT count(*) FROM fills WHERE run_id = 'quickstart'").fetchone()[0]
    assert n_orders == p["orders"] and n_fills == p["fills"]
    assert tags <= {f"model_signal v{out['champion']['version']}"}
    for name, needle in (("quality", "Data quality report"), ("models", "held-out"), ("daily", "kill switch")):
        html = Path(out["reports"][name]).read_text()
        assert needle in html and "Traceback" not in html, name
    assert "quickstart-1m" in Path(out["reports"]["models"]).read_text()
    assert json.loads((d / "quickstart.json").read_text())["champion"] == out["champion"]


def test_quickstart_refusals(memebot, tmp_path):
    (tmp_path / "busy").mkdir(); (tmp_path / "busy" / "mine.txt").write_text("keep me")
    r = memebot("quickstart", "--dir", tmp_path / "busy")
    assert r.returncode == 2 and "not empty" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert (tmp_path / "busy" / "mine.txt").read_text() == "keep me"          # nothing of the user's is touched
    r = memebot("quickstart", "--minutes", "30", "--dir", tmp_path / "x")
    assert r.returncode == 2 and "minutes" in r.stderr


def test_tutorials_nbval(tmp_path):
    """The tutorial notebooks run top to bottom (`pytest --nbval-lax nbs/tutorials`)."""
    r = subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "-q", "-p", "no:cacheprovider", str(ROOT / "nbs" / "tutorials")],
                       capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stdout[-4000:]
    assert " passed" in r.stdout
