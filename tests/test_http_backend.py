"""The OpenAI-compatible HTTP backend against real servers on loopback.

* `oversight serve` (FastAPI + uvicorn) over a tiny random Llama: log-prob verdicts must equal
  the in-process transformers backend's, and the official `openai` client must parse it.
* A scripted fault server (stdlib http.server): 429, 500, timeouts, connection resets and
  malformed JSON, to check retries, backoff and `error` results.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from oversight import Critic, Panel
from oversight.backends import ChoiceRequest, OpenAIBackend, TransformersBackend
from oversight.constitution import builtin

VOCAB = 49152


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory, tiny_llama):
    model, tok = tiny_llama
    path = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def server(tiny_model_dir):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "oversight.cli", "serve", "--model",
                             str(tiny_model_dir), "--port", str(port), "--max-logprobs",
                             str(VOCAB)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    else:
        proc.kill()
        raise RuntimeError(proc.stdout.read().decode()[-2000:])
    yield f"{url}/v1"
    proc.terminate()
    proc.wait(timeout=10)


def test_logprob_verdicts_equal_in_process_backend(server, tiny_model_dir, pairs):
    remote = OpenAIBackend(str(tiny_model_dir), server, top_logprobs=VOCAB)
    local = TransformersBackend(str(tiny_model_dir))
    critic = Critic(builtin("harmlessness"), local, principles=2)
    tasks = critic.tasks(pairs)
    reqs = critic.prepare(tasks).requests
    got = remote.score_choices(reqs)
    want = local.score_choices(reqs)
    for g, w in zip(got, want):
        assert g.error is None and g.logprobs is not None
        assert max(abs(a - b) for a, b in zip(g.logprobs, w.logprobs)) < 1e-4
    assert remote.usage.requests == len(reqs) and remote.usage.prompt_tokens > 0
    assert remote.usage.failures == 0


def test_official_openai_client_parses_the_server(server, tiny_model_dir):
    from openai import OpenAI

    client = OpenAI(base_url=server, api_key="unused")
    resp = client.chat.completions.create(model=str(tiny_model_dir), max_tokens=1,
                                          messages=[{"role": "user", "content": "A or B?"}],
                                          logprobs=True, top_logprobs=5)
    top = resp.choices[0].logprobs.content[0].top_logprobs
    assert len(top) == 5 and top[0].logprob >= top[-1].logprob
    assert resp.usage.completion_tokens == 1


def _text_verdicts_follow_the_answers(critic, remote, items):
    """Judge through the text path and require each verdict to be the parse of the answer
    text the server returned (status, value, reason, raw), not merely 'ok or abstain'."""
    from oversight.critics._critic import _value
    from oversight.critics._parse import parse_choice

    prepared = critic.prepare(critic.tasks(items))
    results = remote.score_choices(prepared.requests)
    js = critic.finish(prepared, results)
    assert len(js) == len(results) == 2 * len(items)
    for j, res, req in zip(js, results, prepared.requests):
        assert res.error is None and res.logprobs is None and res.text is not None
        choices = [c.strip() for c in req.choices]
        picked, reason = parse_choice(res.text, choices, truncated=res.truncated)
        assert j.raw == res.text
        if picked is None:
            assert (j.status, j.value, j.reason) == ("abstain", None, reason)
        else:
            onehot = [1.0 if c == picked else 0.0 for c in choices]
            assert (j.status, j.value) == ("ok", _value(critic.mode, onehot))
    return js


def test_text_path_verdicts_are_the_parsed_answers(server, tiny_model_dir, pairs):
    remote = OpenAIBackend(str(tiny_model_dir), server, logprobs=False, answer_tokens=3)
    critic = Critic(builtin("honesty"), remote, principles=1)
    js = _text_verdicts_follow_the_answers(critic, remote, pairs[:2])
    # The server's answers are the in-process backend's greedy generations, token for token.
    local = TransformersBackend(str(tiny_model_dir))
    prompts = [r.prompt for r in critic.prepare(critic.tasks(pairs[:2])).requests]
    assert [j.raw for j in js] == [local.generate([p], max_new_tokens=3)[0].text
                                   for p in prompts]


@pytest.mark.parametrize(("answer", "status", "value"), [
    ("B", "ok", 0.0), ("Answer: A", "ok", 1.0), ("The answer is B.", "ok", 0.0),
    ("A B", "abstain", None), ("", "abstain", None), ("I cannot say", "abstain", None)])
def test_text_answers_without_logprobs_give_the_expected_verdicts(answer, status, value,
                                                                    pairs):
    srv = FaultServer([f"text:{answer}"] * 2)
    try:
        remote = OpenAIBackend("m", srv.url, logprobs=False, concurrency=1)
        critic = Critic(builtin("honesty"), remote, principles=1)
        js = _text_verdicts_follow_the_answers(critic, remote, pairs[:1])
        assert [(j.status, j.value) for j in js] == [(status, value)] * 2
    finally:
        srv.close()


# -- faults -----------------------------------------------------------------------------
_TOP = [{"token": "A", "logprob": math.log(0.7)}, {"token": "B", "logprob": math.log(0.2)}]
OK_BODY = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "A"},
                        "logprobs": {"content": [{"token": "A", "logprob": math.log(0.7),
                                                  "top_logprobs": _TOP}]}}],
           "usage": {"prompt_tokens": 10, "completion_tokens": 1}}


class FaultServer:
    """Answers each request with the next scripted fault, then with OK_BODY."""

    def __init__(self, script: list[str]):
        self.script = list(script)
        self.lock = threading.Lock()
        self.seen_auth: list[str | None] = []
        parent = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("content-length", 0)))
                parent.seen_auth.append(self.headers.get("authorization"))
                with parent.lock:
                    action = parent.script.pop(0) if parent.script else "ok"
                if action == "reset":
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.connection.close()
                    return
                if action == "timeout":
                    time.sleep(1.5)
                if action.startswith("text:"):  # a server that answers in text, no logprobs
                    text_body = {"choices": [{"index": 0, "finish_reason": "stop", "message": {
                        "role": "assistant", "content": action[5:]}}],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 2}}
                    action = "text"
                code, body = {"429": (429, b'{"error": "rate limited"}'),
                              "500": (500, b'{"error": "boom"}'),
                              "garbage": (200, b'{"choices": [ not json'),
                              "400": (400, b'{"error": "bad request"}'),
                              }.get(action, (200, json.dumps(
                                  text_body if action == "text" else OK_BODY).encode()))
                self.send_response(code)
                self.send_header("content-type", "application/json")
                if action == "429":
                    self.send_header("retry-after", "0")
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self):
        self.httpd.shutdown()


def one_request():
    from oversight.backends import ChatPrompt

    return [ChoiceRequest(ChatPrompt(({"role": "user", "content": "x"},)), ("A", "B"))]


@pytest.mark.parametrize("fault", ["429", "500", "timeout", "reset", "garbage"])
def test_transient_faults_are_retried(fault):
    srv = FaultServer([fault, fault])
    try:
        b = OpenAIBackend("m", srv.url, concurrency=1, timeout_s=0.5, backoff_s=0.01,
                          max_retries=3)
        (res,) = b.score_choices(one_request())
        assert res.error is None and math.isclose(math.exp(res.logprobs[0]), 0.7)
        assert b.usage.retries == 2 and b.usage.failures == 0
    finally:
        srv.close()


def test_persistent_fault_becomes_error_and_rerun_retries_only_failures(pairs, tmp_path):
    srv = FaultServer(["500"] * 16)  # 4 requests x 4 tries: every request fails
    try:
        b = OpenAIBackend("m", srv.url, concurrency=2, backoff_s=0.01, max_retries=3)
        panel = Panel([Critic(builtin("harmlessness"), b, principles=1)])
        first = panel.judge(pairs[:2], store=tmp_path / "run")
        assert first.status_counts() == {"error": 4}
        assert all("failed after 4 tries: HTTP 500" in j.reason for j in first.judgment_rows)
        assert b.usage.failures == 4 and b.usage.retries == 12
        second = panel.judge(pairs, store=tmp_path / "run")  # server healthy now
        assert second.status_counts() == {"ok": 6}
        assert b.usage.requests == 4 + 6  # the 4 failed keys and the 2 new ones, nothing else
    finally:
        srv.close()


def test_client_errors_are_not_retried():
    srv = FaultServer(["400"])
    try:
        b = OpenAIBackend("m", srv.url, backoff_s=0.01, max_retries=3)
        (res,) = b.score_choices(one_request())
        assert res.error.startswith("HTTP 400") and b.usage.retries == 0
    finally:
        srv.close()


def test_api_key_comes_from_env_and_is_never_recorded(tmp_path, pairs, monkeypatch):
    secret = "sk-test-very-secret-123"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    srv = FaultServer([])
    try:
        b = OpenAIBackend("m", srv.url)
        critic = Critic(builtin("harmlessness"), b, principles=1)
        Panel([critic]).judge(pairs[:1], store=tmp_path / "run")
        assert srv.seen_auth[0] == f"Bearer {secret}"
        blob = b"".join(p.read_bytes() for p in (tmp_path / "run").iterdir())
        assert secret.encode() not in blob
        assert secret not in repr(b) and secret not in critic.fingerprint
        assert secret not in json.dumps(critic.config())
    finally:
        srv.close()
    assert os.environ["OPENAI_API_KEY"] == secret


@pytest.fixture(scope="module")
def transformers_server(tiny_model_dir):
    """Hugging Face's own `transformers serve`: a third-party server that ignores logprobs."""
    import httpx

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "transformers.cli.transformers", "serve",
                             str(tiny_model_dir), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://localhost:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
        if proc.poll() is not None:
            pytest.skip(f"transformers serve did not start: {proc.stdout.read()[-500:]!r}")
    else:
        proc.kill()
        pytest.skip("transformers serve did not start in 120 s")
    yield f"{url}/v1"
    proc.terminate()
    proc.wait(timeout=10)


def test_third_party_server_without_logprobs_falls_back_to_text(transformers_server,
                                                                 tiny_model_dir, pairs):
    remote = OpenAIBackend(str(tiny_model_dir), transformers_server, answer_tokens=1)
    (res,) = remote.score_choices(one_request())
    assert res.error is None and res.logprobs is None and res.text is not None
    _text_verdicts_follow_the_answers(Critic(builtin("honesty"), remote, principles=1),
                                      remote, pairs[:1])
    assert remote.usage.requests == 3 and remote.usage.completion_tokens >= 1
