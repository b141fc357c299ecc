"""The upload page, the preview page and the error page in headless Chromium."""
from __future__ import annotations

import base64
import io
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from PIL import Image, ImageDraw

pytestmark = pytest.mark.browser

DESKTOP = (1280, 900)
PHONE = (390, 844)

DROP_FILES_JS = """
const [files, targetId] = arguments;
const data = new DataTransfer();
for (const {b64, name, type} of files) {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  data.items.add(new File([bytes], name, {type}));
}
const target = document.getElementById(targetId);
const fire = (kind) => target.dispatchEvent(
  new DragEvent(kind, {bubbles: true, cancelable: true, dataTransfer: data}));
fire('dragenter');
fire('dragover');
const highlighted = target.classList.contains('is-dragover');
const accepted = !fire('drop');
return {highlighted, accepted};
"""

PASTE_FILE_JS = """
const [b64, name, type] = arguments;
const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
const data = new DataTransfer();
data.items.add(new File([bytes], name, {type}));
const event = new ClipboardEvent('paste', {bubbles: true, cancelable: true, clipboardData: data});
return !document.body.dispatchEvent(event);
"""

DROP_OVERSIZED_JS = """
const [size, targetId] = arguments;
const chunk = new Uint8Array(1024 * 1024);
const parts = [];
let left = size;
while (left > 0) {
  const n = Math.min(left, chunk.length);
  parts.push(n === chunk.length ? chunk : chunk.subarray(0, n));
  left -= n;
}
const file = new File(parts, 'too-big.bin', {type: 'application/octet-stream'});
const data = new DataTransfer();
data.items.add(file);
document.getElementById(targetId).dispatchEvent(
  new DragEvent('drop', {bubbles: true, cancelable: true, dataTransfer: data}));
return file.size;
"""

FETCH_JS = """
const [url, done] = [arguments[0], arguments[arguments.length - 1]];
fetch(url, {cache: 'no-store'})
  .then(async (response) => done({
    status: response.status,
    disposition: response.headers.get('Content-Disposition'),
    type: response.headers.get('Content-Type'),
    length: (await response.arrayBuffer()).byteLength,
  }))
  .catch((error) => done({error: String(error)}));
"""

# Tag and class outline of a card (without the upload progress, the
# uploader's own controls and the full-size modifier) to compare the
# JS-built card with the template's.
CARD_OUTLINE_JS = """
function outline(node) {
  if (node.classList.contains('progress') || node.classList.contains('card__owner')) return null;
  const classes = [...node.classList].filter((c) => c !== 'result-card--full').sort();
  const children = [...node.children].map(outline).filter(Boolean);
  return node.tagName.toLowerCase() + classes.map((c) => '.' + c).join('')
    + (children.length ? '(' + children.join(' ') + ')' : '');
}
return outline(arguments[0]);
"""

READ_CLIPBOARD_JS = """
const done = arguments[arguments.length - 1];
navigator.clipboard.readText().then(done, (error) => done('ERROR: ' + error));
"""


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def png_bytes(size: tuple[int, int], background: str, accent: str) -> bytes:
    """A small but non-trivial PNG (stripes and a disc) made with Pillow."""
    image = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(image)
    width, height = size
    for x in range(-height, width, 24):
        draw.line([(x, height), (x + height, 0)], fill=accent, width=8)
    radius = min(size) // 4
    draw.ellipse(
        [width // 2 - radius, height // 2 - radius, width // 2 + radius, height // 2 + radius],
        fill="#ffffff",
        outline=accent,
        width=4,
    )
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def text_of(element) -> str:
    """The element's text content, whatever its current visibility or animation."""
    return (element.get_attribute("textContent") or "").strip()


def drop_files(driver, files, target="drop-zone"):
    """Drop (name, mimetype, bytes) files, built as File objects in the page, on `target`."""
    payload = [
        {"b64": base64.b64encode(data).decode(), "name": name, "type": mimetype} for name, mimetype, data in files
    ]
    return driver.execute_script(DROP_FILES_JS, payload, target)


def wait_for(driver, condition, timeout=20, message=""):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition, message)


