"""The example panel that mixes a local small critic with a served big one, judged against a
scripted OpenAI-compatible server on loopback (stdlib http.server, log-prob answers)."""

from __future__ import annotations

import json
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from oversight.backends import OpenAIBackend, TransformersBackend, backend_spec
from oversight.cli._panelfile import load_panel
from oversight.errors import PanelFileError

PANEL = Path(__file__).resolve().parent.parent / "panels" / "mixed_local_and_served.py"
LP_A, LP_B = -0.2, -1.9  # the served model's log-probs for "A" and "B"


class ScriptedOpenAI(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.models.append(body["model"])  # type: ignore[attr-defined]
        top = [{"token": "A", "logprob": LP_A}, {"token": "B", "logprob": LP_B}]
        out = {"choices": [{"index": 0, "finish_reason": "length",
                            "message": {"role": "assistant", "content": "A"},
                            "logprobs": {"content": [{"token": "A", "logprob": LP_A,
                                                      "top_logprobs": top}]}}],
               "usage": {"prompt_tokens": 100, "completion_tokens": 1}}
        data = json.dumps(out).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def served():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), ScriptedOpenAI)
    httpd.models = []  # type: ignore[attr-defined]
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd
    httpd.shutdown()


def test_unset_server_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("OVERSIGHT_SERVED_URL", raising=False)
    monkeypatch.setenv("OVERSIGHT_SERVED_MODEL", "big")
    with pytest.raises(PanelFileError, match="set OVERSIGHT_SERVED_URL:"):
        load_panel(PANEL)


def test_mixed_panel_judges_with_local_and_served_critics(monkeypatch, served, tiny_llama,
                                                          tmp_path, pairs):
    model, tok = tiny_llama
    model.save_pretrained(tmp_path / "tiny")
    tok.save_pretrained(tmp_path / "tiny")
    monkeypatch.setenv("OVERSIGHT_SMALL_MODEL", str(tmp_path / "tiny"))
    monkeypatch.setenv("OVERSIGHT_SERVED_URL", f"http://127.0.0.1:{served.server_port}/v1")
    monkeypatch.setenv("OVERSIGHT_SERVED_MODEL", "meta-llama/Llama-3.1-70B-Instruct")
    panel = load_panel(PANEL)
    small, big = (c.backend for c in panel.critics)
    assert isinstance(small, TransformersBackend) and isinstance(big, OpenAIBackend)
    for b in (small, big):  # both can be rebuilt on a Ray actor
        assert backend_spec(b).build().fingerprint() == b.fingerprint()
    result = panel.judge(pairs)
    df = result.judgments
    assert (df["status"] == "ok").all()
    served_rows = df[df["critic"] == "helpfulness_big"]
    n_principles = len(panel.critics[1].constitution)
    assert len(served_rows) == len(pairs) * n_principles * 2
    assert len(served.models) == len(served_rows)
    assert set(served.models) == {"meta-llama/Llama-3.1-70B-Instruct"}
    want = math.exp(LP_A) / (math.exp(LP_A) + math.exp(LP_B))
    assert all(math.isclose(v, want, abs_tol=1e-6) for v in served_rows["value"])
    assert len(df[df["critic"] == "harmlessness_small"]) == len(pairs) * 1 * 2
