"""The rules as Prometheus itself reads them: `promtool check rules` accepts the file, and
`promtool test rules` runs series that cross every threshold through them (Debian's prometheus
package; .ci/run installs it)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
RULES = REPO_ROOT / "charts" / "vector-operator" / "files" / "prometheus-rules.yaml"
TESTS = REPO_ROOT / "tests" / "prometheus" / "rules-test.yaml"


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is missing: apt-get install prometheus (Debian's package; .ci/run installs it)")
    return found


def test_promtool_accepts_the_rules() -> None:
    checked = subprocess.run(
        [promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 22 rules found" in checked.stdout


def test_promtool_runs_series_across_every_threshold_through_them() -> None:
    tested = subprocess.run(
        [promtool(), "test", "rules", TESTS.name],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=TESTS.parent,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout
