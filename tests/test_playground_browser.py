"""The playground in a real browser: Debian's Chromium, driven by Playwright.

Skipped where Chromium or Playwright is missing (Playwright never downloads a browser here).
One browser and one server for the module. Screenshots of the main views go to a temporary
folder, or to the folder named by DESCEND_SCREENSHOTS (docs/playground for the README).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
sync_api = pytest.importorskip("playwright.sync_api")

import descend as ds  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip("Chromium is not installed (apt-get install chromium)", allow_module_level=True)
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


@pytest.fixture(scope="module")
def server():
    from descend.playground.server import BackgroundServer

    running = BackgroundServer().start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        except Exception as exc:  # noqa: BLE001 - any launch failure means: cannot run here
            pytest.skip(f"Chromium does not start here: {exc}")
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = os.environ.get("DESCEND_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _open(browser, server, width=1280, height=800, **options):
    page = browser.new_page(viewport={"width": width, "height": height}, **options)
    page.errors = []
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.goto(server.url)
    page.wait_for_function("window.playground.setup !== null && window.playground.inflight === 0")
    return page


def _updates(page) -> int:
    return page.evaluate("window.playground.frame.updates")


def _settled(page, updates=None):
    condition = "window.playground.inflight === 0"
    if updates is not None:
        condition += f" && window.playground.frame.updates === {updates}"
    page.wait_for_function(condition, timeout=30000)


def test_choose_data_step_play_pause_and_keys(browser, server, shots):
    page = _open(browser, server)
    page.select_option("#data", "circles")
    page.wait_for_function("window.playground.setup.settings.data === 'circles'")
    _settled(page, 0)
    for n in (1, 2, 3):
        page.click("#step")
        _settled(page, n)
    page.click("#play")
    page.wait_for_function("window.playground.frame.updates > 8", timeout=30000)
    page.click("#play")  # pause
    _settled(page)
    paused = _updates(page)
    page.wait_for_timeout(300)
    assert _updates(page) == paused  # it stays paused
    assert page.evaluate("window.playground.costs.length") == paused
    # The keyboard: s steps, e runs an epoch, space plays and pauses (focus on the page).
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("s")
    _settled(page, paused + 1)
    page.keyboard.press("e")
    page.wait_for_function("window.playground.frame.batch_in_epoch === 0")
    _settled(page)
    assert page.evaluate("window.playground.epochs.length") >= 1
    # A hundred updates a frame until the circles are learnt, for the picture.
    page.select_option("#speed", "100")
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("Space")
    page.wait_for_function("window.playground.frame.updates > 600", timeout=60000)
    page.keyboard.press("Space")
    _settled(page)
    assert not page.evaluate("window.playground.playing")
    page.select_option("#speed", "1")
    page.evaluate("document.activeElement.blur()")
    page.screenshot(path=str(shots / "train.png"), full_page=True, scale="css")
    page.keyboard.press("r")
    _settled(page, 0)
    # Tab reaches the controls in order, and Enter on a focused button acts.
    page.focus("#step")
    page.keyboard.press("Enter")
    _settled(page, 1)
    assert page.errors == []
    page.close()


def test_network_and_backprop_numbers_on_hover(browser, server, shots):
    page = _open(browser, server)
    page.select_option("#data", "digits:0-3")
    page.wait_for_function("window.playground.setup.settings.data === 'digits:0-3'",
                           timeout=60000)  # fmt: skip
    page.click("#epoch")
    page.wait_for_function("window.playground.frame.epoch === 1")
    assert page.locator("#net circle").count() == 64 + 16 + 4
    page.check("#show-grads")
    page.hover("#net circle >> nth=70")  # a hidden node
    assert "dC/da" in page.text_content("#net-info")
    # Tap the middle of the edge from hidden node 3 to output node 2.
    x, y = page.evaluate("""() => {
        const net = window.playground.net;
        const box = document.getElementById("net").getBoundingClientRect();
        const [ax, ay] = net.pos[1][3], [bx, by] = net.pos[2][2];
        const kx = box.width / net.W, ky = box.height / net.H;
        return [box.left + (ax + bx) / 2 * kx, box.top + (ay + by) / 2 * ky];
    }""")
    page.mouse.click(x, y)
    info = page.text_content("#net-info")
    assert info.startswith("Edge from node 3 of layer 1 to node 2 of layer 2") and "dC/dW" in info
    page.fill("#sample", "5")
    page.press("#sample", "Enter")
    page.wait_for_function("window.playground.frame.network.sample === 5")
    page.screenshot(path=str(shots / "network-digits.png"), full_page=True, scale="css")
    assert page.errors == []
    page.close()


def test_upload_a_csv_and_download_the_model(browser, server, tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=80)
    csv = tmp_path / "mine.csv"
    rows = zip(X.tolist(), y.tolist(), strict=True)
    csv.write_text("u,v,w,price\n" + "".join(f"{a},{b},{c},{t}\n" for (a, b, c), t in rows))
    page = _open(browser, server)
    page.fill("#target", "price")
    page.set_input_files("#upload", str(csv))
    page.wait_for_function("window.playground.setup.settings.data === 'upload'")
    assert page.evaluate("window.playground.setup.task") == "regression"
    assert page.evaluate("window.playground.setup.sizes[0]") == 3
    page.click("#epoch")
    page.wait_for_function("window.playground.frame.epoch === 1")
    with page.expect_download() as info:
        page.click("#dl-model")
    path = tmp_path / "model.npz"
    info.value.save_as(path)
    model = ds.load(path)
    assert model.layers[0].in_features == 3
    session = next(iter(server.app.state.sessions.values()))
    for name, p in session.model.named_parameters().items():
        assert np.array_equal(model.named_parameters()[name].data, p.data)
    # A broken file gets an error in the page, and the page goes on.
    bad = tmp_path / "bad.csv"
    bad.write_text("u,price\n1,2\nx,3\n4,5\n6,7\n")
    page.set_input_files("#upload", str(bad))
    page.wait_for_selector("#error:not([hidden])")
    assert "bad.csv" in page.text_content("#error")
    page.click("#step")
    _settled(page)
    assert page.errors == []
    page.close()


def test_line_surface_race_and_minima_views(browser, server, shots):
    page = _open(browser, server)
    page.select_option("#data", "diabetes-line")
    page.wait_for_function("window.playground.setup.surface !== undefined")
    page.click("#epoch")
    for _ in range(20):
        page.click("#step")
    _settled(page, 21)
    assert page.evaluate("window.playground.path.length") == 22
    # The costs the page holds (and draws) are ds.fit's, bit for bit.
    from descend.playground import Session

    shown = page.evaluate("window.playground.costs")
    settings = page.evaluate("window.playground.setup.settings")
    session = Session()
    session.configure(settings)
    model = ds.nn.mlp(session.sizes, settings["activation"], None, seed=settings["seed"])
    history = ds.fit(model, session.prep.X_train, session.y_train, loss="mse",
                     optimizer=settings["optimizer"], lr=settings["lr"], batch_size="full",
                     epochs=21, seed=settings["seed"], progress=False)  # fmt: skip
    assert shown == history.step["loss"]
    page.screenshot(path=str(shots / "surface.png"), full_page=True, scale="css")

    page.select_option("#data", "moons")
    page.wait_for_function("window.playground.setup.settings.data === 'moons'")
    page.click("#tab-race")
    page.fill("#race-epochs", "4")
    page.click("#race-start")
    page.wait_for_function("window.playground.race && !window.playground.racing"
                           " && window.playground.race.variants[0].epochs === 4")  # fmt: skip
    assert page.locator("#race-table tbody tr").count() == 3
    page.screenshot(path=str(shots / "race.png"), full_page=True, scale="css")

    page.click("#tab-minima")
    page.fill("#min-starts", "40")
    page.fill("#min-steps", "300")
    page.click("#min-run")
    page.wait_for_function("window.playground.minima !== undefined", timeout=60000)
    assert page.locator("#minima-panels canvas").count() == 3
    page.screenshot(path=str(shots / "minima.png"), full_page=True, scale="css")
    assert page.errors == []
    page.close()


def test_readable_on_a_phone(browser, server, shots):
    page = _open(browser, server, width=390, height=844, device_scale_factor=2,
                 is_mobile=True, has_touch=True)  # fmt: skip
    page.tap("#step")
    _settled(page, 1)
    # Nothing wider than the screen: no sideways scrolling.
    assert page.evaluate("document.documentElement.scrollWidth") <= 391
    assert page.evaluate("document.getElementById('map').getBoundingClientRect().width") > 250
    page.screenshot(path=str(shots / "phone.png"), full_page=True, scale="css")
    assert page.errors == []
    page.close()


def test_server_stop_shows_an_error_in_the_page(browser):
    from descend.playground.server import BackgroundServer

    own = BackgroundServer().start()
    page = _open(browser, own)
    own.stop()
    page.wait_for_selector("#error:not([hidden])", timeout=15000)
    assert "closed" in page.text_content("#error")
    page.close()
