"""The web studio in a real browser: Debian's Chromium driven by Playwright
against a live ``pixelsmith serve`` app on loopback, with the real embedded
tools and weights. Single runs go through the server's jobs API (one-item jobs
of kind "run"), so progress, queue position and the history come from its job
store. Screenshots of each main screen go to a temporary folder, or to docs/img/
with PIXELSMITH_STUDIO_SHOTS=docs/img.
"""

from __future__ import annotations

import base64
import io
import json
import os
import pathlib
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import requests
from PIL import Image

from pixelsmith.models import is_installed

CHROMIUM = pathlib.Path("/usr/bin/chromium")
ROOT = pathlib.Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
# Screenshots go to a temporary folder; PIXELSMITH_STUDIO_SHOTS=docs/img refreshes the README's copies
# (not by default, so a test run leaves the working tree clean).
SHOTS_ENV = "PIXELSMITH_STUDIO_SHOTS"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1366, "height": 820}  # a laptop; tablet width is checked separately
RUN_TIMEOUT_MS = 180_000  # a hang guard, not a timing check: ISNet alone took ~50 s on a loaded 2-core box

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's chromium is not installed at /usr/bin/chromium (run scripts/test-extras.sh)",
    ),
]


# ---- fixtures --------------------------------------------------------------------
@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, pathlib.Path]:
    """Small copies of the AWS notebook's sample images (keeps CPU runs short)."""
    folder = tmp_path_factory.mktemp("studio-inputs")
    out = {}
    for name, sample, side in (
        ("desk", "erase_input_desk.png", 384),
        ("subject", "remove_background_input.png", 320),
        ("recolor", "search_and_recolor_input.png", 256),
        ("outpaint", "outpaint_input.jpg", 256),
    ):
        img = Image.open(SAMPLES / sample).convert("RGB")
        img.thumbnail((side, side))
        path = folder / f"{name}.png"
        img.save(path)
        out[name] = path
    for name, sample in (
        ("tiny-a", "upscale_input.jpg"),
        ("tiny-b", "search_and_replace_input.png"),
        ("tiny-c", "style_guide_input.jpg"),
    ):
        img = Image.open(SAMPLES / sample).convert("RGB")
        img.thumbnail((96, 96))  # fast-upscale x4 of these takes about a second on a CPU
        out[name] = folder / f"{name}.png"
        img.save(out[name])
    # large enough for several tiles of the embedded upscaler (tiles of at most 384 px)
    big = Image.open(SAMPLES / "upscale_input.jpg").convert("RGB").resize((800, 520))
    out["big"] = folder / "big.png"
    big.save(out["big"])
    broken = folder / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"this is not really a png" * 20)
    out["broken"] = broken
    return out


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from pixelsmith.api.app import Settings
    from pixelsmith.api.testing import LiveServer

    with LiveServer(Settings(data_dir=str(tmp_path_factory.mktemp("studio-server")), access_log=False)) as live:
        yield live


@pytest.fixture(scope="module")
def tools(server) -> dict[str, dict]:
    return {t["name"]: t for t in requests.get(server.url + "/v1/tools", timeout=30).json()}


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def context(browser):
    # one context for the module: IndexedDB history persists across the tests' reloads
    ctx = browser.new_context(viewport=VIEWPORT, accept_downloads=True)  # one context, as one person's browser
    yield ctx
    ctx.close()


@pytest.fixture
def page(context, server):
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    page.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def open_tool(page, server, name: str):
    page.goto(f"{server.url}/#tool={name}")
    page.wait_for_selector(f'#tool-list .tool[data-tool="{name}"][aria-current="true"]')


def upload(page, field: str, path: pathlib.Path):
    page.set_input_files(f'#fields [data-field="{field}"] input[type=file]', str(path))


RECORD_STATUS = """() => {
    // every state the run status line and its bar go through, as the person would see them
    window.statusLog = [];
    const bar = document.querySelector('#run-progress'), text = document.querySelector('#run-text');
    const note = () => window.statusLog.push({ text: text.textContent, hidden: bar.hidden,
        determinate: bar.hasAttribute('value'), value: bar.value, max: bar.max });
    new MutationObserver(note).observe(document.querySelector('#run-status'),
        { subtree: true, childList: true, characterData: true, attributes: true });
}"""


def run_and_wait(page):
    page.click("#run")
    page.wait_for_function(
        "() => !document.querySelector('#result').hidden || !document.querySelector('#run-error').hidden",
        timeout=RUN_TIMEOUT_MS,
    )


def download(page, tmp_path) -> pathlib.Path:
    with page.expect_download() as info:
        page.click("#download")
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    return path


_shots: dict[str, pathlib.Path] = {}


@pytest.fixture(scope="module", autouse=True)
def shots_folder(tmp_path_factory):
    wanted = os.environ.get(SHOTS_ENV)
    _shots["dir"] = (ROOT / wanted) if wanted else tmp_path_factory.mktemp("studio-shots")
    _shots["dir"].mkdir(parents=True, exist_ok=True)


def shot(page, name: str):
    page.screenshot(path=str(_shots["dir"] / f"studio-{name}.png"))


def canvas_point(page, ix: float, iy: float) -> tuple[float, float]:
    """Image pixel -> page coordinates, through the stage's own view transform."""
    return page.evaluate(
        """([x, y]) => {
        const s = window.studio.stage, r = s.canvas.getBoundingClientRect(), p = s.toScreen(x, y);
        return [r.left + p.x, r.top + p.y];
    }""",
        [ix, iy],
    )


def exported_mask(page) -> np.ndarray:
    data_url = page.evaluate("""async () => {
        const blob = await window.studio.stage.exportMask();
        return await new Promise((ok) => {
          const r = new FileReader(); r.onload = () => ok(r.result); r.readAsDataURL(blob); });
    }""")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",")[1]))).convert("L"))


def stage_geometry(page) -> dict:
    """Where the stage and the image on it are: what must not move when a result arrives."""
    return {
        "stage": page.locator("#stage").bounding_box(),
        "canvas": page.locator("#stage-canvas").bounding_box(),
        "view": page.evaluate("() => ({ ...window.studio.stage.view })"),
    }


def stage_pixels(page) -> tuple[np.ndarray, dict]:
    """A screenshot of the stage as RGB, and its box (page coordinates of pixel 0, 0)."""
    box = page.locator("#stage").bounding_box()
    png = page.screenshot(clip=box)
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int), box


def pixel_at(pixels: np.ndarray, box: dict, point: tuple[float, float]) -> tuple[int, ...]:
    return tuple(pixels[round(point[1] - box["y"]), round(point[0] - box["x"])])


UNLABELLED_CONTROLS = """() => [...document.querySelectorAll('input, select, textarea, button')]
    .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.getAttribute('aria-labelledby')
                   && !(e.tagName === 'BUTTON' && e.textContent.trim()))
    .map((e) => e.id || e.name || e.outerHTML.slice(0, 60))"""