def set_viewport(driver, size, mobile=False):
    width, height = size
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
    )


def reset_viewport(driver):
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def screenshot(driver, path: Path, full_page=True):
    """Save a PNG of the viewport, or of the whole page when full_page."""
    driver.execute_script("window.scrollTo(0, 0);")
    if not full_page:
        driver.save_screenshot(str(path))
        return path
    metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    content = metrics.get("cssContentSize") or metrics["contentSize"]
    viewport = metrics.get("cssLayoutViewport") or metrics["layoutViewport"]
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {
                "x": 0,
                "y": 0,
                "width": viewport["clientWidth"],
                "height": max(content["height"], viewport["clientHeight"]),
                "scale": 1,
            },
        },
    )
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def uncaught_errors(driver):
    """Uncaught JavaScript errors and Content Security Policy violations
    reported on the console since the last call."""
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if entry.get("level") == "SEVERE"
        and ("Uncaught" in entry.get("message", "") or "Content Security Policy" in entry.get("message", ""))
    ]


def settled_cards(driver):
    """Result cards and error cards currently on the upload page."""
    from selenium.webdriver.common.by import By

    done = driver.find_elements(By.CSS_SELECTOR, "#results .result-card")
    failed = driver.find_elements(By.CSS_SELECTOR, "#results .upload-card.is-error")
    return done, failed


def wait_for_result_cards(driver, count, timeout=30):
    """Wait until `count` result cards exist; fail early on an error card."""

    def ready(drv):
        done, failed = settled_cards(drv)
        if failed:
            return "error"
        return len(done) >= count

    outcome = wait_for(driver, ready, timeout, f"expected {count} result card(s)")
    if outcome == "error":
        _, failed = settled_cards(driver)
        pytest.fail("upload failed in the browser: " + " | ".join(text_of(card) for card in failed))
    done, _ = settled_cards(driver)
    return done


def card_by_filename(driver, filename):
    from selenium.webdriver.common.by import By

    for card in driver.find_elements(By.CSS_SELECTOR, ".result-card"):
        if text_of(card.find_element(By.CSS_SELECTOR, ".filename")) == filename:
            return card
    raise AssertionError(f"no result card for {filename!r}")


def card_links(card):
    from selenium.webdriver.common.by import By

    return {key: card.find_element(By.CSS_SELECTOR, f"a.link-{key}").get_attribute("href") for key in "dips"}


def wait_image_loaded(driver, img, timeout=20):
    wait_for(
        driver,
        lambda drv: drv.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0;", img),
        timeout,
        "the image did not load",
    )
    return driver.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight];", img)


def check_card(driver, card, base_url, filename, dimensions, mimetype="image/png"):
    """The shared card structure: image, name, size, type, time and links."""
    from selenium.webdriver.common.by import By

    assert text_of(card.find_element(By.CSS_SELECTOR, ".filename")) == filename
    assert card.get_attribute("data-kind") == "image"
    meta = {
        key: text_of(card.find_element(By.CSS_SELECTOR, f".meta--{key} dd"))
        for key in ("size", "type", "time")
    }
    assert meta["size"], meta
    assert meta["type"] == mimetype, meta
    assert meta["time"], meta

    links = card_links(card)
    for key, href in links.items():
        assert href and href.startswith(base_url + "/"), (key, href, base_url)
    assert urlsplit(links["p"]).path.startswith("/p/"), links

    img = card.find_element(By.CSS_SELECTOR, ".card__media img")
    assert img.get_attribute("src") == links["i"]
    assert tuple(wait_image_loaded(driver, img)) == dimensions

    buttons = card.find_elements(By.CSS_SELECTOR, ".link-row .copy-btn")
    assert [b.get_attribute("data-copy") for b in buttons] == [links[k] for k in "dips"]
    return links


