"""The web page in a real headless Chromium, against a real `rag serve` process with the
packaged embedder and the project's reader: upload a document, ask, check the answer and
its highlighted span in the DOM, open the document at the span; keyboard only; phone width.

Needs Debian's chromium and chromium-driver (`.ci/run` installs them). With RAG_SCREENSHOT
set to a path, the answer view is saved there (the README's picture comes from this test).
"""
import gzip
import json
import os

import pytest

from browsing import CHROMIUM, DRIVER, ROOT, chromium, rag_serve, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not (CHROMIUM and DRIVER), reason="needs Debian's chromium and chromium-driver")]
QUESTION = "Who was the first European to travel the Amazon River?"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`rag serve` on a new, empty knowledge base; the URL."""
    base = tmp_path_factory.mktemp("serve")
    article = next(json.loads(line) for line in gzip.open(
        ROOT / "corpora" / "squad-dev" / "articles.jsonl.gz", "rt", encoding="utf-8")
        if json.loads(line)["id"] == "Amazon_rainforest")
    upload = base / "Amazon_rainforest.txt"
    upload.write_text(article["text"], encoding="utf-8")
    with rag_serve(base) as (url, proc):
        yield url, upload, proc
    assert "rag serve: http://127.0.0.1" in (base / "serve.log").read_text()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with chromium(tmp_path_factory.mktemp("chromium")) as driver:
        yield driver


def test_upload_ask_and_see_the_cited_span(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    url, upload, _ = server
    browser.get(url + "/")
    wait_for(browser, lambda d: "no documents yet" in d.find_element(By.ID, "page-info").text)
    # upload through the page's file input (the drop area opens it)
    browser.execute_script("document.getElementById('file-input').hidden = false")
    browser.find_element(By.ID, "file-input").send_keys(str(upload))
    wait_for(browser, lambda d: "Indexed: 1 new" in d.find_element(By.ID, "upload-status").text)
    wait_for(browser, lambda d: "Amazon_rainforest.txt" in
             d.find_element(By.ID, "documents").text)
    # ask with the keyboard alone: type, Enter
    box = browser.find_element(By.ID, "question")
    box.click()
    box.send_keys(QUESTION, Keys.ENTER)
    answer = wait_for(browser, lambda d: d.find_element(By.ID, "answer").text or None)
    assert "Orellana" in answer
    mark = browser.find_element(By.ID, "answer-mark")
    assert mark.text == answer  # the cited span, highlighted in its passage
    passage = mark.find_element(By.XPATH, "..").text
    assert "first European to travel the length of the Amazon River" in passage
    sources = browser.find_elements(By.CSS_SELECTOR, "#sources li")
    assert sources and "Amazon_rainforest.txt" in sources[0].text
    # why this answer: per-passage bars and a heat map whose peak is on the answer
    assert browser.find_elements(By.CSS_SELECTOR, "#why-passages li .bar")
    starts = browser.find_elements(By.CSS_SELECTOR, "#heat span[data-start]")
    ends = browser.find_elements(By.CSS_SELECTOR, "#heat span[data-end]")
    assert starts and ends
    assert starts[0].text in answer and ends[-1].text in answer
    shot = os.environ.get("RAG_SCREENSHOT")
    if shot:
        browser.set_window_size(1100, 2200)  # the answer, its sources and the heat map
        browser.execute_script("window.scrollTo(0, 0)")
        browser.save_screenshot(shot)
        browser.set_window_size(1100, 1400)
    # open the whole document at the span
    sources[0].find_element(By.LINK_TEXT, "open document").click()
    doc_mark = wait_for(browser, lambda d: d.find_element(By.ID, "doc-mark"))
    assert doc_mark.text == answer
    text = browser.find_element(By.ID, "doc-text").text
    assert text.startswith(upload.read_text()[:40])


def test_keyboard_reaches_every_control_and_a_phone_screen_fits(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    url, _, _ = server
    browser.get(url + "/")
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#documents li"))
    seen = set()
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    for _ in range(40):
        active = browser.switch_to.active_element
        seen.add(active.get_attribute("id") or active.get_attribute("aria-label") or
                 active.tag_name)
        active.send_keys(Keys.TAB)
    for control in ("question", "ask-button", "drop"):
        assert control in seen, (control, seen)
    assert any(c.startswith("delete ") and c.endswith("/Amazon_rainforest.txt") for c in seen)
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {  # a phone
        "width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True})
    try:
        browser.get(url + "/")
        wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#documents li"))
        box = browser.find_element(By.ID, "question")
        box.send_keys(QUESTION, Keys.ENTER)
        wait_for(browser, lambda d: d.find_element(By.ID, "answer").text or None)
        wide = browser.execute_script("""
            const width = document.documentElement.clientWidth, out = [];
            for (const e of document.querySelectorAll("body *")) {
              const r = e.getBoundingClientRect();
              if (r.width && r.right > width + 1) out.push(e.tagName + "#" + e.id + " " + r.right);
            }
            return [width, out];""")
        assert wide[0] <= 400 and not wide[1], wide  # nothing wider than the screen
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_a_chinese_question_gets_marked_evidence_not_an_answer(server, browser):
    """The reader reads English only: a Chinese document's question is answered with the
    best-matching sentence, shown as evidence (a note says so) and highlighted in its
    passage; an English question afterwards hides the note again."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    url, _, _ = server
    browser.get(url + "/")
    browser.execute_script("document.getElementById('file-input').hidden = false")
    browser.find_element(By.ID, "file-input").send_keys(
        str(ROOT / "eval" / "data" / "zh-notes" / "28-yangtze-river.md"))
    wait_for(browser, lambda d: "28-yangtze-river.md" in d.find_element(By.ID, "documents").text)
    box = browser.find_element(By.ID, "question")
    box.send_keys("长江全长大约多少公里？", Keys.ENTER)
    note = wait_for(browser, lambda d: d.find_element(By.ID, "answer-note").is_displayed()
                    and d.find_element(By.ID, "answer-note"))
    assert note.text.startswith("Evidence, not an answer: the question is in Chinese")
    answer = browser.find_element(By.ID, "answer").text
    assert "6300公里" in answer
    assert browser.find_element(By.ID, "answer-mark").text == answer
    box = browser.find_element(By.ID, "question")
    box.clear()
    box.send_keys(QUESTION, Keys.ENTER)
    wait_for(browser, lambda d: "Orellana" in d.find_element(By.ID, "answer").text)
    assert not browser.find_element(By.ID, "answer-note").is_displayed()


def test_the_api_docs_work_under_the_content_security_policy(server, browser):
    """Swagger UI loads from this server under its CSP (no inline script), and "Try it out"
    sends the page token, so the request is not refused as a cross-site one."""
    from selenium.webdriver.common.by import By

    url, _, _ = server
    browser.get(url + "/docs")
    stats = wait_for(browser, lambda d: next(
        (e for e in d.find_elements(By.CSS_SELECTOR, ".opblock-summary")
         if "/v1/stats" in e.text), None), timeout=60)
    stats.click()
    wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, ".try-out__btn")).click()
    wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, ".execute")).click()
    code = wait_for(browser, lambda d: d.find_element(
        By.CSS_SELECTOR, ".live-responses-table tbody .response-col_status").text, timeout=60)
    assert code.strip() == "200"
