"""The documentation site: built with mkdocs --strict from docs/ (the test command builds it too), and its
front page looked at in headless Chromium where Chromium exists (.ci/run installs Debian's package).

``EDGELITE_DOCS_SCREENSHOTS=1`` copies the screenshot to docs/site-front.png."""
import os
import shutil
import subprocess
import tempfile

import pytest
from PIL import Image

from tests.conftest import ROOT

DOCS_PYTHON = ROOT / ".venv-docs" / "bin" / "python"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    if not DOCS_PYTHON.exists():
        pytest.skip("no .venv-docs (scripts/setup.sh builds it with the docs extra)")
    folder = tmp_path_factory.mktemp("site")
    out = subprocess.run(["bash", str(ROOT / "scripts" / "docs.sh"), str(DOCS_PYTHON), str(folder)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return folder


def test_every_page_is_built_with_the_generated_references(site):
    pages = {p.name for p in site.glob("*.html")}
    assert {"index.html", "converting.html", "live-video.html", "security.html", "command-line.html",
            "python-api.html", "benchmarks.html"} <= pages
    cli = (site / "command-line.html").read_text()
    assert "edgelite stream" in cli and "--serve" in cli  # from the click commands, not typed
    api = (site / "python-api.html").read_text()
    assert "run_in_background" in api and "Detector" in api  # from the docstrings
    assert "[[" not in (site / "live-video.html").read_text()  # every figure came from a benchmark's file


def test_the_command_reference_is_each_commands_own_help_in_the_order_people_use_them(site):
    from edgelite.cli.commands import main
    page = (site / "command-line.html").read_text()
    assert "Sentinel" not in page and "_required" not in page and "<code>--</code>" not in page
    order = ["example", "convert", "check", "check-input", "inspect", "predict", "stream", "profile", "sweep",
             "doctor"]
    assert main.list_commands(None) == order
    at = [page.index(f"Usage: edgelite {name} [OPTIONS]") for name in order]
    assert at == sorted(at)
    assert "[default: 10.0; 0.1&lt;=x&lt;=600]" in page  # stream --timeout's real default, as --help prints it


def test_a_docstring_warning_fails_the_build(tmp_path):
    """--strict for real: griffe's warning on a documented parameter the function does not have aborts the build
    (with --quiet, mkdocs printed nothing and passed)."""
    if not DOCS_PYTHON.exists():
        pytest.skip("no .venv-docs (scripts/setup.sh builds it with the docs extra)")
    copy = tmp_path / "checkout"
    for part in ("docs", "scripts", "runtime", "converters", "sdk"):
        shutil.copytree(ROOT / part, copy / part, ignore=shutil.ignore_patterns("__pycache__", "*.tflite"))
    shutil.copy(ROOT / "mkdocs.yml", copy / "mkdocs.yml")
    tasks = copy / "runtime" / "tasks" / "loading.py"
    text = tasks.read_text()
    line = "      threads: interpreter threads (default: the backend's).\n"
    assert line in text
    tasks.write_text(text.replace(line, line + "      nowhere: a parameter load() lacks.\n"))
    out = subprocess.run(["bash", str(copy / "scripts" / "docs.sh"), str(DOCS_PYTHON), str(tmp_path / "site")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode != 0, out.stdout[-2000:]
    assert "'nowhere' does not appear in the function signature" in out.stdout + out.stderr


def test_the_site_needs_nothing_from_the_network(site):
    """No font, style sheet or script from elsewhere: Material's offline plugin loads its search shim from
    unpkg.com, and scripts/docs_hooks.py points every page at the vendored copy instead."""
    import re
    for page in site.glob("*.html"):
        text = page.read_text()
        assert "fonts.googleapis.com" not in text and "cdn.jsdelivr" not in text and "unpkg.com" not in text, page.name
        assert not re.search(r"<(script|link)[^>]+(src|href)=\"https?://", text), page.name
    assert (site / "assets" / "javascripts" / "iframe-worker-shim.js").is_file()


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here (Debian's chromium package; .ci/run installs it on "
                                              "CI): the site is checked as files only")
def test_search_works_with_the_site_opened_from_files(site):
    """The search box answers in a browser opened on the built files, with no server and no network."""
    profile = tempfile.mkdtemp()
    try:
        dom = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                              "--disable-background-networking", "--disable-component-update", "--disable-sync",
                              f"--user-data-dir={profile}", "--virtual-time-budget=15000", "--dump-dom",
                              (site / "index.html").as_uri() + "?q=sandbox"], capture_output=True, text=True,
                             timeout=90).stdout
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    import re
    found = re.search(r'md-search-result__meta">(\d+) matching documents?<', dom)
    assert found and int(found.group(1)) >= 2, dom[-2000:]


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here (Debian's chromium package; .ci/run installs it on "
                                              "CI): the site is checked as files only")
def test_the_front_page_in_a_real_browser(site, tmp_path):
    shot, profile = tmp_path / "front.png", tempfile.mkdtemp()
    try:
        subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        f"--user-data-dir={profile}", "--window-size=1280,900", f"--screenshot={shot}",
                        (site / "index.html").as_uri()], capture_output=True, timeout=60)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    picture = Image.open(shot).convert("RGB")
    colors = len(set(picture.resize((64, 48)).getdata()))
    assert picture.size == (1280, 900) and colors > 50  # a rendered page with its picture, not a blank one
    if os.environ.get("EDGELITE_DOCS_SCREENSHOTS") == "1":
        shutil.copy(shot, ROOT / "docs" / "site-front.png")