# ---------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------


def test_upload_preview_and_download(live_server, browser, artifacts_dir, tmp_path):
    from selenium.webdriver.common.by import By

    driver = browser
    first_png = tmp_path / "browser-upload.png"
    first_png.write_bytes(png_bytes((320, 200), "#fde68a", "#ea580c"))
    dropped_png = png_bytes((240, 160), "#bfdbfe", "#1d4ed8")

    set_viewport(driver, DESKTOP)
    driver.get(live_server + "/")
    uncaught_errors(driver)  # drop earlier console output
    assert "pastefile" in driver.title
    home = driver.find_element(By.CSS_SELECTOR, ".site-header a.brand")
    assert home.get_attribute("href").rstrip("/") == live_server
    assert driver.find_element(By.ID, "drop-zone").is_displayed()
    file_input = driver.find_element(By.ID, "file-input")
    assert file_input.get_attribute("multiple") is not None
    for field in ("w", "h"):
        assert driver.find_element(By.ID, field).get_attribute("name") == field

    # 1. pick a file with the file input
    file_input.send_keys(str(first_png))
    (card,) = wait_for_result_cards(driver, 1)
    progress = card.find_element(By.CSS_SELECTOR, ".progress")
    bar = progress.find_element(By.TAG_NAME, "progress")
    assert progress.get_attribute("data-state") == "done"
    assert float(bar.get_attribute("value")) == float(bar.get_attribute("max")) == 100.0
    assert text_of(progress.find_element(By.CSS_SELECTOR, ".progress__percent")) == "100%"
    first_links = check_card(driver, card, live_server, "browser-upload.png", (320, 200))
    upload_outline = driver.execute_script(CARD_OUTLINE_JS, card)

    # a single upload moves the address bar to the preview page, no reload
    path = driver.execute_script("return window.location.pathname;")
    assert path.startswith("/p/")
    assert path == urlsplit(first_links["p"]).path
    assert driver.find_elements(By.ID, "drop-zone"), "the page must not have been reloaded"

    # copy buttons put the link on the clipboard
    driver.execute_cdp_cmd(
        "Browser.grantPermissions",
        {"origin": live_server, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]},
    )
    copy_button = card.find_element(By.CSS_SELECTOR, ".link-row--s .copy-btn")
    copy_button.click()
    wait_for(driver, lambda drv: "is-copied" in copy_button.get_attribute("class"), 5, "copy did not succeed")
    assert driver.execute_async_script(READ_CLIPBOARD_JS) == first_links["s"]

    # 2. drop a second image (a File built in the page) on the drop zone
    dropped = drop_files(driver, [("dropped.png", "image/png", dropped_png)])
    assert dropped == {"highlighted": True, "accepted": True}
    cards = wait_for_result_cards(driver, 2)
    assert len(cards) == 2
    second = card_by_filename(driver, "dropped.png")
    assert cards[0] == second, "the newest upload is listed first"
    second_links = check_card(driver, second, live_server, "dropped.png", (240, 160))
    assert second_links["p"] != first_links["p"]
    assert driver.execute_script("return window.location.pathname;") == urlsplit(second_links["p"]).path
    assert "is-dragover" not in driver.find_element(By.ID, "drop-zone").get_attribute("class").split()

    assert uncaught_errors(driver) == []
    screenshot(driver, artifacts_dir / "upload-desktop.png")

    # phone-sized viewport: nothing may overflow horizontally
    set_viewport(driver, PHONE, mobile=True)
    driver.execute_script("window.scrollTo(0, 0);")
    wait_for(driver, lambda drv: drv.execute_script("return window.innerWidth;") == PHONE[0], 5)
    overflow = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth;")
    assert overflow <= 0, f"the page is {overflow}px wider than a phone screen"
    screenshot(driver, artifacts_dir / "upload-phone.png", full_page=False)
    screenshot(driver, artifacts_dir / "upload-phone-full.png")
    set_viewport(driver, DESKTOP)

    # 3. the short link leads to the preview page with the inline image
    driver.get(first_links["s"])
    wait_for(driver, lambda drv: drv.execute_script("return window.location.pathname;").startswith("/p/"), 10)
    assert driver.execute_script("return window.location.pathname;") == urlsplit(first_links["p"]).path
    preview = driver.find_element(By.CSS_SELECTOR, ".result-card")
    assert "result-card--full" in preview.get_attribute("class")
    preview_links = check_card(driver, preview, live_server, "browser-upload.png", (320, 200))
    assert preview_links == first_links
    assert driver.execute_script(CARD_OUTLINE_JS, preview) == upload_outline, "app.js and _card.jinja2 differ"
    another = driver.find_element(By.CSS_SELECTOR, "a.upload-another")
    assert another.get_attribute("href").rstrip("/") == live_server
    assert "browser-upload.png" in driver.title
    assert uncaught_errors(driver) == []
    screenshot(driver, artifacts_dir / "preview-desktop.png")
    set_viewport(driver, PHONE, mobile=True)
    screenshot(driver, artifacts_dir / "preview-phone.png", full_page=False)
    set_viewport(driver, DESKTOP)

    # 4. the download link serves the file as an attachment
    answer = driver.execute_async_script(FETCH_JS, first_links["d"])
    assert "error" not in answer, answer
    assert answer["status"] == 200, answer
    assert "attachment" in (answer["disposition"] or "").lower(), answer
    assert answer["length"] > 0

    with urllib.request.urlopen(first_links["d"], timeout=10) as response:
        assert response.status == 200
        assert "attachment" in response.headers.get("Content-Disposition", "").lower()
        body = response.read()
    with Image.open(io.BytesIO(body)) as downloaded:
        assert downloaded.format == "PNG"
        assert downloaded.size == (320, 200)
    assert len(body) == answer["length"]

    reset_viewport(driver)