# ---- tests -----------------------------------------------------------------------
def test_every_tool_has_a_generated_form_and_unservable_ones_say_why(page, server, tools):
    open_tool(page, server, "erase")
    listed = page.eval_on_selector_all("#tool-list .tool", "els => els.map(e => e.dataset.tool)")
    assert sorted(listed) == sorted(tools)
    # the form comes from the schema: a range becomes a slider, an enum a select, images drop zones
    assert page.locator('[data-field="grow_mask"] input[type=range]').count() == 1
    assert page.locator('[data-field="output_format"] select').count() == 1
    assert page.locator('[data-field="image"] .dropzone').count() == 1
    assert page.get_attribute('[data-field="grow_mask"] input[type=number]', "max") == "20"
    # every tool's form builds (the page fixture fails the test on any JavaScript error),
    # and every control in it has an accessible name
    for name, tool in tools.items():
        page.click(f'#tool-list .tool[data-tool="{name}"]')
        assert page.inner_text("#tool-title") == tool["title"]
        fields = page.eval_on_selector_all("#fields [data-field]", "els => els.map(e => e.dataset.field)")
        assert sorted(fields) == sorted(tool["schema"]["properties"]), name
        unnamed = page.evaluate(UNLABELLED_CONTROLS)
        assert not unnamed, f"{name}: controls without a label: {unnamed}"
    unready = [t for t in tools.values() if not t["ready"]]
    if unready:
        tool = unready[0]
        page.click(f'#tool-list .tool[data-tool="{tool["name"]}"]')
        box = page.locator("#tool-unavailable")
        assert box.is_visible()
        assert tool["missing"][0][:30] in box.inner_text()
        for command in tool["install"]:
            assert command in box.inner_text()
        assert page.locator("#run").is_disabled()
        shot(page, "unavailable")


