"""What a person sees, in a real headless browser: kedro-viz's flowchart of the train pipeline with
its layers and plot previews, and the HTML report of a trained project, offline.

Screenshots go to $SCREENSHOTS_DIR when set (`SCREENSHOTS_DIR=docs/images` refreshes the README's),
else to the test's temporary folder."""

from __future__ import annotations

import functools
import json
import os
import re
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.conftest import run_kedro

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LAYERS = ["raw", "intermediate", "feature", "model_input", "models", "model_output", "reporting"]
# kedro-viz's own settings, as its settings panel stores them: readable names, no feature tour.
VIZ_SETTINGS = '{"isPrettyName": true, "showFeatureHints": false, "theme": "light"}'

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"no browser at {CHROMIUM}: `apt-get install chromium` (.ci/run)",
    ),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    opened = browser.new_page(viewport={"width": 1400, "height": 1000})
    yield opened
    opened.close()


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("SCREENSHOTS_DIR", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        """The test reports failures; one line per request would bury them."""


@pytest.fixture(scope="module")
def viz_site(trained_project: Path) -> Iterator[Path]:
    """`kedro viz build --include-previews` of the trained project, as a user would publish it."""
    result = run_kedro(trained_project, "viz", "build", "--include-previews", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    yield trained_project / "build"


@pytest.fixture(scope="module")
def viz_url(viz_site: Path) -> Iterator[str]:
    handler = functools.partial(QuietHandler, directory=str(viz_site))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        yield f"http://127.0.0.1:{server.server_port}"
        server.shutdown()


def viz_json(site: Path, name: str) -> dict:
    return json.loads((site / "api" / name).read_text())


def test_every_dataset_of_every_pipeline_has_a_layer(viz_site: Path):
    pipelines = viz_json(viz_site, "main")["pipelines"]
    assert {"train", "tune", "evaluate", "deploy", "inference"} <= {p["id"] for p in pipelines}
    for pipeline in pipelines:
        graph = viz_json(viz_site, f"pipelines/{pipeline['id']}")
        unlayered = [n["name"] for n in graph["nodes"] if n["type"] == "data" and not n["layer"]]
        assert unlayered == [], f"{pipeline['id']}: no kedro-viz layer for {unlayered}"
    assert viz_json(viz_site, "pipelines/train")["layers"] == LAYERS, "layers drawn in data order"


def test_the_build_previews_plots_metrics_and_tables(viz_site: Path):
    ids = {n["name"]: n["id"] for n in viz_json(viz_site, "pipelines/train")["nodes"]}
    expected = {
        "raw_table": "TablePreview",
        "trials": "TablePreview",
        "worst_predictions": "TablePreview",
        "metrics": "JSONPreview",
        "training_metrics": "JSONPreview",
        "evaluation_plots": "ImagePreview",
        "search_plots": "ImagePreview",
    }
    for name, preview_type in expected.items():
        details = viz_json(viz_site, f"nodes/{ids[name]}")
        assert details["preview_type"] == preview_type, name
        assert details["preview"], f"{name} has no preview"


def test_kedro_viz_draws_the_train_pipeline(page: Page, viz_url: str, viz_site: Path, screenshots):
    train = viz_json(viz_site, "pipelines/train")
    page.add_init_script(f"localStorage.setItem('KedroViz', '{VIZ_SETTINGS}')")
    # kedro-viz asks Google for a font; the test stays offline, as the machines do.
    page.route(lambda url: not url.startswith(viz_url), lambda route: route.abort())
    page.goto(f"{viz_url}/?pid=train")
    page.wait_for_selector(".pipeline-node", timeout=30_000)

    labels = page.locator(".pipeline-node text").all_text_contents()
    drawn = {label.lower().replace(" ", "_") for label in labels}
    tasks = {n["name"] for n in train["nodes"] if n["type"] == "task"}
    assert tasks <= drawn, f"not drawn: {sorted(tasks - drawn)}"
    assert "Validate Raw Table Node" in labels, "names are shown readable, not snake_case"
    assert page.locator(".pipeline-layer-name").all_text_contents() == LAYERS

    page.locator(".pipeline-node", has_text=re.compile(r"^Evaluation Plots$")).click()
    preview = page.wait_for_selector(".pipeline-metadata__plot-image", timeout=10_000)
    assert preview.evaluate("image => image.naturalWidth") > 0
    page.mouse.move(0, 0)
    page.wait_for_timeout(500)  # the side panel slides in
    page.screenshot(path=screenshots / "kedro-viz.png")


def test_the_report_reads_offline_with_every_image(page: Page, trained_project, screenshots):
    report = trained_project / "data" / "08_reporting" / "report.html"
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(report.as_uri())

    assert re.match(r"Test roc_auc = 0\.\d+ against", page.inner_text("#headline"))
    images = page.eval_on_selector_all(
        "img", "images => images.map(i => [i.alt, i.complete && i.naturalWidth])"
    )
    assert {"roc_curve.png", "optimization_history.png", "feature_importance.png"} <= {
        alt for alt, _ in images
    }
    assert [alt for alt, width in images if not width] == [], "images that did not load"
    assert [url for url in requested if not url.startswith(("file:", "data:"))] == []
    sections = page.locator("section h2").all_text_contents()
    assert sections[:2] == ["Metrics (test split)", "Evaluation plots"], "numbers, then plots"
    page.set_viewport_size({"width": 1280, "height": 1600})
    page.screenshot(path=screenshots / "report.png")
