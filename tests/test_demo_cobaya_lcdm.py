"""demos/cobaya_lcdm.py --quick: flowprior's enhanced run and cobaya's MCMC on a camb model, run as a script."""

import os
import re
import subprocess
import sys

import pytest

pytest.importorskip("cobaya", reason="cobaya is not installed: pip install 'flowprior[cobaya]'")
pytest.importorskip("camb", reason="camb is not installed (the demo's theory code): pip install camb")

DEMO = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "demos", "cobaya_lcdm.py")


@pytest.mark.slow
def test_quick_demo_prints_the_table():
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, DEMO, "--quick"], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    out = r.stdout
    assert "MCMC mean ± sd" in out and "enhanced mean ± sd" in out
    for name in ("logA", "ns", "As"):
        assert re.search(rf"^{name}\s+\S+ ±", out, re.M), out
    assert re.search(r"^enhanced\s+\d+\s+[\d.]+", out, re.M) and re.search(r"^MCMC\s+\d+\s+[\d.]+", out, re.M)
    assert "logZ = " in out
    worst = float(re.search(r"worst \|dmean\|/σ ([\d.]+)", out).group(1))
    assert worst < 0.5  # the two runs agree well inside their Monte Carlo errors (about 0.1σ here)
