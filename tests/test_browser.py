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


FOLLOW_UP = "When did he make the journey?"
PUMP = """# The pump manual

The pump moves water from the well to the tank. It was designed in Oslo in 1998.

## Resetting the pump

To reset the pump, run these commands in a terminal:

    $ pumpctl stop --all
    $ pumpctl reset --hard
    $ pumpctl start

Then wait until the green light is on.
"""


@pytest.fixture(scope="module")
def documents(server, tmp_path_factory):
    """The Amazon article and a pump manual in the served knowledge base (uploaded through
    the API, whichever test runs first)."""
    import httpx

    url, upload, _ = server
    pump = tmp_path_factory.mktemp("pump") / "pump.md"
    pump.write_text(PUMP, encoding="utf-8")
    have = {d["doc_id"].rsplit("/", 1)[-1] for d in httpx.get(
        f"{url}/v1/documents", timeout=60).json()["documents"]}
    for path in (upload, pump):
        if path.name not in have:
            with open(path, "rb") as f:
                r = httpx.post(f"{url}/v1/documents", files={"files": (path.name, f)},
                               timeout=300)
            assert r.status_code == 200, r.text
    return url


def ask_on_page(browser, question):
    """Type a question into the page and press Enter; the answer element once it shows
    the answer to this question."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    box = browser.find_element(By.ID, "question")
    box.clear()
    box.send_keys(question, Keys.ENTER)
    wait_for(browser, lambda d: d.find_element(By.ID, "answer-question").text == question
             and d.find_element(By.ID, "answer").text and not d.find_element(
                 By.ID, "ask-button").get_attribute("disabled"))
    return browser.find_element(By.ID, "answer")


def test_a_conversation_follow_up_resolves_and_a_new_one_starts_over(documents, browser):
    from selenium.webdriver.common.by import By

    browser.get(documents + "/")
    first = ask_on_page(browser, QUESTION).text
    assert "Orellana" in first
    assert not browser.find_element(By.ID, "asked-as").is_displayed()
    assert not browser.find_element(By.ID, "conversation").is_displayed()
    then = ask_on_page(browser, FOLLOW_UP)
    asked_as = browser.find_element(By.ID, "asked-as")
    assert asked_as.is_displayed()
    assert asked_as.text == "asked as: When did Francisco de Orellana make the journey?"
    assert "1542" in then.text
    # the first turn stays on the page, with its answer and its cited span
    earlier = browser.find_elements(By.CSS_SELECTOR, "#turns > li")
    assert len(earlier) == 1 and QUESTION in earlier[0].text
    assert earlier[0].find_element(By.CSS_SELECTOR, ".answer").text == first
    marks = earlier[0].find_elements(By.CSS_SELECTOR, ".source mark")
    assert marks and marks[0].text == first
    assert "Amazon_rainforest.txt" in earlier[0].find_element(By.CSS_SELECTOR, ".source").text
    assert browser.execute_script("return document.querySelectorAll('#turns [id]').length") == 0
    shot = os.environ.get("RAG_SCREENSHOT_CONVERSATION")
    if shot:
        browser.set_window_size(1100, 1500)
        browser.execute_script("document.getElementById('why').open = false;"
                               "window.scrollTo(0, 0)")
        browser.save_screenshot(shot)
        browser.set_window_size(1100, 1400)
    # a new conversation: the turns go, and the same words are a question of their own
    browser.find_element(By.ID, "new-conversation").click()
    assert not browser.find_elements(By.CSS_SELECTOR, "#turns > li")
    assert not browser.find_element(By.ID, "answer-section").is_displayed()
    assert browser.switch_to.active_element.get_attribute("id") == "question"
    ask_on_page(browser, FOLLOW_UP)
    assert not browser.find_element(By.ID, "asked-as").is_displayed()
    assert not browser.find_elements(By.CSS_SELECTOR, "#turns > li")


def test_a_factoid_shows_its_sentence_and_a_how_to_keeps_its_lines(documents, browser):
    from selenium.webdriver.common.by import By

    browser.get(documents + "/")
    answer = ask_on_page(browser, QUESTION)
    context = browser.find_element(By.ID, "answer-context")
    assert context.is_displayed()  # the sentence the short answer stands in, span in bold
    assert context.text == ("The first European to travel the length of the Amazon River was "
                            "Francisco de Orellana in 1542.")
    assert context.find_element(By.TAG_NAME, "strong").text == answer.text
    assert "form-span" in answer.get_attribute("class")
    steps = ask_on_page(browser, "How do I reset the pump?")
    assert "form-steps" in steps.get_attribute("class")
    assert not browser.find_element(By.ID, "answer-context").is_displayed()
    assert browser.execute_script(
        "return getComputedStyle(document.getElementById('answer')).whiteSpace") == "pre-wrap"
    assert "$ pumpctl stop --all\n" in steps.text and "$ pumpctl reset --hard" in steps.text
    # a code answer in monospace (the page's style for that form)
    font = browser.execute_script(
        "const p = document.createElement('p'); p.className = 'answer form-code';"
        "document.body.append(p); const f = getComputedStyle(p).fontFamily; p.remove();"
        "return f;")
    assert "monospace" in font