def test_paste_uploads_an_image(live_server, browser):
    from selenium.webdriver.common.by import By

    driver = browser
    set_viewport(driver, DESKTOP)
    driver.get(live_server + "/")
    image = png_bytes((200, 120), "#bbf7d0", "#15803d")
    handled = driver.execute_script(PASTE_FILE_JS, base64.b64encode(image).decode(), "image.png", "image/png")
    assert handled, "the paste handler should take the image"
    (card,) = wait_for_result_cards(driver, 1)
    filename = text_of(card.find_element(By.CSS_SELECTOR, ".filename"))
    assert filename.startswith("pasted-") and filename.endswith(".png"), filename
    check_card(driver, card, live_server, filename, (200, 120))
    assert driver.execute_script("return window.location.pathname;").startswith("/p/")
    assert uncaught_errors(driver) == []
    reset_viewport(driver)


def test_oversized_file_is_refused_before_upload(live_server, browser):
    from selenium.webdriver.common.by import By

    driver = browser
    set_viewport(driver, DESKTOP)
    driver.get(live_server + "/")
    form = driver.find_element(By.ID, "upload-form")
    limit = int(form.get_attribute("data-max-size"))
    limit_text = form.get_attribute("data-max-size-human")
    assert limit > 0 and limit_text

    size = driver.execute_script(DROP_OVERSIZED_JS, limit + 1, "drop-zone")
    assert size == limit + 1
    card = wait_for(
        driver,
        lambda drv: drv.find_element(By.CSS_SELECTOR, "#results .upload-card.is-error"),
        10,
        "no error card for the oversized file",
    )
    assert card.get_attribute("data-state") == "error"
    message = text_of(card.find_element(By.CSS_SELECTOR, ".card__error"))
    assert "too large" in message.lower()
    assert limit_text in message
    assert not driver.find_elements(By.CSS_SELECTOR, ".result-card")
    assert driver.execute_script("return window.location.pathname;") == "/"
    assert uncaught_errors(driver) == []
    reset_viewport(driver)


