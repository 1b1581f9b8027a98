"""A cited PDF page in `rag serve`: /v1/page gives the boxes of the cited span and the answer
on the page (real uvicorn, fake embedder), /v1/page.png the page rendered from the stored
PDF; and in headless Chromium (real embedder and reader), a citation opens its page with the
passage highlighted over the words, checked on a screenshot."""
import io
import os
import shutil
import time

import httpx
import pytest

from browsing import CHROMIUM, DRIVER, chromium, rag_serve, wait_for
from conftest import FakeEmbedder, write_corpus
from knowledge import KnowledgeBase, sync
from pdfdocs import manual
from rag.serve.app import create_app
from serving import running


@pytest.fixture
def pdf_kb(tmp_path):
    docs = write_corpus(tmp_path / "docs", {"manual.pdf": manual(), "notes.txt": "Plain text."})
    sync(tmp_path / "kb", [docs], embedder=FakeEmbedder(), log=lambda m: None)
    return tmp_path / "kb", docs


def test_a_pdf_page_and_the_boxes_of_a_span_on_it(pdf_kb):
    kb_dir, docs = pdf_kb
    with KnowledgeBase.open(kb_dir, embedder=FakeEmbedder()) as kb:
        text = kb.document_text("manual.pdf")
    start = text.index("Clean the filter every month.")
    app = create_app(kb_dir, KnowledgeBase.open(kb_dir, embedder=FakeEmbedder()), None,
                     load_embedder=FakeEmbedder)
    with running(app) as url:
        r = httpx.get(f"{url}/v1/page", params={"doc": "manual.pdf", "n": 3, "start": start,
                                                 "end": start + 29, "answer_start": start + 17,
                                                 "answer_end": start + 28})
        assert r.status_code == 200, r.text
        view = r.json()
        assert (view["label"], view["pages"], view["width"], view["height"]) == ("2", 4, 612, 792)
        [cited], [answer] = view["boxes"]["cited"], view["boxes"]["answer"]
        assert cited[0] == pytest.approx(72, abs=1) and cited[1] < cited[3]
        assert cited[0] < answer[0] < answer[2] <= cited[2] + 0.5  # "every month" in the line
        png = httpx.get(f"{url}/v1/page.png", params={"doc": "manual.pdf", "n": 3})
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        from PIL import Image

        image = Image.open(io.BytesIO(png.content))
        assert image.size[1] / image.size[0] == pytest.approx(792 / 612, rel=0.01)
        # the words of the cited line are dark pixels where its box says
        k = image.size[0] / 612
        crop = image.convert("L").crop((int(cited[0] * k), int(cited[1] * k),
                                        int(cited[2] * k), int(cited[3] * k)))
        assert min(crop.tobytes()) < 80
        # not a PDF, no such page, a changed file: a clear 4xx
        assert httpx.get(f"{url}/v1/page", params={"doc": "notes.txt", "n": 1}).status_code \
            == 404
        assert httpx.get(f"{url}/v1/page.png", params={"doc": "manual.pdf", "n": 9}) \
            .status_code == 404
        os.utime(docs / "manual.pdf", (1, 1))
        changed = httpx.get(f"{url}/v1/page.png", params={"doc": "manual.pdf", "n": 3})
        assert changed.status_code == 409 and "index it again" in changed.text


def slow_to_draw_pdf(ops: int) -> bytes:
    """One page of text over a shading whose PostScript function runs ``ops`` operations for
    every pixel: quick to index (the text), seconds to draw (a 27 KB one took 30 s)."""
    import zlib

    text = b"BT /F1 12 Tf 72 720 Td (The pump is reset by holding the red button.) Tj ET\n"
    content = zlib.compress(text + b"q 612 0 0 700 0 0 cm /Sh1 sh Q\n")
    fn = b"{ " + b"dup mul sqrt " * ops + b"pop 0.5 }"
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources "
            b"<< /Font << /F1 5 0 R >> /Shading << /Sh1 6 0 R >> >> >>",
            b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (len(content),
                                                                             content),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
            b"<< /ShadingType 1 /ColorSpace /DeviceGray /Domain [0 1 0 1] /Function 7 0 R >>",
            b"<< /FunctionType 4 /Domain [0 1 0 1] /Range [0 1] /Length %d >>\nstream\n%s"
            b"\nendstream" % (len(fn), fn)]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for n, obj in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (n, obj)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1,
                                                                              xref)
    return bytes(out)


