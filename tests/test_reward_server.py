"""The panel as a remote reward model: a real uvicorn server on loopback speaking OpenRLHF's
`--remote_rm_url` protocol, called with a real HTTP client (httpx, as OpenRLHF's aiohttp
would: POST {"query", "prompts", "labels"} -> {"rewards", "scores", "extra_logs"}), and the
veRL `compute_score` hook against the same server."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest
from conftest import scripted_pairwise

from oversight import Critic, FunctionBackend, Panel
from oversight.constitution import builtin
from oversight.serve import create_reward_app, prompt_messages, split_query, verl_reward

CHATML_PROMPT = ("<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\n"
                 "Say hi<|im_end|>\n<|im_start|>assistant\n")


def test_split_query_and_chat_template_parsing():
    prompt, response = split_query(CHATML_PROMPT + "Hello!<|im_end|>\n<|endoftext|>",
                                   CHATML_PROMPT)
    assert response == "Hello!"
    assert prompt_messages(prompt) == [{"role": "system", "content": "You are helpful."},
                                       {"role": "user", "content": "Say hi"}]
    assert prompt_messages("plain question") == [{"role": "user", "content": "plain question"}]
    with pytest.raises(ValueError, match="does not contain"):
        split_query("something else", CHATML_PROMPT)


@pytest.fixture(scope="module")
def server():
    import uvicorn

    panel = Panel([Critic(builtin("helpfulness"), FunctionBackend(scripted_pairwise,
                                                                  name="short"),
                          name="short", principles=["clear-and-concise"])])
    app = create_reward_app(panel, baseline_from_labels=True, abstain_reward=-1.0)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    yield url
    srv.should_exit = True
    thread.join(timeout=5)


def test_openrlhf_request_gets_rewards_scores_and_logs(server):
    short, long = "Hi!", "Hello there, my dear friend, how are you?"
    payload = {"query": [CHATML_PROMPT + short + "<|im_end|>",
                         CHATML_PROMPT + long + "<|im_end|>",
                         "Lonely prompt" + " reply"],
               "prompts": [CHATML_PROMPT, CHATML_PROMPT, "Lonely prompt"],
               "labels": [None, None, None]}
    body = httpx.post(f"{server}/get_reward", json=payload, timeout=30).json()
    assert body["rewards"] == body["scores"]
    # The two answers to one prompt are compared: shorter 0.75, longer 0.25.
    assert body["rewards"][0] == pytest.approx(0.75)
    assert body["rewards"][1] == pytest.approx(0.25)
    # A lone answer with no label as baseline: the pairwise panel abstains.
    assert body["rewards"][2] == -1.0 and body["extra_logs"]["abstained"] == [0.0, 0.0, 1.0]
    assert body["extra_logs"]["critic_short"][0] == pytest.approx(0.75)


def test_labels_as_baselines_and_bad_requests(server):
    body = httpx.post(f"{server}/get_reward", timeout=30, json={
        "query": ["Q? ok"], "prompts": ["Q?"],
        "labels": ["a much longer reference answer"]}).json()
    assert body["rewards"][0] == pytest.approx(0.75)
    bad = httpx.post(f"{server}/get_reward", timeout=30,
                     json={"query": ["x"], "prompts": ["other"]})
    assert bad.status_code == 422 and "query 0" in bad.text
    short = httpx.post(f"{server}/get_reward", timeout=30,
                       json={"query": ["a", "b"], "prompts": ["a"]})
    assert short.status_code == 422 and "prompts" in short.text


def test_verl_compute_score_hook(server):
    url = f"{server}/get_reward"
    one = verl_reward.compute_score("hh", " ok", "a much longer reference answer",
                                    extra_info={"prompt": "Q?"}, url=url)
    assert one == pytest.approx(0.75)
    many = verl_reward.compute_score_batch(["hh", "hh"], [" yes", " yes and more words"],
                                           [None, None], [{"prompt": "Z?"}] * 2, url=url)
    assert many == [pytest.approx(0.75), pytest.approx(0.25)]
    with pytest.raises(ValueError, match="extra_info"):
        verl_reward.compute_score("hh", "x", None, extra_info={}, url=url)