def test_unknown_file_shows_the_error_page(live_server, browser, artifacts_dir):
    from selenium.webdriver.common.by import By

    driver = browser
    set_viewport(driver, DESKTOP)
    driver.get(live_server + "/p/0000000000000000000000000000000000000000")
    status = text_of(driver.find_element(By.CSS_SELECTOR, ".error-page__status"))
    assert status == "404"
    assert text_of(driver.find_element(By.CSS_SELECTOR, ".error-page__title"))
    home = driver.find_element(By.CSS_SELECTOR, ".error-page a.btn--primary")
    assert home.get_attribute("href").rstrip("/") == live_server
    screenshot(driver, artifacts_dir / "error-desktop.png")
    reset_viewport(driver)


def test_resize_options_and_server_errors(live_server, browser, artifacts_dir):
    from selenium.webdriver.common.by import By

    driver = browser
    set_viewport(driver, DESKTOP)
    driver.get(live_server + "/")
    max_side = int(driver.find_element(By.ID, "upload-form").get_attribute("data-max-side"))

    # out-of-range sizes are refused in the page, nothing is uploaded
    width = driver.find_element(By.ID, "w")
    width.send_keys(str(max_side + 1))
    drop_files(driver, [("big.png", "image/png", png_bytes((64, 64), "#fff", "#000"))])
    assert driver.execute_script("return arguments[0].validationMessage;", width)
    assert not driver.find_elements(By.CSS_SELECTOR, "#results > *")

    # w and h crop-resize images; other files in the same batch go up untouched
    width.clear()
    width.send_keys("64")
    driver.find_element(By.ID, "h").send_keys("64")
    notes = b"pastefile browser test\n" * 20
    drop_files(
        driver,
        [
            ("resize-me.png", "image/png", png_bytes((320, 200), "#fecaca", "#b91c1c")),
            ("notes.txt", "text/plain", notes),
        ],
    )
    cards = wait_for_result_cards(driver, 2)
    assert [text_of(c.find_element(By.CSS_SELECTOR, ".filename")) for c in cards] == ["resize-me.png", "notes.txt"]
    image_card, text_card = cards
    img = image_card.find_element(By.CSS_SELECTOR, ".card__media img")
    dims = wait_image_loaded(driver, img)
    assert 0 < max(dims) <= 64, dims
    assert text_card.get_attribute("data-kind") == "other"
    assert text_of(text_card.find_element(By.CSS_SELECTOR, ".file-icon__ext")) == "TXT"
    assert not text_card.find_elements(By.CSS_SELECTOR, ".card__media img")
    with urllib.request.urlopen(card_links(text_card)["d"], timeout=10) as response:
        assert response.read() == notes
    # more than one file: the address bar stays on the upload page
    assert driver.execute_script("return window.location.pathname;") == "/"

    # an error answer from the server lands on the file's card
    drop_files(driver, [("empty.txt", "text/plain", b"")])
    card = wait_for(
        driver,
        lambda drv: drv.find_element(By.CSS_SELECTOR, "#results .upload-card.is-error"),
        15,
        "no error card for the empty file",
    )
    assert text_of(card.find_element(By.CSS_SELECTOR, ".filename")) == "empty.txt"
    assert card.find_element(By.CSS_SELECTOR, ".progress").get_attribute("data-state") == "error"
    assert "empty" in text_of(card.find_element(By.CSS_SELECTOR, ".card__error")).lower()
    assert len(driver.find_elements(By.CSS_SELECTOR, ".result-card")) == 2
    assert uncaught_errors(driver) == []
    screenshot(driver, artifacts_dir / "upload-mixed-desktop.png")
    reset_viewport(driver)


def http_status(url: str) -> int:
    import urllib.error

    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def click(driver, element):
    """Click after scrolling the element to the middle (the sticky header
    would otherwise cover it on a phone)."""
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    element.click()


