"""report.html: self-contained, and every image loads in a real browser (headless Chromium)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from descend.cli import main
from descend.cli.report import Report, format_number

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip

# Marks on <body> how many images the page has and how many decoded to a real picture.
PROBE = """<script>
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var loaded = images.filter(function (i) { return i.complete && i.naturalWidth > 0; });
  document.body.setAttribute("data-images", String(images.length));
  document.body.setAttribute("data-loaded", String(loaded.length));
});
</script>"""

PNG_1x1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100e5270de40000000049454e44ae426082"
)


def external_references(html: str) -> list[str]:
    """Every src/href/url() that points outside the page (anything but a data: URI or #id)."""
    refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", html, flags=re.I)
    refs += re.findall(r"url\(\s*['\"]?([^)'\"]*)", html, flags=re.I)
    bad = [r for r in refs if not r.startswith(("data:", "#"))]
    if re.search(r"<link\b|@import|<script\b[^>]*\bsrc", html, flags=re.I):
        bad.append("<link>/@import/<script src>")
    return bad


def test_report_escapes_text_and_embeds_images(tmp_path):
    page = Report("a <title> & more", "sub")
    page.section("Numbers")
    page.table([{"name": "<b>", "value": 0.123456789}, {"name": "x", "value": 3}])
    page.key_values({"list": [1, 2.5], "none": None, "flag": True})
    page.image(PNG_1x1, "a pixel")
    page.bullet_list(["one", "two <i>"])
    path = page.write(tmp_path / "r.html")
    html = path.read_text()
    assert "&lt;title&gt; &amp; more" in html and "<b>" not in html and "&lt;i&gt;" in html
    assert "0.1235" in html and "data:image/png;base64,iVBORw0KGgo" in html
    assert external_references(html) == []
    assert page.figures == ["a pixel"]


def test_report_images_lists_the_figures_not_drawn(tmp_path):
    (tmp_path / "a.png").write_bytes(PNG_1x1)
    page = Report("t")
    page.images([(tmp_path / "a.png", "drawn")], [("curves", "no matplotlib")])
    html = page.render()
    assert page.figures == ["drawn"] and html.count("<img") == 1
    assert "<li>curves: not drawn (no matplotlib)</li>" in html
    page = Report("t")
    page.images([])
    assert "<ul>" not in page.render()


def test_format_number():
    assert format_number(float("nan")) == "nan"
    assert format_number(True) == "yes"
    assert format_number(12345.678, 3) == "1.23e+04"


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


def _dump_dom(binary: str, url: str, profile: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=10000",
         "--dump-dom", url],
        capture_output=True, text=True, timeout=90,
    )  # fmt: skip


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    """The Chromium binary, if it is installed and can render a page here."""
    binary = _chromium()
    if binary is None:
        pytest.skip("chromium is not installed (.ci/run installs Debian's package)")
    profile = tmp_path_factory.mktemp("chromium-profile")
    try:
        done = _dump_dom(binary, "data:text/html,<p>ready</p>", profile)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"chromium cannot run here: {exc}")
    if done.returncode != 0 or "ready" not in done.stdout:
        pytest.skip(f"chromium cannot run here: {done.stderr.strip()[-300:]}")
    return binary


def test_train_report_opens_in_chromium_with_every_image_and_the_numbers(chromium, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "run"
    code = main(["train", "moons:120", "--epochs", "4", "--seed", "0", "--hidden", "6",
                 "--out", str(out), "-q"])  # fmt: skip
    assert code == 0
    html = (out / "report.html").read_text()
    assert external_references(html) == []
    n_png = len(list(out.glob("*.png")))
    assert n_png >= 3  # curves, network, decision boundary (and gradient norms)
    assert html.count("<img ") == n_png
    # A copy of the page with a probe script that marks which images decoded.
    probed = tmp_path / "probed.html"
    probed.write_text(html.replace("</body>", PROBE + "</body>"))
    done = _dump_dom(chromium, probed.as_uri(), tmp_path / "profile")
    assert done.returncode == 0, done.stderr[-500:]
    dom = done.stdout
    images = int(re.search(r'data-images="(\d+)"', dom).group(1))
    loaded = int(re.search(r'data-loaded="(\d+)"', dom).group(1))
    assert images == n_png and loaded == images
    # The key numbers are on the rendered page, as the report formats them.
    metrics = json.loads((out / "metrics.json").read_text())
    for split in ("train", "validation", "test"):
        for key in ("loss", "accuracy"):
            assert format_number(metrics["splits"][split][key]) in dom, (split, key)
    assert "4 of 4" in dom  # epochs completed
    assert f">{metrics['n_updates']}<" in dom
    for heading in ("Final metrics", "Data", "Model", "Settings", "Training curves", "Figures"):
        assert f">{heading}<" in dom
