// The rag serve page: a conversation with the documents (follow-ups are read with the
// earlier turns, which stay on the page with their sources), the sources, why, documents.
// No build step, nothing loaded from elsewhere. Text from the server is only ever set as
// text, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const PAGE = 20;
let offset = 0;
let lastAnswer = null;
let turns = [];  // the conversation so far, as /v1/ask takes it: [{question, answer}]
const SENT_TURNS = 20;  // the latest turns sent with a question (the server reads the last few)

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

// The server's per-process token, in this page's HTML: a page on another origin cannot read
// it, so a request that carries it comes from this page (rag/serve/security.py).
const TOKEN = document.querySelector('meta[name="rag-token"]').content;

// What every request of this page carries: the token, and the key if the user gave one.
function proof() {
  const headers = { "X-RAG-Token": TOKEN };
  const key = sessionStorage.getItem("rag-key");
  if (key) headers["Authorization"] = "Bearer " + key;
  return headers;
}

async function api(method, path, body) {
  const headers = proof();
  let payload;
  if (body instanceof FormData) payload = body;
  else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const r = await fetch(path, { method, headers, body: payload });
  let data = null;
  try { data = await r.json(); } catch (e) { data = null; }
  if (r.status === 401) $("key-box").hidden = false;
  if (!r.ok) throw new Error((data && data.error && (data.error.message || data.error)) ||
                             ("HTTP " + r.status));
  return data;
}

function status(id, message, isError = false) {
  const node = $(id);
  node.textContent = message;
  node.classList.toggle("error", isError);
}

function pct(x) { return x === null || x === undefined ? "–" : (100 * x).toFixed(0) + "%"; }

function bar(value, max, cls, label) {
  const width = max > 0 ? Math.max(2, Math.round(80 * (value || 0) / max)) : 2;
  return el("span", { class: "bar " + cls, style: "width:" + width + "px", role: "img",
                      "aria-label": label, title: label });
}

// A passage's text with characters [a, b) marked.
function marked(text, a, b, markId) {
  const box = el("div", { class: "passage" });
  if (a === null || a === undefined || a < 0 || b > text.length || a >= b) {
    box.textContent = text;
    return box;
  }
  const mark = el("mark", { text: text.slice(a, b) });
  if (markId) mark.id = markId;
  box.append(text.slice(0, a), mark, text.slice(b));
  return box;
}

function docLink(c, label) {
  const start = c.answer_start !== null ? c.answer_start : c.start;
  const end = c.answer_end !== null ? c.answer_end : c.end;
  const a = el("a", { href: "#doc=" + encodeURIComponent(c.doc_id) + "&start=" + start +
                            "&end=" + end, text: label });
  return a;
}

// Where the short span stands in the context sentence: from the citation's exact offsets.
function shortIn(ans) {
  const c = (ans.citations || []).find((x) => x.short_start !== null && x.context_start !== null);
  if (c) {
    const at = c.short_start - c.context_start;
    if (ans.context.slice(at, at + ans.short.length) === ans.short) return at;
  }
  return ans.context.indexOf(ans.short);
}

// ``text`` with ``part`` in bold (its first occurrence, or where ``at`` says).
function withBold(node, text, part, at) {
  if (at === undefined) at = part ? text.indexOf(part) : -1;
  if (at < 0) { node.textContent = text; return; }
  node.replaceChildren(text.slice(0, at), el("strong", { text: part }),
                       text.slice(at + part.length));
}

// The answer in its form: a factoid's short span, then the sentence it stands in with the
// span in bold (as a featured snippet); sentences, steps and code whole, their line breaks
// kept (code in monospace).
function renderForm(ans) {
  const answer = $("answer");
  const context = $("answer-context");
  const form = ans.abstained || ans.kind === "evidence" ? "" : (ans.form || "");
  answer.className = "answer" + (form ? " form-" + form : "");
  context.hidden = true;
  context.replaceChildren();
  if (ans.abstained) {
    answer.textContent = "Not found in the knowledge base.";
  } else if (form && form !== "span" && ans.short && ans.short !== ans.answer) {
    withBold(answer, ans.answer, ans.short);
  } else {
    answer.textContent = ans.answer;
  }
  if (form === "span" && ans.context && ans.short && ans.context.trim() !== ans.answer.trim()) {
    withBold(context, ans.context, ans.short, shortIn(ans));
    context.hidden = false;
  }
}