def stored_uploads(driver):
    return driver.execute_script("return JSON.parse(localStorage.getItem('pastefile.uploads.v1') || '[]');")


@pytest.mark.parametrize("size, mobile", [((1280, 800), False), ((390, 844), True)], ids=["desktop", "phone"])
def test_uploads_list_expiry_and_delete(live_server, browser, artifacts_dir, size, mobile):
    import json
    import uuid
    from datetime import datetime, timedelta, timezone

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import Select

    driver = browser
    tag = "phone" if mobile else "desktop"
    set_viewport(driver, size, mobile=mobile)
    driver.get(live_server + "/")
    uncaught_errors(driver)
    assert driver.find_element(By.ID, "results-head").get_attribute("hidden") is not None

    # the expiry choice: sent as `expires` (seconds) with every file of the batch
    expiry = Select(driver.find_element(By.ID, "expires"))
    assert expiry.first_selected_option.get_attribute("value") == ""
    values = [o.get_attribute("value") for o in expiry.options]
    assert values == ["", "3600", "86400", "604800", "2592000"]
    assert all(int(v) <= 365 * 24 * 3600 for v in values if v)
    expiry.select_by_value("86400")
    picture, notes = f"keep-{tag}.png", f"delete-{tag}.txt"
    notes_body = f"pastefile delete test {uuid.uuid4().hex}\n".encode() * 10
    drop_files(driver, [
        (picture, "image/png", png_bytes((200, 120), "#ddd6fe", "#6d28d9")),
        (notes, "text/plain", notes_body),
    ])
    wait_for_result_cards(driver, 2)
    uploaded = {}
    for name in (picture, notes):
        card = card_by_filename(driver, name)
        links = card_links(card)
        delete = card.find_element(By.CSS_SELECTOR, "a.link-delete")
        filehash = card.get_attribute("data-filehash")
        assert urlsplit(delete.get_attribute("href")).path.startswith(f"/x/{filehash}/")
        assert text_of(card.find_element(By.CSS_SELECTOR, ".meta--expires dd")).endswith(" UTC")
        uploaded[name] = {"links": links, "filehash": filehash, "delete": delete.get_attribute("href")}
    # the paste's JSON carries the expiry asked for
    with urllib.request.urlopen(f"{live_server}/j/{uploaded[notes]['filehash']}", timeout=10) as response:
        meta = json.load(response)
    expires = datetime.strptime(meta["expires"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
    assert abs(expires - datetime.now(timezone.utc) - timedelta(days=1)) < timedelta(minutes=5)
    assert "delete_token" not in meta and "url_delete" not in meta
    assert {e["filehash"] for e in stored_uploads(driver)} == {u["filehash"] for u in uploaded.values()}

    # a reload keeps the list, with its delete links, and says where it lives
    driver.refresh()
    restored = wait_for_result_cards(driver, 2)
    assert [text_of(c.find_element(By.CSS_SELECTOR, ".filename")) for c in restored] == [picture, notes]
    for name, info in uploaded.items():
        card = card_by_filename(driver, name)
        assert card_links(card) == info["links"]
        assert card.find_element(By.CSS_SELECTOR, "a.link-delete").get_attribute("href") == info["delete"]
    head = driver.find_element(By.ID, "results-head")
    assert head.is_displayed()
    assert "only in this browser" in text_of(driver.find_element(By.ID, "results-note"))
    wait_image_loaded(driver, card_by_filename(driver, picture).find_element(By.CSS_SELECTOR, ".card__media img"))
    overflow = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth;")
    assert overflow <= 0, f"the page is {overflow}px wider than the screen"
    screenshot(driver, artifacts_dir / f"uploads-list-{tag}.png")

    # delete asks first: cancelled, nothing happens
    card = card_by_filename(driver, notes)
    click(driver, card.find_element(By.CSS_SELECTOR, "a.link-delete"))
    alert = wait_for(driver, EC.alert_is_present(), 5, "no confirmation before deleting")
    assert notes in alert.text
    alert.dismiss()
    assert card.get_attribute("data-state") == "done"
    assert http_status(uploaded[notes]["links"]["p"]) == 200

    # accepted: the file is gone and the card says so
    click(driver, card.find_element(By.CSS_SELECTOR, "a.link-delete"))
    wait_for(driver, EC.alert_is_present(), 5, "no confirmation before deleting").accept()
    wait_for(driver, lambda drv: card.get_attribute("data-state") == "deleted", 10, "the card never said deleted")
    assert "Deleted" in text_of(card.find_element(By.CSS_SELECTOR, ".card__status"))
    assert not card.find_elements(By.CSS_SELECTOR, "a.link-delete")
    assert http_status(uploaded[notes]["links"]["p"]) == 404
    assert http_status(uploaded[notes]["links"]["i"]) == 404
    assert [e["filehash"] for e in stored_uploads(driver)] == [uploaded[picture]["filehash"]]
    screenshot(driver, artifacts_dir / f"uploads-deleted-{tag}.png")

    # a reload: the deleted one is not listed any more
    driver.refresh()
    (card,) = wait_for_result_cards(driver, 1)
    assert text_of(card.find_element(By.CSS_SELECTOR, ".filename")) == picture

    # removing an entry from the list leaves the file online
    click(driver, card.find_element(By.CSS_SELECTOR, ".card__forget"))
    wait_for(driver, lambda drv: not drv.find_elements(By.CSS_SELECTOR, "#results .result-card"), 5)
    assert stored_uploads(driver) == []
    assert driver.find_element(By.ID, "results-head").get_attribute("hidden") is not None
    assert http_status(uploaded[picture]["links"]["p"]) == 200
    driver.refresh()
    assert not driver.find_elements(By.CSS_SELECTOR, "#results .result-card")
    assert uncaught_errors(driver) == []
    reset_viewport(driver)


def test_preview_page_offers_the_uploaders_delete_link(live_server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC

    driver = browser
    set_viewport(driver, DESKTOP)
    driver.get(live_server + "/")
    uncaught_errors(driver)
    drop_files(driver, [("single.png", "image/png", png_bytes((160, 100), "#fef3c7", "#b45309"))])
    (card,) = wait_for_result_cards(driver, 1)
    preview_url = card_links(card)["p"]
    # one file: the address bar shows its preview page; reloading opens it
    assert driver.execute_script("return window.location.pathname;") == urlsplit(preview_url).path
    driver.refresh()
    full = driver.find_element(By.CSS_SELECTOR, ".result-card--full")
    delete = wait_for(driver, lambda drv: full.find_element(By.CSS_SELECTOR, "a.link-delete"), 5)
    click(driver, delete)
    wait_for(driver, EC.alert_is_present(), 5, "no confirmation before deleting").accept()
    wait_for(driver, lambda drv: full.get_attribute("data-state") == "deleted", 10, "the card never said deleted")
    assert http_status(preview_url) == 404
    # someone else's preview page (no delete link in this browser) offers none
    driver.execute_script("window.localStorage.clear();")
    driver.get(live_server + "/")
    drop_files(driver, [("other.png", "image/png", png_bytes((160, 100), "#e0f2fe", "#0369a1"))])
    (card,) = wait_for_result_cards(driver, 1)
    driver.execute_script("window.localStorage.clear();")
    driver.refresh()
    assert driver.find_element(By.CSS_SELECTOR, ".result-card--full")
    assert not driver.find_elements(By.CSS_SELECTOR, "a.link-delete")
    assert uncaught_errors(driver) == []
    reset_viewport(driver)


@pytest.mark.parametrize("size, mobile", [((1280, 800), False), ((390, 844), True)], ids=["desktop", "phone"])
def test_text_preview(live_server, browser, artifacts_dir, size, mobile):
    import uuid

    from selenium.webdriver.common.by import By

    driver = browser
    tag = "phone" if mobile else "desktop"
    set_viewport(driver, size, mobile=mobile)
    driver.get(live_server + "/")
    uncaught_errors(driver)
    # markup past the 4 KiB the sniffer reads: plain text that contains a script tag
    line = "caf\u00e9 cr\u00e8me \u2713 " + "lorem ipsum dolor sit amet " * 3 + "\n"
    text = f"{uuid.uuid4().hex} {tag}\n" + line * 60 + "<script>document.title = 'pwned'</script>\n" + line * 12000
    data = text.encode()
    assert len(data) > 256 * 1024
    drop_files(driver, [(f"long-{tag}.txt", "text/plain", data)])
    (card,) = wait_for_result_cards(driver, 1)
    driver.get(card_links(card)["p"])
    shown = driver.find_element(By.CSS_SELECTOR, ".text-preview__body")
    content = shown.get_attribute("textContent")
    assert content.startswith(text[:200])
    assert "<script>document.title = 'pwned'</script>" in content
    assert "pwned" not in driver.title
    assert len(content.encode()) <= 256 * 1024 < len(data)
    more = driver.find_element(By.CSS_SELECTOR, ".text-preview__more a")
    assert more.get_attribute("href") == card_links(driver.find_element(By.CSS_SELECTOR, ".result-card"))["i"]
    # the raw file is decoded as UTF-8 by the browser
    driver.get(more.get_attribute("href"))
    assert driver.find_element(By.TAG_NAME, "body").text.startswith(text[:200].rstrip())
    driver.back()
    overflow = driver.execute_script("return document.documentElement.scrollWidth - window.innerWidth;")
    assert overflow <= 0, f"the page is {overflow}px wider than the screen"
    screenshot(driver, artifacts_dir / f"text-preview-{tag}.png")
    assert uncaught_errors(driver) == []
    reset_viewport(driver)


def test_clear_list_and_expired_entries(live_server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC

    driver = browser
    set_viewport(driver, DESKTOP)
    driver.get(live_server + "/")
    uncaught_errors(driver)
    drop_files(driver, [
        ("clear-1.png", "image/png", png_bytes((120, 80), "#fee2e2", "#991b1b")),
        ("clear-2.png", "image/png", png_bytes((120, 80), "#dcfce7", "#166534")),
    ])
    wait_for_result_cards(driver, 2)
    # an entry whose paste has expired is dropped when the page loads
    driver.execute_script("""
        const entries = JSON.parse(localStorage.getItem('pastefile.uploads.v1'));
        entries.push({...entries[0], filehash: 'gone', filename: 'expired.png', expires: '2001-01-01 00:00:00'});
        localStorage.setItem('pastefile.uploads.v1', JSON.stringify(entries));
    """)
    driver.refresh()
    cards = wait_for_result_cards(driver, 2)
    names = sorted(text_of(c.find_element(By.CSS_SELECTOR, ".filename")) for c in cards)
    assert names == ["clear-1.png", "clear-2.png"]
    assert len(stored_uploads(driver)) == 2

    # clearing asks first (the delete links would be lost), then forgets them all
    clear = driver.find_element(By.ID, "clear-results")
    click(driver, clear)
    alert = wait_for(driver, EC.alert_is_present(), 5, "no confirmation before clearing")
    assert "2 uploads" in alert.text
    alert.dismiss()
    assert len(driver.find_elements(By.CSS_SELECTOR, "#results .result-card")) == 2
    click(driver, clear)
    wait_for(driver, EC.alert_is_present(), 5, "no confirmation before clearing").accept()
    assert not driver.find_elements(By.CSS_SELECTOR, "#results .result-card")
    assert stored_uploads(driver) == []
    driver.refresh()
    assert not driver.find_elements(By.CSS_SELECTOR, "#results .result-card")
    assert uncaught_errors(driver) == []
    reset_viewport(driver)
