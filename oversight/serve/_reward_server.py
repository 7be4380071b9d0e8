"""A panel behind OpenRLHF's remote reward-model protocol, for PPO outside TRL.

OpenRLHF (`--remote_rm_url http://host:port/get_reward`, checked against
openrlhf/utils/agent.py `_fetch_rewards_via_http` and openrlhf/cli/serve_rm.py) POSTs

    {"query": [prompt + response, ...], "prompts": [prompt, ...], "labels": [label, ...]}

where each query is the decoded prompt and response tokens (special tokens kept) and each
prompt is the templated prompt string. It reads `rewards` (one float per query), `scores`
(falls back to `rewards`) and `extra_logs` (name -> one value per query) from the JSON reply.

We split each query into its prompt and response (the response is what follows the prompt,
trailing end-of-turn tokens removed), turn a ChatML or Llama-3 templated prompt back into chat
messages, and score with the panel (`PanelScorer`: queries sharing a prompt are compared with
each other; a `baseline` response, or the labels with `baseline_from_labels`, joins every
group). JSON has no NaN, so a query on which the panel abstains gets `abstain_reward` and
`extra_logs.abstained = 1`.
"""

# No `from __future__ import annotations`: FastAPI must see the request model as a class.

import math
import re
import threading
from typing import Any

from oversight.errors import missing_extra

_TRAILING = re.compile(r"(?:\s*(?:<\|[^|>]{1,40}\|>|</s>|<eos>))+\s*$")
_CHATML = re.compile(r"<\|im_start\|>(\w+)\n(.*?)(?:<\|im_end\|>|$)", re.S)
_LLAMA3 = re.compile(r"<\|start_header_id\|>(\w+)<\|end_header_id\|>\n\n(.*?)(?:<\|eot_id\|>|$)",
                     re.S)


def split_query(query: str, prompt: str | None) -> tuple[str, str]:
    """(prompt, response) from an OpenRLHF query; without a matching prompt, ValueError."""
    if prompt is None:
        raise ValueError("no prompt given for this query (OpenRLHF sends `prompts`)")
    at = query.find(prompt) if prompt else -1
    if at < 0:
        raise ValueError("the query does not contain its prompt")
    response = query[at + len(prompt):]
    return prompt, _TRAILING.sub("", response).strip()


def prompt_messages(prompt: str) -> list[dict[str, str]]:
    """A templated prompt (ChatML, Llama-3) as chat messages; plain text is one user turn."""
    for pattern in (_CHATML, _LLAMA3):
        turns = [{"role": r, "content": c.strip()} for r, c in pattern.findall(prompt)]
        turns = [t for t in turns if t["content"]]  # the open assistant header has none
        if turns:
            return turns
    return [{"role": "user", "content": _TRAILING.sub("", prompt).strip()}]


def create_reward_app(panel: Any, *, aggregate: str = "mean", lam: float = 1.0,
                      store: Any = None, baseline: str | None = None,
                      baseline_from_labels: bool = False, abstain_reward: float = 0.0) -> Any:
    try:
        from fastapi import FastAPI, HTTPException
        from pydantic import BaseModel
    except ImportError:  # pragma: no cover
        raise missing_extra("fastapi", "serve") from None
    from oversight.panel import PanelScorer
    from oversight.panel._scorer import fusion_name

    aggregate = fusion_name(aggregate)  # refuse a bad name before serving, not per request
    scorer = PanelScorer(panel, store=store, baseline=baseline)
    lock = threading.Lock()  # one judging pass at a time: one model, one store
    app = FastAPI(title="oversight panel reward (OpenRLHF remote RM protocol)")

    class RewardRequest(BaseModel):
        query: list[str]
        prompts: list[str] | None = None
        labels: list[Any] | None = None

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "panel": panel.name, "critics": scorer.critics,
                "aggregate": aggregate}

    @app.post("/get_reward")
    def get_reward(req: RewardRequest) -> dict[str, Any]:
        n = len(req.query)
        for name, col in (("prompts", req.prompts), ("labels", req.labels)):
            if col is not None and len(col) != n:
                raise HTTPException(422, f"`{name}` has {len(col)} entries for {n} queries")
        prompts, responses = [], []
        for i, q in enumerate(req.query):
            try:
                p, r = split_query(q, req.prompts[i] if req.prompts else None)
            except ValueError as exc:
                raise HTTPException(422, f"query {i}: {exc}") from None
            prompts.append(prompt_messages(p))
            responses.append(r)
        baselines = None
        if baseline_from_labels and req.labels is not None:
            baselines = [str(x) if x not in (None, "") else baseline for x in req.labels]
        with lock:
            batch = scorer.score(prompts, responses, baselines)
        fused = batch.fused(aggregate, lam)
        dis = batch.disagreement()
        rewards = [abstain_reward if math.isnan(v) else float(v) for v in fused]
        logs: dict[str, list[float]] = {
            "abstained": [float(math.isnan(v)) for v in fused],
            "panel_disagreement": [0.0 if math.isnan(v) else float(v) for v in dis]}
        for c, name in enumerate(batch.critics):
            logs[f"critic_{name}"] = [abstain_reward if math.isnan(v) else float(v)
                                      for v in batch.support[:, c]]
        return {"rewards": rewards, "scores": rewards, "extra_logs": logs}

    return app


def serve_reward(panel: Any, *, host: str = "127.0.0.1", port: int = 5000,
                 **options: Any) -> None:
    try:
        import uvicorn
    except ImportError:  # pragma: no cover
        raise missing_extra("uvicorn", "serve") from None
    uvicorn.run(create_reward_app(panel, **options), host=host, port=port, log_level="warning")
