"""Security defaults: remote code only on an explicit flag, nothing unpickled, API keys only
from the environment and never in the store, logs or reports, and the CLI's warning."""

from __future__ import annotations

import ast
import json
import math
import os
import pickle
import sqlite3
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from oversight import JudgmentStore
from oversight.data import load_comparisons
from oversight.errors import DataError

PACKAGE = Path(__file__).resolve().parent.parent / "oversight"


# -- trust_remote_code -------------------------------------------------------------------
def test_trust_remote_code_reaches_transformers_only_when_asked(monkeypatch):
    import transformers

    from oversight import TransformersBackend

    seen: list[tuple[str, object]] = []

    class Fake:
        @classmethod
        def from_pretrained(cls, path, **kw):
            seen.append((cls.__name__, kw.get("trust_remote_code", "absent")))
            return _FakeModel()

    class FakeTok(Fake):
        pass

    class FakeModel(Fake):
        pass

    monkeypatch.setattr(transformers, "AutoTokenizer", FakeTok)
    monkeypatch.setattr(transformers, "AutoModelForCausalLM", FakeModel)
    TransformersBackend("some/model").load()
    assert seen == [("FakeTok", False), ("FakeModel", False)]
    seen.clear()
    TransformersBackend("some/model", trust_remote_code=True).load()
    assert seen == [("FakeTok", True), ("FakeModel", True)]


class _FakeModel:
    def to(self, device):
        return self

    def eval(self):
        return self


def test_vllm_backend_does_not_trust_remote_code_by_default():
    from oversight.backends import VLLMBackend

    assert VLLMBackend("some/model")._kwargs["trust_remote_code"] is False


def test_every_from_pretrained_call_passes_trust_remote_code_or_loads_a_local_gguf():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "from_pretrained":
                kws = {k.arg for k in node.keywords}
                if "trust_remote_code" not in kws and "gguf_file" not in kws:
                    offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
                for k in node.keywords:  # never a literal True
                    if k.arg == "trust_remote_code" and isinstance(k.value, ast.Constant):
                        assert k.value.value is False, f"{path}:{node.lineno}"
    assert not offenders, offenders


# -- nothing unpickled -------------------------------------------------------------------
UNPICKLERS = {"pickle", "cPickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}


def test_package_never_imports_an_unpickler_or_calls_one():
    found = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module.split(".")[0]]
            if UNPICKLERS & set(names):
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} imports {names}")
            if isinstance(node, ast.Call):
                attr = getattr(node.func, "attr", "")
                base = getattr(getattr(node.func, "value", None), "id", "")
                kws = {k.arg: k.value for k in node.keywords}
                if attr == "read_pickle" or (base == "torch" and attr == "load"
                                             and "weights_only" not in kws):
                    found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {base}.{attr}")
                if attr == "load" and isinstance(kws.get("allow_pickle"), ast.Constant) \
                        and kws["allow_pickle"].value:
                    found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} allow_pickle")
    assert not found, found


class _Payload:
    """Unpickling this creates a file: the canary for code run by an unpickler."""

    def __init__(self, canary: Path):
        self.canary = canary

    def __reduce__(self):
        return (Path.touch, (self.canary,))