// The answer shown now becomes an earlier turn: a copy, its sources kept, "why" left out.
function archiveAnswer() {
  if (!lastAnswer) return;
  const copy = $("answer-section").cloneNode(true);
  copy.querySelector("#why").remove();
  copy.querySelector("#answer-heading").remove();
  for (const node of [copy, ...copy.querySelectorAll("[id]")]) node.removeAttribute("id");
  const item = el("li", { class: "turn" });
  item.append(...copy.childNodes);
  $("turns").append(item);
  $("conversation").hidden = false;
}

function newConversation() {
  turns = [];
  lastAnswer = null;
  $("turns").replaceChildren();
  $("conversation").hidden = true;
  $("answer-section").hidden = true;
  $("new-conversation").hidden = true;
  status("status", "New conversation: the next question stands alone.");
  $("question").value = "";
  $("question").focus();
}

// A PDF citation opens its page: the passage (and the answer) highlighted on the page image.
function pageLink(c) {
  let href = "#doc=" + encodeURIComponent(c.doc_id) + "&page=" + c.page + "&start=" + c.start +
             "&end=" + c.end;
  if (c.answer_start !== null) href += "&astart=" + c.answer_start + "&aend=" + c.answer_end;
  return el("a", { href, class: "page-link", text: "open page " + (c.page_label || c.page) });
}

function pageText(c) {
  if (!c.page) return "";
  const label = c.page_label || String(c.page);
  return " p." + label + (label !== String(c.page) ? " (PDF page " + c.page + ")" : "");
}

function renderAnswer(ans) {
  archiveAnswer();
  lastAnswer = ans;
  $("answer-section").hidden = false;
  $("answer-question").textContent = ans.question;
  $("asked-as").hidden = !ans.rewritten;
  $("asked-as").textContent = ans.rewritten ? "asked as: " + ans.rewritten : "";
  renderForm(ans);
  const answer = $("answer");
  answer.classList.toggle("abstained", ans.abstained);
  const evidence = ans.kind === "evidence";
  answer.classList.toggle("evidence", evidence);
  $("answer-note").hidden = !evidence;
  $("answer-note").textContent = evidence ?
    "Evidence, not an answer: " + ans.note.split(": ")[0] + ". Quoted from the top passage." : "";
  const total = Object.entries(ans.timings || {})
    .filter(([k]) => k === "retrieval_ms" || k === "reader_ms")
    .reduce((s, [, v]) => s + v, 0);
  $("answer-meta").textContent = (ans.abstained ? "The closest passages are below. " : "") +
    "Confidence " + pct(ans.confidence) + " · similarity " +
    (ans.similarity === null ? "–" : ans.similarity.toFixed(2)) + " · " + total.toFixed(0) + " ms";

  const cites = ans.citations || [];
  const maxRet = Math.max(0, ...cites.map((c) => c.retrieval_score || 0));
  const maxAtt = Math.max(0, ...cites.map((c) => c.attention_score || 0));
  const sources = $("sources");
  sources.replaceChildren();
  cites.forEach((c, i) => {
    const page = pageText(c) + (c.heading ? " · " + c.heading : "");
    const cited = c.answer_start !== null;
    const head = el("div", { class: "meta" },
      el("strong", { text: c.doc_id + page }), " ",
      "retrieval", bar(c.retrieval_score, maxRet, "retrieval",
                       "retrieval score " + (c.retrieval_score || 0).toFixed(3)), " ",
      "reader", bar(c.attention_score, maxAtt, "attention",
                    "reader weight " + pct(c.attention_score)), " ",
      docLink(c, "open document"), c.page ? " · " : "", c.page ? pageLink(c) : "");
    const text = marked(c.text, cited ? c.answer_start - c.start : null,
                        cited ? c.answer_end - c.start : null, cited ? "answer-mark" : null);
    sources.append(el("li", { class: cited ? "source cited" : "source" }, head, text));
  });

  const why = $("why-passages");
  why.replaceChildren();
  cites.forEach((c) => {
    why.append(el("li", {}, c.doc_id + " ", bar(c.attention_score, 1, "attention",
      "reader weight " + pct(c.attention_score)), " " + pct(c.attention_score)));
  });
  renderHeat(ans, cites);
}

