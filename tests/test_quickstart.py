"""`memebot quickstart` end to end up to the paper step (offline: simulator -> store -> quality -> backtest -> train and
promote -> reports); its refusals; and nbval over the tutorial notebooks."""
import json, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_quickstart_without_paper(memebot, tmp_path):
    d = tmp_path / "qs"
    r = memebot("quickstart", "--no-paper", "--dir", d, "--seed", "3", "--json", check=True)
    out = json.loads(r.stdout)
    assert Path(out["store"]).exists() and out["sim"]["launches"] == 5 and out["sim"]["candles"] > 1000
    assert out["backtest"]["bars"] > 1000 and out["backtest"]["metrics"]["trades"] >= 1
    assert Path(out["backtest"]["tearsheet"]).exists() and (d / "backtest" / "equity.csv").exists()
    fams = {m["family"]: m for m in out["models"]}
    assert set(fams) == {"logreg", "gbm"} and fams["logreg"]["decision"] == "champion"      # first version: no champion yet
    assert out["champion"]["uri"] == "models:/quickstart-1m@champion" and out["champion"]["version"] in ("1", "2")
    assert out["paper"] is None
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


def test_paper_step_is_a_clear_error_until_wired(tmp_path):
    from memebot.ops import _paper_step, PaperUnavailable
    from memebot.core import MemebotError
    with pytest.raises(PaperUnavailable) as e:
        _paper_step(tmp_path / "s.duckdb", "models:/quickstart-1m@champion", f"sqlite:///{tmp_path}/m.db")
    assert isinstance(e.value, MemebotError) and "memebot.live" in str(e.value) or "_paper_step" in str(e.value)


def test_tutorials_nbval(tmp_path):
    """The tutorial notebooks run top to bottom (`pytest --nbval-lax nbs/tutorials`)."""
    r = subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "-q", "-p", "no:cacheprovider", str(ROOT / "nbs" / "tutorials")],
                       capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stdout[-4000:]
    assert " passed" in r.stdout
