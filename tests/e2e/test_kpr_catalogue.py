"""The Service conformance catalogue (kpr_conformance.py) is complete: every behaviour has
at least one test, and none of a behaviour's tests is skipped or expected to fail."""

import json
import os
import pathlib
import subprocess
import sys

from kpr_conformance import BEHAVIOURS

E2E = pathlib.Path(__file__).resolve().parent


def collected(tmp_path):
    out = tmp_path / "catalogue.json"
    env = dict(os.environ, AXON_KPR_CATALOGUE=str(out))
    res = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                          "-p", "no:cacheprovider", str(E2E)],
                         env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    return json.loads(out.read_text())


def test_every_behaviour_has_a_test_that_is_neither_skipped_nor_expected_to_fail(tmp_path):
    tests = collected(tmp_path)
    by_name = {name: [] for name in BEHAVIOURS}
    unknown = []
    for nodeid, t in tests.items():
        for name in t["kpr"]:
            if name not in by_name:
                unknown.append((nodeid, name))
                continue
            by_name[name].append(nodeid)
    assert not unknown, f"markers naming no behaviour of the catalogue: {unknown}"
    missing = [name for name, ids in by_name.items() if not ids]
    assert not missing, f"behaviours without a test: {missing}"
    excused = [(nodeid, name) for nodeid, t in tests.items() for name in t["kpr"]
               if t["xfail"] or t["skip"]]
    assert not excused, f"conformance tests skipped or expected to fail: {excused}"