function renderHeat(ans, cites) {
  const heat = $("heat");
  heat.replaceChildren();
  const ex = ans.explanation;
  const c = ex ? cites.find((x) => x.chunk_id === ex.chunk_id) : null;
  if (!ex || !c || !ex.tokens.length) {
    heat.textContent = "This reader gives no token-level explanation.";
    return;
  }
  const maxS = Math.max(...ex.tokens.map((t) => t[2])) || 1;
  const maxE = Math.max(...ex.tokens.map((t) => t[3])) || 1;
  let at = 0;
  heat.append(el("p", { class: "meta", text: "In " + c.doc_id + ":" }));
  for (const [a, b, ps, pe] of ex.tokens) {
    if (a < at || b > c.text.length) continue;
    if (a > at) heat.append(c.text.slice(at, a));
    const s = ps / maxS, e = pe / maxE;
    const span = el("span", { text: c.text.slice(a, b),
      title: "start " + (100 * ps).toFixed(1) + "% · end " + (100 * pe).toFixed(1) + "%" });
    span.style.background = "rgba(220,40,40," + (0.75 * s).toFixed(3) + ")";
    span.style.boxShadow = "inset 0 -4px rgba(40,80,220," + e.toFixed(3) + ")";
    if (s > 0.5) span.dataset.start = "1";
    if (e > 0.5) span.dataset.end = "1";
    heat.append(span);
    at = b;
  }
  if (at < c.text.length) heat.append(c.text.slice(at));
}

async function ask(event) {
  event.preventDefault();
  const question = $("question").value.trim();
  if (!question) return;
  $("ask-button").disabled = true;
  status("status", "Reading…");
  try {
    const ans = await api("POST", "/v1/ask", { question, history: turns.slice(-SENT_TURNS) });
    renderAnswer(ans);
    // what a follow-up sees: the question as understood, and what was told (as `rag ask`)
    turns.push({ question: ans.rewritten || ans.question,
                 answer: ans.abstained ? null : (ans.short || ans.answer) });
    $("new-conversation").hidden = false;
    $("question").value = "";
    status("status", "");
  } catch (err) {
    status("status", err.message, true);
  } finally {
    $("ask-button").disabled = false;
  }
}

async function openPage(docId, page, start, end, astart, aend) {
  const q = new URLSearchParams({ doc: docId, n: page });
  if (Number.isFinite(start) && Number.isFinite(end)) { q.set("start", start); q.set("end", end); }
  if (Number.isFinite(astart) && Number.isFinite(aend)) {
    q.set("answer_start", astart); q.set("answer_end", aend);
  }
  let view;
  try {
    view = await api("GET", "/v1/page?" + q);
  } catch (err) {  // not a PDF page (or an index from before pages were kept): the text
    return openDocument(docId, Number.isFinite(astart) ? astart : start,
                        Number.isFinite(aend) ? aend : end);
  }
  // fetched, not an <img src>: an image request could not carry the proof
  const r = await fetch("/v1/page.png?" + new URLSearchParams({ doc: docId, n: page }),
                        { headers: proof() });
  if (!r.ok) {
    status("status", "The page cannot be shown: HTTP " + r.status, true);
    return openDocument(docId, start, end);
  }
  const img = $("page-img");
  if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
  img.src = URL.createObjectURL(await r.blob());
  img.alt = "Page " + view.label + " of " + docId + ", with the cited passage highlighted";
  const box = $("page-box");
  box.querySelectorAll(".hl").forEach((n) => n.remove());
  const first = [];
  for (const [name, rects] of Object.entries(view.boxes)) {
    for (const [x0, top, x1, bottom] of rects) {
      const hl = el("div", { class: "hl " + name, title: name === "answer" ? "the answer"
                                                                        : "the cited passage" });
      hl.style.left = (100 * x0 / view.width) + "%";
      hl.style.top = (100 * top / view.height) + "%";
      hl.style.width = (100 * (x1 - x0) / view.width) + "%";
      hl.style.height = (100 * (bottom - top) / view.height) + "%";
      box.append(hl);
      first.push(hl);
    }
  }
  $("doc-section").hidden = false;
  $("doc-heading").textContent = docId;
  $("doc-meta").textContent = "";
  $("doc-text").hidden = true;
  $("doc-page").hidden = false;
  $("page-caption").textContent = "Page " + view.label + (view.label !== String(page) ?
    " (PDF page " + page + ")" : "") + " of " + view.pages + " · the cited passage is " +
    "highlighted" + (view.boxes.answer && view.boxes.answer.length ? ", the answer in orange"
                                                                   : "");
  await new Promise((resolve) => { if (img.complete) resolve(); else img.onload = resolve; });
  if (first.length) first[0].scrollIntoView({ block: "center" });
}

