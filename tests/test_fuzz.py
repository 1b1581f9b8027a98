"""The whole API fuzzed from its own OpenAPI schema by schemathesis (property-based: valid
and invalid bodies, parameters, headers and file uploads): not one server error. CI runs a
few examples per operation (a few hundred requests); eval/fuzz_serve.py runs thousands
against a real `rag serve` with the packaged models (eval/RESULTS.md)."""
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from conftest import FakeEmbedder
from knowledge import KnowledgeBase, sync
from rag.serve.app import create_app
from serving import running

ST = Path(sys.executable).parent / "st"
pytestmark = pytest.mark.skipif(not ST.exists(), reason="needs schemathesis (the test extra)")


@pytest.mark.parametrize("keys", [{}, {"key": "w" * 20, "read_key": "r" * 20}],
                         ids=["loopback", "keys"])
def test_fuzzing_the_api_finds_no_server_error(animals, tmp_path, keys):
    sync(tmp_path / "kb", [animals], embedder=FakeEmbedder(), log=lambda m: None)
    kb = KnowledgeBase.open(tmp_path / "kb", embedder=FakeEmbedder())
    app = create_app(tmp_path / "kb", kb, None, load_embedder=FakeEmbedder, **keys)
    auth = ["-H", f"Authorization: Bearer {keys['key']}"] if keys else []
    with running(app) as url:
        r = subprocess.run([str(ST), "run", f"{url}/openapi.json", *auth, "--checks",
                            "not_a_server_error", "-n", "5", "--seed", "24", "--no-color",
                            "--report", "json", "--report-json-path", str(tmp_path / "st.json"),
                            "--request-timeout", "60"],
                           capture_output=True, text=True, timeout=600, cwd=tmp_path)
        stats = httpx.get(f"{url}/v1/stats", headers={"X-API-Key": keys.get("key", "")}).json()
    report = json.loads((tmp_path / "st.json").read_text())
    assert r.returncode == 0, r.stdout[-3000:]
    assert report["test_cases"]["generated"] >= 150 and not report["failures"], report
    assert sum(s["requests"] for s in stats["requests"].values()) >= 150
    assert not any(s["server_errors"] for s in stats["requests"].values()), stats["requests"]