def test_erase_with_a_painted_mask_changes_only_under_the_mask(page, server, tools, inputs, tmp_path):
    open_tool(page, server, "erase")
    upload(page, "image", inputs["desk"])
    page.wait_for_function("() => window.studio.stage.base !== null")
    source = np.asarray(Image.open(inputs["desk"]).convert("RGB")).astype(int)
    h, w = source.shape[:2]
    fitted = page.inner_text("#zoom-level")
    page.click("#zoom-in")
    assert int(page.inner_text("#zoom-level").rstrip("%")) > int(fitted.rstrip("%"))
    page.click("#zoom-fit")
    assert page.inner_text("#zoom-level") == fitted
    # paint along the teal pen lying across the desk (the sample's lower middle)
    page.check('input[name="pointer"][value="brush"]', force=True)
    page.evaluate(
        "() => { const s = document.querySelector('#brush-size'); s.value = 24; s.dispatchEvent(new Event('input')); }"
    )
    start, end = canvas_point(page, w * 0.39, h * 0.72), canvas_point(page, w * 0.76, h * 0.72)
    page.mouse.move(*start)
    page.mouse.down()
    for t in np.linspace(0, 1, 12):
        page.mouse.move(start[0] + (end[0] - start[0]) * t, start[1] + (end[1] - start[1]) * t)
    page.mouse.up()
    mask = exported_mask(page)
    assert mask.shape == (h, w)
    painted = mask > 0
    assert 0.005 < painted.mean() < 0.2, "the stroke should cover a small part of the image"
    # undo removes the stroke, redo brings it back
    page.click("#mask-undo")
    assert exported_mask(page).max() == 0
    page.click("#mask-redo")
    assert (exported_mask(page) > 0).sum() == painted.sum()

    geometry = stage_geometry(page)
    run_and_wait(page)
    if not tools["erase"]["ready"]:
        assert page.locator("#run-error").is_visible()
        assert "erase" in page.inner_text("#run-error")
        return
    assert page.locator("#result").is_visible(), page.inner_text("#run-error")
    # the before/after control arrived over the stage's bottom edge: the image did not move under the brush
    assert page.locator("#compare-group").is_visible()
    assert stage_geometry(page) == geometry
    shot(page, "erase")
    path = download(page, tmp_path)
    assert path.suffix == ".png"
    result = np.asarray(Image.open(path).convert("RGB")).astype(int)
    assert result.shape == source.shape
    # outside the mask grown by grow_mask (5 px) and a pixel of feather: bit-identical
    import cv2

    reach = cv2.dilate(painted.astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
    changed = np.abs(result - source).sum(axis=2) > 0
    assert not changed[~reach].any(), f"{changed[~reach].sum()} pixels changed outside the mask"
    assert changed[painted].mean() > 0.5, "erase should change the painted area"
    assert page.inner_text("#result-seed").strip().isdigit()
    assert page.inner_text("#result-time").endswith("s")


def test_an_uploaded_mask_becomes_the_painted_layer(page, server, inputs, tmp_path):
    open_tool(page, server, "erase")
    side = Image.open(inputs["desk"]).size
    mask = Image.open(SAMPLES / "erase_desk_pencil_mask.png").convert("L").resize(side, Image.NEAREST)
    mask_path = tmp_path / "mask.png"
    mask.save(mask_path)
    upload(page, "mask", mask_path)  # before the image: kept until the image gives the layer its size
    upload(page, "image", inputs["desk"])
    page.wait_for_function("() => window.studio.stage.base !== null && window.studio.stage.hasMask()")
    want = np.asarray(mask) > 127
    assert ((exported_mask(page) > 127) == want).mean() > 0.999
    page.keyboard.press("Escape")
    page.click("#mask-invert")
    assert ((exported_mask(page) > 127) == ~want).mean() > 0.999
    page.click("#mask-clear")
    assert exported_mask(page).max() == 0
    # the brush controls work from the keyboard
    page.focus("#stage-canvas")
    page.keyboard.press("e")
    assert page.is_checked('input[name="pointer"][value="eraser"]')
    size = int(page.input_value("#brush-size"))
    page.keyboard.press("]")
    assert int(page.input_value("#brush-size")) == size + 5
    page.keyboard.press("b")
    assert page.evaluate("() => window.studio.stage.tool") == "brush"
    page.keyboard.press("Control+z")  # undoes the clear
    assert ((exported_mask(page) > 127) == ~want).mean() > 0.999


PINCH = """([x, y, spread]) => {
    // two touch pointers on the canvas moving apart, as a pinch on a tablet sends them
    const c = document.querySelector('#stage-canvas'), r = c.getBoundingClientRect();
    const send = (type, id, dx) => c.dispatchEvent(new PointerEvent(type, { pointerId: id, pointerType: 'touch',
        isPrimary: id === 1, bubbles: true, cancelable: true, button: 0, buttons: type === 'pointerup' ? 0 : 1,
        clientX: r.left + x + dx, clientY: r.top + y }));
    send('pointerdown', 1, -20);
    send('pointerdown', 2, 20);
    for (let k = 1; k <= 5; k++) {
      send('pointermove', 1, -20 - k * spread / 5); send('pointermove', 2, 20 + k * spread / 5); }
    send('pointerup', 1, -20 - spread);
    send('pointerup', 2, 20 + spread);
}"""


def test_zoom_with_keys_and_pinch_leaves_the_mask_alone(page, server, inputs):
    open_tool(page, server, "erase")
    upload(page, "image", inputs["desk"])
    page.wait_for_function("() => window.studio.stage.base !== null")
    scale = lambda: page.evaluate("() => window.studio.stage.view.scale")  # noqa: E731
    fitted = scale()
    page.focus("#stage-canvas")
    page.keyboard.press("+")
    assert scale() > fitted
    page.keyboard.press("0")
    assert scale() == fitted
    page.keyboard.press("-")
    assert scale() < fitted
    page.keyboard.press("0")
    # a pinch with the brush selected zooms about the fingers' midpoint and paints nothing
    page.check('input[name="pointer"][value="brush"]', force=True)
    box = page.locator("#stage-canvas").bounding_box()
    mid = canvas_point(page, 100, 100)
    anchor = page.evaluate("([x, y]) => window.studio.stage.toImage(x, y)", [mid[0] - box["x"], mid[1] - box["y"]])
    page.evaluate(PINCH, [mid[0] - box["x"], mid[1] - box["y"], 120])
    assert scale() > fitted * 2
    after = page.evaluate("([x, y]) => window.studio.stage.toImage(x, y)", [mid[0] - box["x"], mid[1] - box["y"]])
    assert abs(after["x"] - anchor["x"]) < 2 and abs(after["y"] - anchor["y"]) < 2, "the pinched point stays put"
    assert exported_mask(page).max() == 0, "the first finger's touch did not leave a stroke"


class FakeSegment:
    """Stands in for POST /v1/segment (the model's route, not in every server) with its exact contract:
    {image | image_id, points: [[x, y, label]], box: [x0, y0, x1, y1]} -> {image_id, mask (PNG L 0/255),
    score, size, seconds}; an unknown image_id is a 404. Its mask is deterministic: discs of radius 30
    about the included points, the box filled, then discs of radius 15 about the excluded points cleared."""

    def __init__(self):
        self.requests: list[dict] = []
        self.sizes: dict[str, tuple[int, int]] = {}
        self.last: np.ndarray | None = None

    @staticmethod
    def mask(size, points, box) -> np.ndarray:
        w, h = size
        yy, xx = np.mgrid[0:h, 0:w]
        m = np.zeros((h, w), bool)
        for x, y, label in points:
            if label:
                m |= (xx - x) ** 2 + (yy - y) ** 2 <= 30**2
        if box:
            x0, y0, x1, y1 = box
            m |= (xx >= x0) & (xx < x1) & (yy >= y0) & (yy < y1)
        for x, y, label in points:
            if not label:
                m &= (xx - x) ** 2 + (yy - y) ** 2 > 15**2
        return m.astype(np.uint8) * 255

    def handle(self, route, request):
        body = request.post_data_json or {}
        if "image" not in body and "image_id" not in body:  # the studio's probe: the route is there
            return route.fulfill(status=422, json={"detail": "image or image_id is required"})
        self.requests.append(body)
        if "image" in body:
            image_id = f"img-{len(self.requests)}"
            self.sizes[image_id] = Image.open(io.BytesIO(base64.b64decode(body["image"]))).size
        elif body["image_id"] in self.sizes:
            image_id = body["image_id"]
        else:
            return route.fulfill(status=404, json={"detail": f"unknown image_id {body['image_id']}: send the image"})
        self.last = self.mask(self.sizes[image_id], body.get("points", []), body.get("box"))
        buf = io.BytesIO()
        Image.fromarray(self.last, "L").save(buf, "PNG")
        route.fulfill(
            json={
                "image_id": image_id,
                "mask": base64.b64encode(buf.getvalue()).decode(),
                "score": 0.9,
                "size": list(self.sizes[image_id]),
                "seconds": 0.01,
            }
        )


def select_at(page, ix: float, iy: float, shift: bool = False, to: tuple[float, float] | None = None):
    """Click (or drag to `to`) on the stage with the select tool and wait for the selection to come back."""
    x, y = canvas_point(page, ix, iy)
    page.mouse.move(x, y)
    if shift:
        page.keyboard.down("Shift")
    page.mouse.down()
    if to:
        page.mouse.move(*canvas_point(page, *to), steps=6)
    page.mouse.up()
    if shift:
        page.keyboard.up("Shift")
    page.wait_for_function("() => document.querySelector('#stage').dataset.selecting === 'false'")


def fake_segment_on_the_desk(page, server, inputs) -> tuple[FakeSegment, tuple[int, int]]:
    """erase open on the desk photo, /v1/segment answered by the stand-in model: (the model, the image size)."""
    fake = FakeSegment()
    page.route("**/v1/segment", fake.handle)
    open_tool(page, server, "erase")
    upload(page, "image", inputs["desk"])
    page.wait_for_function("() => window.studio.stage.base !== null")
    return fake, Image.open(inputs["desk"]).size


def test_click_to_select_makes_the_mask_and_the_brush_edits_it(page, server, inputs):
    fake, (w, h) = fake_segment_on_the_desk(page, server, inputs)
    assert page.locator('input[name="pointer"][value="select"]').is_enabled()
    page.focus("#stage-canvas")
    page.keyboard.press("s")
    assert page.evaluate("() => window.studio.stage.tool") == "select"
    page.evaluate("""() => { window.busyLog = []; const b = document.querySelector('#stage-busy');
        new MutationObserver(() => window.busyLog.push(b.hidden ? '' : b.textContent))
          .observe(b, { attributes: true }); }""")

    # a click: the image is sent once, with the point (label 1); the answer is the mask layer
    select_at(page, w * 0.3, h * 0.3)
    first = fake.requests[-1]
    assert base64.b64decode(first["image"]) == inputs["desk"].read_bytes() and "image_id" not in first
    ((x, y, label),) = first["points"]
    assert abs(x - w * 0.3) <= 1 and abs(y - h * 0.3) <= 1 and label == 1
    assert np.array_equal(exported_mask(page), fake.last)
    assert page.evaluate("() => window.busyLog") == ["Selecting…", ""], "a selecting state while the model works"
    # Shift+click takes a part away: the same image by its id, the points so far plus one with label 0
    select_at(page, w * 0.3 + 20, h * 0.3, shift=True)
    second = fake.requests[-1]
    assert second["image_id"] == "img-1" and "image" not in second
    assert [p[2] for p in second["points"]] == [1, 0]
    mask = exported_mask(page)
    assert np.array_equal(mask, fake.last) and mask[round(h * 0.3), round(w * 0.3 + 20)] == 0
    # the server forgot the image (a restart): the studio sends it again and goes on
    fake.sizes.clear()
    select_at(page, w * 0.3, h * 0.3 + 25)
    assert "image_id" in fake.requests[-2] and "image" in fake.requests[-1]
    assert len(fake.requests[-1]["points"]) == 3
    assert np.array_equal(exported_mask(page), fake.last)
    # a drag sends a box, with the points
    select_at(page, w * 0.6, h * 0.6, to=(w * 0.8, h * 0.75))
    box = fake.requests[-1]["box"]
    assert all(abs(a - b) <= 1 for a, b in zip(box, [w * 0.6, h * 0.6, w * 0.8, h * 0.75], strict=True)), box
    assert len(fake.requests[-1]["points"]) == 3
    selection = exported_mask(page)
    assert np.array_equal(selection, fake.last)
    shot(page, "select")

    # the brush adds to the selection, the eraser takes from it
    page.keyboard.press("b")
    page.evaluate(
        "() => { const s = document.querySelector('#brush-size'); s.value = 20; s.dispatchEvent(new Event('input')); }"
    )
    page.mouse.move(*canvas_point(page, w * 0.1, h * 0.9))
    page.mouse.down()
    page.mouse.move(*canvas_point(page, w * 0.2, h * 0.9), steps=6)
    page.mouse.up()
    painted = exported_mask(page)
    assert (painted >= selection).all() and painted[round(h * 0.9), round(w * 0.15)] == 255
    assert (painted[: round(h * 0.85)] == selection[: round(h * 0.85)]).all(), "the stroke changed only its own place"
    page.keyboard.press("e")
    page.mouse.move(*canvas_point(page, w * 0.65, h * 0.5))
    page.mouse.down()
    page.mouse.move(*canvas_point(page, w * 0.65, h * 0.85), steps=8)
    page.mouse.up()
    erased = exported_mask(page)
    assert erased[round(h * 0.68), round(w * 0.65)] == 0 and erased[round(h * 0.68), round(w * 0.75)] == 255
    # after the brush, a click starts a new selection, added to what is painted
    page.keyboard.press("s")
    select_at(page, w * 0.8, h * 0.2)
    ((x, y, label),) = fake.requests[-1]["points"]
    assert abs(x - w * 0.8) <= 1 and abs(y - h * 0.2) <= 1 and label == 1
    assert "box" not in fake.requests[-1]
    assert np.array_equal(exported_mask(page), np.maximum(erased, fake.last))
    page.keyboard.press("Control+z")  # one undo step per selection
    assert np.array_equal(exported_mask(page), erased)


def test_shift_click_on_a_points_mark_takes_that_point_back(page, server, inputs):
    """A label-0 point on top of a label-1 point contradicts it (the model keeps the part): Shift+click on a mark
    removes that point and re-asks with the others; removing the last restores the mask before the selection."""
    fake, (w, h) = fake_segment_on_the_desk(page, server, inputs)
    page.focus("#stage-canvas")
    page.keyboard.press("s")
    a, b = (w * 0.3, h * 0.3), (w * 0.7, h * 0.6)
    select_at(page, *a)
    select_at(page, *b)
    assert [p[2] for p in fake.requests[-1]["points"]] == [1, 1]
    sent = len(fake.requests)
    select_at(page, b[0] + 1, b[1] - 1, shift=True)  # on b's mark (within a few screen pixels)
    assert len(fake.requests) == sent + 1
    ((x, y, label),) = fake.requests[-1]["points"]  # a alone, and no label-0 point
    assert abs(x - a[0]) <= 1 and abs(y - a[1]) <= 1 and label == 1
    mask = exported_mask(page)
    assert np.array_equal(mask, fake.last) and mask[round(b[1]), round(b[0])] == 0 and mask[round(a[1]), round(a[0])]
    select_at(page, *a, shift=True)  # the last point: nothing to ask, the mask is as before the selection
    assert len(fake.requests) == sent + 1
    assert not exported_mask(page).any()
    assert page.evaluate("() => window.studio.stage.marks.points.length") == 0
    # a Shift+click away from every mark is still a label-0 point
    select_at(page, *a)
    select_at(page, a[0] + 20, a[1], shift=True)
    assert [p[2] for p in fake.requests[-1]["points"]] == [1, 0]


@pytest.mark.skipif(not is_installed("mobilesam"), reason="pixelsmith models fetch mobilesam")
def test_click_to_select_on_the_real_model_then_erase_removes_the_selected_object(page, server, tmp_path):
    """The real POST /v1/segment (MobileSAM) behind the studio, no stand-in: a click on a blue slab selects it,
    a shift+click on the orange disk beside it keeps the disk out, a box dragged round both still leaves the disk
    out. Erase with that selection removes the slab and keeps the disk."""
    from test_segment import iou, scene

    img, disk, slab = scene()
    path = tmp_path / "scene.png"
    img.save(path)
    w, h = img.size
    open_tool(page, server, "erase")
    upload(page, "image", path)
    page.wait_for_function("() => window.studio.stage.base !== null")
    page.focus("#stage-canvas")
    page.keyboard.press("s")
    select_at(page, 450, 200)
    assert iou(exported_mask(page) > 127, slab) > 0.9
    select_at(page, 190, 210, shift=True)
    assert iou(exported_mask(page) > 127, slab) > 0.9
    select_at(page, 80, 70, to=(570, 340))  # the box frames both objects; the exclude click still holds
    selection = exported_mask(page) > 127
    assert iou(selection, slab) > 0.85 and (selection & disk).sum() < 0.1 * disk.sum()

    run_and_wait(page)
    assert page.locator("#result").is_visible(), page.inner_text("#run-error")
    out = np.asarray(Image.open(download(page, tmp_path)).convert("RGB")).astype(int)
    assert out.shape[:2] == (h, w)
    blue = (out[..., 2] > 150) & (out[..., 0] < 90)  # the slab's (40, 70, 200); the floor is never this blue
    orange = (out[..., 0] > 190) & (out[..., 2] < 80)
    assert blue[slab].mean() < 0.02, "the selected slab is erased"
    assert orange[disk].mean() > 0.9, "the disk, taken out of the selection, is kept"


def test_without_the_segmentation_route_select_is_off_and_says_why(page, server):
    page.route("**/v1/segment", lambda route: route.fulfill(status=404, json={"detail": "Not Found"}))
    open_tool(page, server, "erase")
    label = page.locator("#select-tool")
    page.wait_for_function("() => document.querySelector('#select-tool input').disabled")
    assert "pixelsmith models fetch" in label.get_attribute("title")
    page.focus("#stage-canvas")
    page.keyboard.press("s")
    assert page.evaluate("() => window.studio.stage.tool") == "brush"


CHECKER = {(0x3A, 0x3F, 0x4B), (0x2C, 0x30, 0x39)}  # stage.js checker()


def test_before_and_after_share_a_backdrop_and_the_result_moves_nothing(page, server, inputs, tmp_path):
    # an input whose top third is transparent; fast upscale keeps the alpha
    rgba = np.asarray(Image.open(inputs["tiny-a"]).convert("RGBA")).copy()
    rgba[: rgba.shape[0] // 3, :, 3] = 0
    path = tmp_path / "half-clear.png"
    Image.fromarray(rgba).save(path)
    h, w = rgba.shape[:2]
    open_tool(page, server, "fast-upscale")
    upload(page, "image", path)
    page.wait_for_function("() => window.studio.stage.base !== null")
    assert page.locator("#viewbar").is_visible() and not page.locator("#compare-group").is_visible()
    geometry = stage_geometry(page)
    run_and_wait(page)
    assert page.locator("#result").is_visible(), page.inner_text("#run-error")
    assert page.locator("#compare-group").is_visible()
    assert stage_geometry(page) == geometry, "the result moved the stage or the image"
    # the view bar sits over the stage's bottom edge, below the fitted image
    bar = page.locator("#viewbar").bounding_box()
    stage = geometry["stage"]
    assert stage["y"] < bar["y"] and bar["y"] + bar["height"] <= stage["y"] + stage["height"]
    assert bar["y"] >= canvas_point(page, 0, h)[1], "the view bar covers the image at fit"
    # transparent pixels, left of the split (the input) and right of it (the result)
    before, after = canvas_point(page, w * 0.2, h / 6), canvas_point(page, w * 0.8, h / 6)
    pixels, box = stage_pixels(page)
    checker_before = {tuple(pixels[y, x]) for x, y in _around(before, box)}
    checker_after = {tuple(pixels[y, x]) for x, y in _around(after, box)}
    assert checker_before == checker_after == CHECKER, (checker_before, checker_after)
    for kind, want in (("white", (255, 255, 255)), ("black", (0, 0, 0))):
        page.check(f'input[name="backdrop"][value="{kind}"]', force=True)
        pixels, box = stage_pixels(page)
        assert pixel_at(pixels, box, before) == pixel_at(pixels, box, after) == want, kind
    # picking a colour selects the colour backdrop
    page.evaluate(
        "() => { const c = document.querySelector('#backdrop-color'); c.value = '#00ff00';"
        " c.dispatchEvent(new Event('input')); }"
    )
    assert page.is_checked('input[name="backdrop"][value="color"]')
    pixels, box = stage_pixels(page)
    assert pixel_at(pixels, box, before) == pixel_at(pixels, box, after) == (0, 255, 0)
    # opaque pixels are the image's own, whatever the backdrop
    opaque = pixel_at(pixels, box, canvas_point(page, w * 0.2, h * 0.8))
    assert opaque != (0, 255, 0)
    shot(page, "backdrop")


def _around(point: tuple[float, float], box: dict, reach: int = 12):
    """Page pixels in a square about a point, as stage-screenshot indices (x, y)."""
    cx, cy = round(point[0] - box["x"]), round(point[1] - box["y"])
    return [(x, y) for x in range(cx - reach, cx + reach) for y in range(cy - reach, cy + reach)]


LOUPE_PIXELS = """([r]) => {
    const c = document.querySelector('#loupe'), g = c.getContext('2d');
    const d = g.getImageData(c.width / 2 - r, c.height / 2 - r, 2 * r + 1, 2 * r + 1);
    return { w: c.width, css: c.getBoundingClientRect().width, hidden: c.hidden, px: Array.from(d.data) };
}"""


def loupe_crop(page, reach: int = 10) -> tuple[np.ndarray, dict]:
    got = page.evaluate(LOUPE_PIXELS, [reach])
    side = 2 * reach + 1
    return np.array(got["px"], dtype=int).reshape(side, side, 4)[..., :3], got


def test_actual_size_and_the_loupe_show_pixels_at_100_percent(page, server, inputs, tmp_path):
    open_tool(page, server, "fast-upscale")
    upload(page, "image", inputs["tiny-a"])
    page.wait_for_function("() => window.studio.stage.base !== null")
    run_and_wait(page)
    assert page.locator("#result").is_visible(), page.inner_text("#run-error")
    source = np.asarray(Image.open(inputs["tiny-a"]).convert("RGB")).astype(int)
    result = np.asarray(Image.open(download(page, tmp_path)).convert("RGB")).astype(int)
    h, w = source.shape[:2]
    # 1:1: one image pixel per screen pixel
    page.click("#zoom-actual")
    assert page.evaluate("() => window.studio.stage.view.scale") == 1 and page.inner_text("#zoom-level") == "100%"
    page.click("#zoom-fit")
    assert page.evaluate("() => window.studio.stage.view.scale") > 4
    # the loupe at fit zoom: the input's own pixels left of the split, the result's right of it, unscaled
    page.click("#loupe-toggle")
    assert page.get_attribute("#loupe-toggle", "aria-pressed") == "true"
    page.mouse.move(*canvas_point(page, 12.5, 40.5))
    crop, info = loupe_crop(page)
    assert not info["hidden"] and info["w"] == info["css"] == 160
    assert np.array_equal(crop, source[30:51, 2:23]), "the loupe shows the input at 100 %"
    page.mouse.move(*canvas_point(page, 54.5, 60.5))
    crop, _ = loupe_crop(page)
    # the pointer lies on a result pixel 4x finer than the input's: the one the stage says is under it
    x, y = page.evaluate("() => { const s = window.studio.stage.loupeSource(); return [s.x, s.y].map(Math.floor); }")
    assert abs(x - 218) <= 1 and abs(y - 242) <= 1
    assert np.array_equal(crop, result[y - 10 : y + 11, x - 10 : x + 11]), "the result's own pixels at 100 %"
    loupe, stage = page.locator("#loupe").bounding_box(), page.locator("#stage").bounding_box()
    assert stage["x"] <= loupe["x"] and loupe["x"] + loupe["width"] <= stage["x"] + stage["width"]
    shot(page, "loupe")
    page.keyboard.press("l")
    page.mouse.move(*canvas_point(page, 20, 20))
    assert page.locator("#loupe").is_hidden()
    assert w == 64


def test_variations_run_one_job_per_seed_and_one_is_kept(page, server, inputs):
    open_tool(page, server, "erase")
    upload(page, "image", inputs["tiny-b"])
    page.wait_for_function("() => window.studio.stage.base !== null")
    assert page.locator("#variations").is_visible()
    w, h = Image.open(inputs["tiny-b"]).size
    page.check('input[name="pointer"][value="brush"]', force=True)
    page.mouse.move(*canvas_point(page, w * 0.3, h / 2))
    page.mouse.down()
    page.mouse.move(*canvas_point(page, w * 0.6, h / 2), steps=5)
    page.mouse.up()
    before = {j["id"] for j in requests.get(server.url + "/v1/jobs", timeout=10).json()["jobs"]}
    page.select_option("#var-count", "3")
    page.click("#var-run")
    page.wait_for_function("() => document.querySelectorAll('#var-strip li img').length === 3", timeout=RUN_TIMEOUT_MS)
    seeds = [int(s) for s in page.eval_on_selector_all("#var-strip li", "els => els.map(e => e.dataset.seed)")]
    assert len(set(seeds)) == 3
    jobs = [j for j in requests.get(server.url + "/v1/jobs", timeout=10).json()["jobs"] if j["id"] not in before]
    assert len(jobs) == 3 and all(j["meta"]["kind"] == "run" for j in jobs), "one run job per seed"
    assert sorted(j["item"]["steps"][0]["seed"] for j in jobs) == sorted(seeds)
    assert all("mask" in j["item"]["inputs"] for j in jobs), "every variation has the painted mask"
    # compare: a thumbnail puts its result on the stage against the input
    page.locator("#var-strip li .pick").nth(1).click()
    assert page.inner_text("#result-seed") == str(seeds[1])
    assert page.locator("#compare-group").is_visible()
    assert page.get_attribute("#var-strip li:nth-child(2) .pick", "aria-pressed") == "true"
    shot(page, "variations")
    # keep: its seed goes into the form, the others leave the strip
    page.locator("#var-strip li .keep").nth(1).click()
    assert page.locator("#var-strip li").count() == 1
    assert page.input_value('[data-field="seed"] input[type=number]') == str(seeds[1])
    assert page.inner_text("#result-seed") == str(seeds[1])
    assert f"Kept seed {seeds[1]}" in page.inner_text("#var-note")


def test_remove_background_then_use_as_input(page, server, tools, inputs, tmp_path):
    open_tool(page, server, "remove-background")
    assert tools["remove-background"]["ready"], "remove-background runs on the embedded engine"
    upload(page, "image", inputs["subject"])
    page.wait_for_function("() => window.studio.stage.base !== null")
    run_and_wait(page)
    assert page.locator("#result").is_visible(), page.inner_text("#run-error")
    assert page.locator("#compare-group").is_visible()
    page.evaluate(
        "() => { const c = document.querySelector('#compare'); c.value = 30; c.dispatchEvent(new Event('input')); }"
    )
    shot(page, "remove-background")
    out = Image.open(download(page, tmp_path))
    assert out.mode == "RGBA" and out.size == Image.open(inputs["subject"]).size
    alpha = np.asarray(out)[..., 3]
    assert (alpha == 0).mean() > 0.05 and (alpha == 255).mean() > 0.05, "a subject kept and a background removed"
    # chain: the result becomes the input of the next tool
    page.click("#use-as-input")
    page.wait_for_function(
        "() => window.studio.stage.result === null && window.studio.input.name.startsWith('remove-background-result')"
    )
    page.click('#tool-list .tool[data-tool="fast-upscale"]')
    assert "remove-background-result" in page.inner_text('#fields [data-field="image"] .dz-info')


def test_a_broken_file_gets_a_clear_error(page, server, inputs):
    open_tool(page, server, "remove-background")
    upload(page, "image", inputs["broken"])
    zone_error = page.locator('#fields [data-field="image"] .dz-error')
    zone_error.wait_for()
    assert "cannot read" in zone_error.inner_text()
    run_and_wait(page)
    error = page.locator("#run-error")
    assert error.is_visible()
    text = error.inner_text()
    # the run's job failed on the server, with the decoder's reason for this file
    assert "Run failed" in text and "image" in text.lower(), text
    shot(page, "error")


def test_outpaint_handles_fill_the_margins(page, server, inputs, tmp_path):
    open_tool(page, server, "outpaint")
    upload(page, "image", inputs["outpaint"])
    page.wait_for_function("() => window.studio.stage.base !== null")
    w = page.evaluate("() => window.studio.stage.base.width")
    h = page.evaluate("() => window.studio.stage.base.height")
    # drag the right handle 60 image pixels outward
    x, y = canvas_point(page, w, h / 2)
    to_x, _ = canvas_point(page, w + 60, h / 2)
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(to_x, y, steps=5)
    page.mouse.up()
    right = int(page.input_value('[data-field="right"] input[type=number]'))
    assert 55 <= right <= 65
    # and typing a margin moves the handle
    page.fill('[data-field="up"] input[type=number]', "40")
    assert page.evaluate("() => window.studio.stage.margins.up") == 40
    run_and_wait(page)
    assert page.locator("#result").is_visible(), page.inner_text("#run-error")
    shot(page, "outpaint")
    out = np.asarray(Image.open(download(page, tmp_path)).convert("RGB")).astype(int)
    assert out.shape[:2] == (h + 40, w + right)
    original = np.asarray(Image.open(inputs["outpaint"]).convert("RGB")).astype(int)
    assert np.abs(out[40:, :w] - original).mean() < 2, "the original pixels stay where they were"
    # the stage lays the larger result over the extended canvas, aligned with the input
    assert page.evaluate("() => window.studio.stage.resultPlacement()") == {
        "x": 0,
        "y": -40,
        "w": w + right,
        "h": h + 40,
    }


def test_snippets_are_runnable(page, server, inputs, tmp_path):
    open_tool(page, server, "fast-upscale")
    upload(page, "image", inputs["tiny-a"])
    page.click("#fields details.advanced summary")  # seed and format sit under "More settings"
    page.select_option('[data-field="output_format"] select', "webp")
    page.click("#snippets summary")
    snippets = {}
    for lang in ("requests", "boto3", "cli"):
        page.click(f'#snippets [data-lang="{lang}"]')
        page.wait_for_function("(lang) => document.querySelector('#snippet-code').textContent.length > 20", arg=lang)
        snippets[lang] = page.inner_text("#snippet-code")
    # long lines wrap inside the panel: nothing is cut off
    page.click('#snippets [data-lang="requests"]')
    fits = "() => { const p = document.querySelector('#snippet-pre'); return p.scrollWidth <= p.clientWidth; }"
    assert page.evaluate(fits)
    pre, panel = page.locator("#snippet-pre").bounding_box(), page.locator(".panel").bounding_box()
    assert panel["x"] <= pre["x"] and pre["x"] + pre["width"] <= panel["x"] + panel["width"]
    assert max(len(line) for line in snippets["requests"].splitlines()) > 60, "a line long enough to wrap"
    wrapped_height = pre["height"]
    # unwrapped, the same lines scroll sideways instead
    page.uncheck("#snippet-wrap")
    assert not page.evaluate(fits)
    assert page.evaluate("() => getComputedStyle(document.querySelector('#snippet-pre')).overflowX") == "auto"
    assert page.locator("#snippet-pre").bounding_box()["height"] < wrapped_height
    page.check("#snippet-wrap")
    # the copy button puts the snippet, exactly, on the clipboard
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    page.click('#snippets [data-lang="boto3"]')
    page.click("#snippet-copy")
    page.wait_for_function("() => document.querySelector('#snippet-copy').textContent === 'Copied'")
    assert page.evaluate("() => navigator.clipboard.readText()") == page.evaluate(
        "() => document.querySelector('#snippet-code').textContent"
    )
    assert page.evaluate("() => navigator.clipboard.readText()") == snippets["boto3"]
    shot(page, "snippets")
    assert "/v2beta/stable-image/upscale/fast" in snippets["requests"]
    assert 'modelId="us.stability.stable-fast-upscale-v1:0"' in snippets["boto3"]
    assert snippets["cli"] == "pixelsmith run fast-upscale tiny-a.png -o fast-upscale.webp --output-format webp"
    # the requests and boto3 snippets run as they are against this server
    (tmp_path / "tiny-a.png").write_bytes(inputs["tiny-a"].read_bytes())
    for lang in ("requests", "boto3"):
        out = tmp_path / "fast-upscale.webp"
        out.unlink(missing_ok=True)
        subprocess.run(
            [sys.executable, "-c", snippets[lang]],
            cwd=tmp_path,
            check=True,
            timeout=120,
            env={**os.environ, "AWS_EC2_METADATA_DISABLED": "true"},
        )
        assert Image.open(out).format == "WEBP", lang


def test_batch_runs_and_zips(page, server, inputs, tmp_path):
    page.goto(f"{server.url}/#batch")
    page.wait_for_selector("#screen-batch:not([hidden])")
    page.wait_for_function("() => document.querySelector('#batch-add-tool').options.length > 0")
    files = [str(inputs["tiny-a"]), str(inputs["tiny-b"]), str(inputs["tiny-c"])]
    page.set_input_files("#batch-files", files)
    page.select_option("#batch-add-tool", "fast-upscale")
    page.click("#batch-add")
    page.click("#batch-submit")
    page.wait_for_function(
        "() => /(finished|done|completed)/.test(document.querySelector('#batch-stats').textContent)"
        " && document.querySelectorAll('#batch-items .item.done').length === 3",
        timeout=RUN_TIMEOUT_MS,
    )
    assert page.locator("#batch-items .item img").count() == 3
    shot(page, "batch")
    with page.expect_download() as info:
        page.click("#batch-zip")
    zpath = tmp_path / "batch.zip"
    info.value.save_as(zpath)
    with zipfile.ZipFile(zpath) as z:
        images = [n for n in z.namelist() if n.lower().endswith((".png", ".webp", ".jpg"))]
        assert len(images) == 3
        sizes = sorted(Image.open(io.BytesIO(z.read(n))).size for n in images)
        assert sizes == sorted(tuple(4 * v for v in Image.open(inputs[k]).size) for k in ("tiny-a", "tiny-b", "tiny-c"))


def test_without_a_jobs_api_the_page_runs_the_batch_itself(page, server, inputs, tmp_path):
    page.goto(f"{server.url}/#batch")
    # the page asks whether the server has /v1/jobs once the tools are listed: let it answer, then say "no"
    page.wait_for_function("() => document.querySelector('#batch-mode').textContent !== ''")
    page.evaluate("() => { window.studio.batch.serverJobs = false; }")  # as on a server without /v1/jobs
    page.set_input_files("#batch-files", [str(inputs["tiny-a"]), str(inputs["broken"])])
    page.select_option("#batch-add-tool", "fast-upscale")
    page.click("#batch-add")
    page.click("#batch-submit")
    page.wait_for_function(
        "() => document.querySelector('#batch-stats').textContent.startsWith('finished')", timeout=RUN_TIMEOUT_MS
    )
    assert page.locator("#batch-items .item.done").count() == 1
    failed = page.locator("#batch-items .item.failed")
    assert failed.count() == 1 and "image" in failed.inner_text().lower()
    assert page.locator("#batch-retry").is_enabled()
    with page.expect_download() as info:
        page.click("#batch-zip")
    info.value.save_as(tmp_path / "local.zip")
    with zipfile.ZipFile(tmp_path / "local.zip") as z:
        assert len(z.namelist()) == 1
        assert Image.open(io.BytesIO(z.read(z.namelist()[0]))).size == tuple(
            4 * v for v in Image.open(inputs["tiny-a"]).size
        )


def test_a_run_shows_determinate_progress_with_its_unit(page, server, inputs, tmp_path):
    open_tool(page, server, "fast-upscale")
    upload(page, "image", inputs["big"])
    page.wait_for_function("() => window.studio.stage.base !== null")
    page.evaluate(RECORD_STATUS)
    page.click("#run")
    page.wait_for_function(
        "() => /^Tile \\d+ of/.test(document.querySelector('#run-text').textContent) || "
        "!document.querySelector('#run-error').hidden",
        timeout=RUN_TIMEOUT_MS,
    )
    shot(page, "progress")
    page.wait_for_function(
        "() => !document.querySelector('#result').hidden || !document.querySelector('#run-error').hidden",
        timeout=RUN_TIMEOUT_MS,
    )
    assert page.locator("#result").is_visible(), page.inner_text("#run-error")
    log = page.evaluate("() => window.statusLog")
    import re

    tiles = [(e, re.fullmatch(r"Tile (\d+) of (\d+)", e["text"])) for e in log]
    tiles = [(e, int(m[1]), int(m[2])) for e, m in tiles if m]
    assert tiles, f"no 'Tile k of n' seen: {[e['text'] for e in log][:40]}"
    for entry, done, total in tiles:
        assert total >= 6 and 1 <= done <= total
        assert not entry["hidden"] and entry["determinate"] and entry["max"] == total and entry["value"] == done
    out = Image.open(download(page, tmp_path))
    assert out.size == (3200, 2080)
    assert page.inner_text("#run-text").startswith("Done in")
    seconds = float(page.inner_text("#result-time").removesuffix(" s"))
    assert seconds > 0


def test_queue_position_is_shown_while_the_worker_is_busy_and_cancel_stops_the_run(page, server, inputs):
    big = inputs["big"].read_bytes()
    # a batch takes the worker; two runs from a script queue ahead of the page's run
    batch = requests.post(
        server.url + "/v1/jobs",
        files=[("files", (f"b{i}.png", big, "image/png")) for i in range(2)],
        data={"steps": json.dumps([{"tool": "fast-upscale"}])},
        timeout=30,
    ).json()["id"]
    others = [
        requests.post(
            server.url + "/v1/jobs",
            files={"files": ("r.png", big, "image/png")},
            data={"steps": json.dumps([{"tool": "fast-upscale"}]), "kind": "run"},
            timeout=30,
        ).json()["id"]
        for _ in range(2)
    ]
    try:
        open_tool(page, server, "fast-upscale")
        upload(page, "image", inputs["tiny-a"])
        page.wait_for_function("() => window.studio.stage.base !== null")
        page.evaluate(RECORD_STATUS)
        page.click("#run")
        page.wait_for_function(
            "() => /^Queued — [12] ahead of you/.test(document.querySelector('#run-text').textContent)",
            timeout=RUN_TIMEOUT_MS,
        )
        shot(page, "queued")
        job = page.evaluate("() => window.studio.runJob")
        page.click("#cancel")
        page.wait_for_function("() => document.querySelector('#run-text').textContent === 'Cancelled.'")
        status = requests.get(f"{server.url}/v1/jobs/{job}", timeout=10).json()
        assert status["state"] == "cancelled" and status["counts"]["done"] == 0
    finally:
        for job_id in [batch, *others]:
            requests.post(f"{server.url}/v1/jobs/{job_id}/cancel", timeout=10)


def history_runs(page) -> list[str]:
    page.wait_for_selector("#history-runs li.run")
    return page.eval_on_selector_all("#history-runs li.run strong", "els => els.map(e => e.textContent)")


def test_history_comes_from_the_job_store_and_survives_a_reload_and_a_restart(browser, tmp_path_factory, inputs):
    from pixelsmith.api.app import Settings
    from pixelsmith.api.testing import LiveServer

    data = str(tmp_path_factory.mktemp("studio-restart"))
    ctx = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    with LiveServer(Settings(data_dir=data, access_log=False)) as first:
        open_tool(page, first, "fast-upscale")
        upload(page, "image", inputs["tiny-a"])
        run_and_wait(page)
        upload(page, "image", inputs["tiny-c"])
        page.click("#fields details.advanced summary")
        page.select_option('[data-field="output_format"] select', "webp")
        run_and_wait(page)
        assert page.locator("#result").is_visible(), page.inner_text("#run-error")
        last_size = page.inner_text("#result-size")
        with open(inputs["tiny-b"], "rb") as f:  # a batch from a script: listed under batch jobs
            requests.post(
                first.url + "/v1/jobs",
                files={"files": ("tiny-b.png", f, "image/png")},
                data={"steps": json.dumps([{"tool": "fast-upscale"}]), "title": "from a script"},
                timeout=30,
            )
        page.goto(f"{first.url}/#history")
        page.reload()
        assert history_runs(page) == ["fast-upscale", "fast-upscale"]
        page.wait_for_selector("#history-jobs li.run:has-text('from a script')")
        assert page.locator("#history-jobs li.run").count() == 1, "runs are not listed again as batch jobs"
    assert page.evaluate("() => indexedDB.databases()") == [], "no images kept in the browser"

    # the server restarts on the same data folder: the history is its job store
    with LiveServer(Settings(data_dir=data, access_log=False)) as second:
        page.goto(f"{second.url}/#history")
        assert history_runs(page) == ["fast-upscale", "fast-upscale"]
        newest = page.locator("#history-runs li.run").first
        # its settings (fields that differ from the defaults), the result's size and the server's time
        assert "output_format=webp" in newest.inner_text() and last_size.split(" ")[0] in newest.inner_text()
        page.wait_for_function("() => document.querySelector('#history-runs li.run img').naturalWidth > 0")
        shot(page, "history")
        # open: the run's input, settings and result back on the stage
        newest.get_by_role("button", name="Open").click()
        page.wait_for_selector("#result:not([hidden])")
        assert page.locator('#tool-list .tool[data-tool="fast-upscale"][aria-current="true"]').count() == 1
        assert page.inner_text("#result-size") == last_size
        assert page.input_value('[data-field="output_format"] select') == "webp"
        assert "tiny-c.png" in page.inner_text('#fields [data-field="image"] .dz-info')
        # compare two runs in the before/after split
        page.click("#tab-history")
        runs = page.locator("#history-runs li.run")
        runs.nth(0).locator("input[type=checkbox]").check()
        runs.nth(1).locator("input[type=checkbox]").check()
        page.click("#history-compare")
        # the stage already holds the opened run's input and result: wait for the compare's own hint, set last
        page.wait_for_function("() => document.querySelector('#stage-hint').textContent.startsWith('Before: ')")
        assert page.locator("#compare-group").is_visible()
        sizes = page.evaluate("() => [window.studio.stage.base.width, window.studio.stage.result.width]")
        assert sorted(sizes) == sorted(4 * Image.open(inputs[k]).size[0] for k in ("tiny-a", "tiny-c"))
        # re-run: the same input and settings run again, as a new run in the history
        page.click("#tab-history")
        page.locator("#history-runs li.run").first.get_by_role("button", name="Re-run").click()
        page.wait_for_function(
            "() => document.querySelector('#run-text').textContent.startsWith('Done')", timeout=RUN_TIMEOUT_MS
        )
        assert page.inner_text("#result-size") == last_size
        page.click("#tab-history")
        page.wait_for_function("() => document.querySelectorAll('#history-runs li.run').length === 3")
        assert "output_format=webp" in page.locator("#history-runs li.run").first.inner_text()
    ctx.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def test_tablet_width_stacks_the_layout(browser, server, inputs):
    ctx = browser.new_context(viewport={"width": 800, "height": 1100})
    page = ctx.new_page()
    page.goto(f"{server.url}/#tool=erase")
    page.wait_for_function("() => document.querySelector('#tool-select').options.length > 0")
    assert page.locator("#tool-select").is_visible() and not page.locator("#tool-list ul").first.is_visible()
    stage = page.locator("#stage").bounding_box()
    panel = page.locator(".panel").bounding_box()
    assert panel["y"] >= stage["y"] + stage["height"] - 1, "the form sits under the stage"
    assert stage["width"] > 700
    page.select_option("#tool-select", "remove-background")
    assert page.inner_text("#tool-title") == "Remove Background"
    upload(page, "image", inputs["subject"])
    page.wait_for_function("() => window.studio.stage.base !== null")
    shot(page, "tablet")
    ctx.close()


def test_keys_are_asked_for_and_kept_for_the_session(browser, tmp_path_factory, inputs):
    from pixelsmith.api.app import Settings
    from pixelsmith.api.testing import LiveServer

    with LiveServer(
        Settings(data_dir=str(tmp_path_factory.mktemp("studio-auth")), auth=True, access_log=False)
    ) as live:
        key = live.app.state.keys.create("studio-test").bearer
        ctx = browser.new_context(viewport=VIEWPORT)
        page = ctx.new_page()
        page.goto(f"{live.url}/#tool=fast-upscale")
        page.wait_for_selector("#key-dialog[open]")
        page.fill("#key-input", "sk-wrong.key")
        page.click('#key-form button[value="save"]')
        upload(page, "image", inputs["tiny-b"])
        page.click("#run")
        # the wrong key is refused and the page asks again
        page.wait_for_selector("#key-dialog[open]")
        assert "not accepted" in page.inner_text("#key-why")
        page.fill("#key-input", key)
        page.click('#key-form button[value="save"]')
        page.wait_for_selector("#result:not([hidden])", timeout=RUN_TIMEOUT_MS)
        assert page.evaluate("() => sessionStorage.getItem('pixelsmith.apiKey')") == key
        assert page.evaluate("() => localStorage.length") == 0, "the key is never stored beyond the tab"
        ctx.close()


def test_text_to_image_runs_as_a_job_fails_clearly_then_runs_on_tiny_weights(browser, tmp_path_factory, monkeypatch):
    """generate has no input image: it is a one-item job all the same (never the REST route), so its
    failure reason, its prompt in the history, its thumbnail and Re-run come from the job store."""
    pytest.importorskip("diffusers")
    from pixelsmith.api.app import Settings
    from pixelsmith.api.testing import LiveServer
    from pixelsmith.engines.diffusers import components, tiny
    from pixelsmith.engines.diffusers.pull import pull

    models = tmp_path_factory.mktemp("t2i-models")  # no diffusion weights: generate cannot be served
    monkeypatch.setenv("PIXELSMITH_MODELS", str(models))
    monkeypatch.setenv("PIXELSMITH_DIFFUSION_STEPS", "2")
    monkeypatch.setenv("PIXELSMITH_DEVICE", "cpu")
    ctx = browser.new_context(viewport=VIEWPORT)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    with LiveServer(Settings(data_dir=str(tmp_path_factory.mktemp("t2i-server")), access_log=False)) as live:
        open_tool(page, live, "generate")
        assert "Optional" in page.inner_text("#stage-empty-text"), "the image is optional for text-to-image"
        page.fill('[data-field="prompt"] textarea', "a red cat")
        # the page disables tools the server says it cannot serve; the run itself must say why too
        page.evaluate("() => { window.studio.tool.ready = true; document.querySelector('#run').disabled = false; }")
        run_and_wait(page)
        assert "pixelsmith models pull sd3.5-large" in page.inner_text("#run-error")
        assert [u.removeprefix(live.url) for u in posts] == ["/v1/jobs"], "the run went through the jobs API"

        # tiny random weights installed: generate is servable, the result comes from the job
        built = tmp_path_factory.mktemp("t2i-tiny")
        tiny.build_all(built, names=["sd3.5-large"])
        pull(["sd3.5-large"], source=built, log=lambda _: None)
        components.STORE.clear()
        try:
            open_tool(page, live, "generate")
            assert page.locator("#run").is_enabled()
            page.fill('[data-field="prompt"] textarea', "a blue dog")
            run_and_wait(page)
            assert page.locator("#result").is_visible(), page.inner_text("#run-error")
            size = page.inner_text("#result-size")
            assert size.startswith("64×64")
            page.click("#tab-history")
            page.wait_for_function("() => document.querySelectorAll('#history-runs li.run').length === 2")
            done, failed = page.locator("#history-runs li.run").all()
            assert "“a blue dog”" in done.inner_text() and "“a red cat”" in failed.inner_text()
            assert "pixelsmith models pull sd3.5-large" in failed.inner_text()
            page.wait_for_function("() => document.querySelector('#history-runs li.run.done img').naturalWidth === 64")
            done.get_by_role("button", name="Re-run").click()
            page.wait_for_function(
                "() => document.querySelector('#run-text').textContent.startsWith('Done')", timeout=RUN_TIMEOUT_MS
            )
            assert page.inner_text("#result-size") == size
            assert page.input_value('[data-field="prompt"] textarea') == "a blue dog"
            assert page.evaluate("() => window.studio.stage.base") is None, "text-to-image: no input on the stage"
            assert not [u for u in posts if "/v2beta/" in u], "no run took the REST route"
            page.click("#tab-history")
            page.wait_for_function("() => document.querySelectorAll('#history-runs li.run').length === 3")
            assert "“a blue dog”" in page.locator("#history-runs li.run.done").first.inner_text()
        finally:
            components.STORE.clear()
    ctx.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
