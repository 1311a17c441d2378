"""The setup and test scripts: they change nothing outside the checkout and the user's cache, run
every suite even when one fails, and clear shared environments no checkout uses any more."""
from __future__ import annotations

import os
import pathlib
import re
import subprocess

from tests.conftest import ROOT

SETUP_PATH = [ROOT / "scripts" / name for name in ("setup.sh", "envs.sh", "test.sh")] + [
    ROOT / "examples" / "quickstart.sh"]


def test_setup_and_test_scripts_install_no_system_packages_and_touch_no_service():
    for script in SETUP_PATH:
        text = script.read_text()
        code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
        found = re.findall(r"apt-get\s+install|apt\s+install|systemctl\s+(?:enable|start|unmask)|update-rc\.d|"
                           r"ssh-keygen\s+-A|sudo\s", code)
        assert not found, f"{script.name}: {found}"


def test_the_test_command_runs_every_suite_and_reports_each():
    text = (ROOT / "scripts" / "test.sh").read_text()
    assert "set -e" not in text.replace("set -euo pipefail", "")  # one failure must not skip the others
    for suite in (".venv/bin/python -m pytest", ".venv-runtime/bin/python -m pytest",
                  ".venv-tflite/bin/python -m pytest", "ruff check", "typecheck.sh"):
        assert suite in text, suite
    assert (ROOT / ".ci" / "run").read_text().rstrip().endswith("exec bash scripts/test.sh")


def _shared(home: pathlib.Path, name: str, users: list[pathlib.Path]) -> pathlib.Path:
    env = home / name
    (env / "lib" / "python3.11" / "site-packages").mkdir(parents=True)
    (env / ".complete").touch()
    (env / ".users").write_text("".join(f"{u}\n" for u in users))
    return env


def _venv_linking(venv: pathlib.Path, shared: pathlib.Path) -> pathlib.Path:
    site = venv / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    (site / "_edgelite_shared_env.pth").write_text(f"{shared}/lib/python3.11/site-packages\n")
    return venv


def test_prune_envs_removes_only_what_no_venv_links_to(tmp_path):
    home = tmp_path / "envs"
    checkout = tmp_path / "checkout"
    new = home / "full-new"
    old = _shared(home, "full-old", [checkout / ".venv"])       # the .venv now links to full-new
    _shared(home, "full-new", [checkout / ".venv"])
    _venv_linking(checkout / ".venv", new)
    metadata = _shared(home, "metadata-1", [checkout / ".venv"])
    (checkout / ".venv" / "edgelite-metadata-python").write_text(f"{metadata}/bin/python\n")
    gone_checkout = _shared(home, "runtime-1", [tmp_path / "deleted-checkout" / ".venv-runtime"])
    legacy = home / "tflite-legacy"                               # made before .users existed: left alone
    legacy.mkdir()
    env = {**os.environ, "EDGELITE_ENV_HOME": str(home)}
    out = subprocess.run(["bash", "-c", f"source '{ROOT}/scripts/envs.sh' && prune_envs"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in home.iterdir()) == ["full-new", "metadata-1", "tflite-legacy"]
    assert f"removing {old}" in out.stderr and f"removing {gone_checkout}" in out.stderr