def test_a_page_slow_to_draw_holds_no_other_page(tmp_path, monkeypatch):
    """Pages are drawn by the parse workers within a time limit: a hostile page is cut off
    (409) and the other pages are drawn meanwhile (before, it held PDFium, and with it every
    page view, for as long as it took)."""
    import threading
    import time

    from rag.serve import pages

    docs = write_corpus(tmp_path / "docs", {"manual.pdf": manual(),
                                            "shade.pdf": slow_to_draw_pdf(400)})
    sync(tmp_path / "kb", [docs], embedder=FakeEmbedder(), log=lambda m: None)
    monkeypatch.setattr(pages, "DRAW_SECONDS", 1.0)
    app = create_app(tmp_path / "kb", KnowledgeBase.open(tmp_path / "kb", embedder=FakeEmbedder()),
                     None, load_embedder=FakeEmbedder)
    with running(app) as url:
        slow = {}
        t = threading.Thread(target=lambda: slow.update(r=httpx.get(
            f"{url}/v1/page.png", params={"doc": "shade.pdf", "n": 1}, timeout=60)))
        t0 = time.monotonic()
        t.start()
        time.sleep(0.2)
        other = httpx.get(f"{url}/v1/page.png", params={"doc": "manual.pdf", "n": 2}, timeout=60)
        assert other.status_code == 200 and time.monotonic() - t0 < 8
        t.join(60)
        assert slow["r"].status_code == 409 and "took longer than 1 s to draw" in slow["r"].text
        assert time.monotonic() - t0 < 15


def test_a_page_is_not_kept_waiting_behind_files_being_parsed(tmp_path):
    """Pages are drawn by the workers that parse uploads and watched files: with every one
    busy, a page view says so at its time limit instead of waiting for the files."""
    import threading

    from knowledge.parsing import Busy, ParsePool

    docs = write_corpus(tmp_path / "docs", {"manual.pdf": manual(),
                                            "shade.pdf": slow_to_draw_pdf(400)})
    with ParsePool(1) as pool:
        busy = threading.Thread(target=lambda: pool.draw(docs / "shade.pdf", 1, 1600, 30))
        busy.start()
        time.sleep(0.5)
        with pytest.raises(Busy):
            pool.draw(docs / "manual.pdf", 1, 400, 0.5)
        busy.join(60)
        assert pool.draw(docs / "manual.pdf", 1, 400, 10)[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
@pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs Debian's chromium and "
                    "chromium-driver")
def test_a_citation_opens_its_page_with_the_passage_highlighted(tmp_path):
    from PIL import Image
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    upload = tmp_path / "pump-manual.pdf"
    upload.write_bytes(manual())
    with rag_serve(tmp_path) as (url, _), chromium(tmp_path / "profile") as driver:
        driver.get(url + "/")
        driver.execute_script("document.getElementById('file-input').hidden = false")
        driver.find_element(By.ID, "file-input").send_keys(str(upload))
        wait_for(driver, lambda d: "Indexed: 1 new" in d.find_element(By.ID, "upload-status").text)
        driver.find_element(By.ID, "question").send_keys("How often should I clean the filter?",
                                                         Keys.ENTER)
        wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#sources .page-link"))
        link = next(a for a in driver.find_elements(By.CSS_SELECTOR, "#sources .page-link")
                    if a.text == "open page 2")  # the label, not the PDF's page number 3
        link.click()
        img = wait_for(driver, lambda d: d.find_element(By.ID, "page-img") if d.execute_script(
            "const i = document.getElementById('page-img');"
            "return i.complete && i.naturalWidth > 0") else None)
        hls = driver.find_elements(By.CSS_SELECTOR, "#page-box .hl.cited")
        caption = driver.find_element(By.ID, "page-caption").text
        assert hls and "Page 2 (PDF page 3) of 4" in caption
        alt = img.get_attribute("alt")
        assert alt.startswith("Page 2 of ") and "pump-manual.pdf, with the cited" in alt
        shot = tmp_path / "page.png"
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", hls[0])
        driver.save_screenshot(str(shot))
        if os.environ.get("RAG_SCREENSHOT_PDF"):
            shutil.copy(shot, os.environ["RAG_SCREENSHOT_PDF"])
        # on the screenshot, the highlight is yellow paper with dark letters under it
        ratio = driver.execute_script("return window.devicePixelRatio") or 1
        r = driver.execute_script("const b = arguments[0].getBoundingClientRect();"
                                  "return [b.left, b.top, b.right, b.bottom]", hls[0])
        raw = Image.open(shot).convert("RGB").crop(tuple(int(v * ratio) for v in r)).tobytes()
        pixels = [tuple(raw[i:i + 3]) for i in range(0, len(raw), 3)]
        yellow = sum(1 for (red, green, blue) in pixels
                     if red > 220 and green > 200 and blue < green - 50)
        dark = sum(1 for (red, green, blue) in pixels if red + green + blue < 250)
        assert yellow > 0.3 * len(pixels) and dark > 0.02 * len(pixels), (yellow, dark)