async function openDocument(docId, start, end) {
  try {
    const doc = await api("GET", "/v1/documents/" + encodeURIComponent(docId));
    $("doc-section").hidden = false;
    $("doc-text").hidden = false;
    $("doc-page").hidden = true;
    $("doc-heading").textContent = doc.title || doc.doc_id;
    $("doc-meta").textContent = doc.source + " · " + doc.chunks.length + " chunks";
    const box = $("doc-text");
    const a = Number.isFinite(start) ? start : null;
    const b = Number.isFinite(end) ? end : null;
    box.replaceChildren(...marked(doc.text, a, b, "doc-mark").childNodes);
    const mark = $("doc-mark");
    if (mark) mark.scrollIntoView({ block: "center" });
    box.focus();
  } catch (err) {
    status("status", err.message, true);
  }
}

function route() {
  const params = new URLSearchParams(location.hash.slice(1));
  const num = (name) => parseInt(params.get(name), 10);
  if (params.has("doc") && params.has("page")) {
    openPage(params.get("doc"), num("page"), num("start"), num("end"), num("astart"),
             num("aend"));
  } else if (params.has("doc")) {
    openDocument(params.get("doc"), num("start"), num("end"));
  }
}

async function loadDocuments() {
  try {
    const data = await api("GET", "/v1/documents?limit=" + PAGE + "&offset=" + offset);
    const list = $("documents");
    list.replaceChildren();
    for (const d of data.documents) {
      const open = el("a", { href: "#doc=" + encodeURIComponent(d.doc_id), text: d.doc_id });
      const del = el("button", { type: "button", class: "secondary",
                                 "aria-label": "delete " + d.doc_id, text: "Delete" });
      del.addEventListener("click", () => removeDocument(d.doc_id, del));
      list.append(el("li", {}, el("span", {}, open, " ",
        el("span", { class: "meta", text: d.chunks + " chunks" })), del));
    }
    const last = Math.min(data.total, offset + data.documents.length);
    $("page-info").textContent = data.total ? (offset + 1) + "–" + last + " of " + data.total
                                            : "no documents yet";
    $("prev").disabled = offset === 0;
    $("next").disabled = last >= data.total;
    const stats = await api("GET", "/v1/stats");
    $("kb-info").textContent = stats.documents + " documents · " + stats.chunks + " chunks · " +
      (stats.reader ? "reader: " + String(stats.reader.name || stats.reader.kind).split("/").pop()
                   : "no reader");
  } catch (err) {
    status("upload-status", err.message, true);
  }
}

async function removeDocument(docId, button) {
  if (button.dataset.armed !== "1") {  // a second press confirms
    button.dataset.armed = "1";
    button.textContent = "Confirm delete";
    return;
  }
  try {
    await api("DELETE", "/v1/documents/" + encodeURIComponent(docId));
    status("upload-status", "Deleted " + docId);
    await loadDocuments();
  } catch (err) {
    status("upload-status", err.message, true);
  }
}

async function upload(files) {
  if (!files.length) return;
  const form = new FormData();
  for (const f of files) form.append("files", f, f.name);
  status("upload-status", "Indexing " + files.length + " file(s)…");
  try {
    const r = await api("POST", "/v1/documents", form);
    let message = "Indexed: " + (r.added + r.updated) + " new or changed, " + r.unchanged +
                  " unchanged.";
    if (r.skipped.length) {
      message += " Skipped: " + r.skipped.map((s) => s.file + " (" + s.reason + ")").join("; ");
    }
    status("upload-status", message, r.skipped.length > 0);
    await loadDocuments();
  } catch (err) {
    status("upload-status", err.message, true);
  }
}

function setup() {
  $("ask-form").addEventListener("submit", ask);
  $("new-conversation").addEventListener("click", newConversation);
  $("key-button").addEventListener("click", () => {
    sessionStorage.setItem("rag-key", $("api-key").value);
    $("key-box").hidden = true;
    loadDocuments();
  });
  $("doc-close").addEventListener("click", () => {
    $("doc-section").hidden = true;
    history.replaceState(null, "", location.pathname);
    $("question").focus();
  });
  const drop = $("drop");
  const input = $("file-input");
  drop.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); }
  });
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    upload([...e.dataTransfer.files]);
  });
  input.addEventListener("change", () => { upload([...input.files]); input.value = ""; });
  $("prev").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); loadDocuments(); });
  $("next").addEventListener("click", () => { offset += PAGE; loadDocuments(); });
  window.addEventListener("hashchange", route);
  loadDocuments();
  route();
}

setup();