def test_pickled_payloads_in_data_and_store_are_never_executed(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    canary = tmp_path / "pwned"
    blob = pickle.dumps(_Payload(canary))
    (tmp_path / "d.pkl").write_bytes(blob)
    with pytest.raises(DataError, match="unsupported file type '.pkl'"):
        load_comparisons(tmp_path / "d.pkl")
    pq.write_table(pa.table({"prompt": [blob], "response_a": ["a"], "response_b": ["b"]}),
                   tmp_path / "d.parquet")
    with pytest.raises(DataError, match="row 1: field 'prompt': expected a string, got bytes"):
        load_comparisons(tmp_path / "d.parquet")
    with JudgmentStore(tmp_path / "run") as db:
        pass
    with sqlite3.connect(tmp_path / "run" / "judgments.sqlite") as con:
        con.execute("INSERT INTO items VALUES ('x', ?)", (blob,))
        con.execute("INSERT INTO critics VALUES ('f', 'n', ?)", (blob,))
    with JudgmentStore(tmp_path / "run") as db:
        with pytest.raises((ValueError, TypeError)):  # json rejects it; nothing runs it
            db.items()
        with pytest.raises((ValueError, TypeError)):
            db.critics()
    assert not canary.exists()


# -- API keys ----------------------------------------------------------------------------
SECRET = "sk-test-DO-NOT-LEAK-4242"
_TOP = [{"token": "A", "logprob": math.log(0.6)}, {"token": "B", "logprob": math.log(0.4)}]
OK = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "A"},
                   "logprobs": {"content": [{"token": "A", "logprob": math.log(0.6),
                                             "top_logprobs": _TOP}]}}],
      "usage": {"prompt_tokens": 10, "completion_tokens": 1}}


class EchoingServer:
    """A careless proxy: its first two answers are 500s that echo the request's headers."""

    def __init__(self):
        self.auth: list[str | None] = []
        parent = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("content-length", 0)))
                parent.auth.append(self.headers.get("authorization"))
                if len(parent.auth) <= 2:
                    body = json.dumps({"error": "upstream refused authorization "
                                               f"{self.headers.get('authorization')}"})
                    self.send_response(500)
                else:
                    body = json.dumps(OK)
                    self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"


def test_api_key_never_reaches_store_logs_or_reports(tmp_path):
    srv = EchoingServer()
    try:
        (tmp_path / "panel.py").write_text(f'''
from oversight import Critic, Panel
from oversight.backends import OpenAIBackend
from oversight.constitution import builtin

backend = OpenAIBackend("remote-judge", {srv.url!r}, max_retries=0, concurrency=1)
panel = Panel([Critic(builtin("honesty"), backend, principles=1)])
''')
        (tmp_path / "d.jsonl").write_text(
            "".join(json.dumps({"prompt": f"q{i}", "chosen": "yes", "rejected": "no"}) + "\n"
                    for i in range(3)))
        env = {**os.environ, "OPENAI_API_KEY": SECRET}
        run = tmp_path / "run"
        outputs = []
        for args in (["judge", "--panel", str(tmp_path / "panel.py"), "--data",
                      str(tmp_path / "d.jsonl"), "--out", str(run), "--batch-size", "1"],
                     ["aggregate", str(run), "--out", str(tmp_path / "prefs.parquet")],
                     ["report", str(run)]):
            proc = subprocess.run([sys.executable, "-m", "oversight.cli", *args],
                                  capture_output=True, text=True, env=env, timeout=300)
            assert proc.returncode == 0, (args[0], proc.stdout[-2000:], proc.stderr[-2000:])
            outputs.append(proc.stdout + proc.stderr)
    finally:
        srv.httpd.shutdown()
    assert srv.auth[0] == f"Bearer {SECRET}"  # the key was read from the environment and sent
    with JudgmentStore(run) as db:
        errors = [j for j in db.judgments() if j.status == "error"]
    assert len(errors) == 2 and all("[redacted]" in j.reason for j in errors)  # echoed, cut
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {"judgments.sqlite", "judgments.parquet", "run.json", "report.html"} <= \
        {p.name for p in written}
    for p in written:
        assert SECRET.encode() not in p.read_bytes(), p
    for text in outputs:
        assert SECRET not in text


def test_api_key_is_not_a_constructor_argument():
    import inspect

    from oversight.backends import OpenAIBackend

    params = inspect.signature(OpenAIBackend).parameters
    assert "api_key" not in params and "api_key_env" in params


def test_cli_help_says_panel_files_run_code():
    proc = subprocess.run([sys.executable, "-m", "oversight.cli", "judge", "--help"],
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0
    assert "RUNS that file's code" in proc.stdout and "trust" in proc.stdout
