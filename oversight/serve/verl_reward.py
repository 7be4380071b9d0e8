"""veRL's custom reward-function hook, backed by a panel reward server.

veRL (checked against verl/trainer/ppo/reward.py `get_custom_reward_fn` and
verl/workers/reward_manager/naive.py, batch.py) loads `custom_reward_function.path` and calls
the function named by `custom_reward_function.name` (default `compute_score`):

  naive manager:  compute_score(data_source, solution_str, ground_truth, extra_info, **kw)
  batch manager:  compute_score(data_sources, solution_strs, ground_truths, extra_infos, **kw)

with `custom_reward_function.reward_kwargs` merged into **kw. Neither passes the prompt, so put
it in the dataset's `extra_info` as `prompt` (or `question`). Run the panel with
`oversight serve-reward --panel FILE`, then in the veRL config:

  custom_reward_function.path=<site-packages>/oversight/serve/verl_reward.py
  custom_reward_function.name=compute_score            # or compute_score_batch
  +custom_reward_function.reward_kwargs.url=http://127.0.0.1:5000/get_reward

(or set OVERSIGHT_REWARD_URL). The module needs only httpx, so it loads in veRL's workers.
"""

from __future__ import annotations

import os
from typing import Any

DEFAULT_URL = "http://127.0.0.1:5000/get_reward"


def _prompt(extra_info: Any) -> str:
    info = extra_info or {}
    for key in ("prompt", "question"):
        if isinstance(info.get(key), str):
            return info[key]
    raise ValueError("extra_info has no 'prompt' or 'question': put the prompt text there "
                     "when preparing the veRL dataset")


def _post(prompts: list[str], responses: list[str], labels: list[Any], url: str | None,
          timeout_s: float) -> list[float]:
    import httpx

    url = url or os.environ.get("OVERSIGHT_REWARD_URL", DEFAULT_URL)
    payload = {"query": [p + r for p, r in zip(prompts, responses)], "prompts": prompts,
               "labels": [None if x is None else str(x) for x in labels]}
    reply = httpx.post(url, json=payload, timeout=timeout_s)
    reply.raise_for_status()
    return [float(x) for x in reply.json()["rewards"]]


def compute_score(data_source: Any, solution_str: str, ground_truth: Any,
                  extra_info: Any = None, url: str | None = None, timeout_s: float = 300.0,
                  **_: Any) -> float:
    """One response (veRL's naive reward manager)."""
    return _post([_prompt(extra_info)], [solution_str], [ground_truth], url, timeout_s)[0]


def compute_score_batch(data_sources: list[Any], solution_strs: list[str],
                        ground_truths: list[Any], extra_infos: list[Any] | None = None,
                        url: str | None = None, timeout_s: float = 300.0,
                        **_: Any) -> list[float]:
    """A batch (veRL's batch reward manager): one request, so responses to the same prompt
    are compared with each other by the panel."""
    infos = extra_infos or [None] * len(solution_strs)
    return _post([_prompt(i) for i in infos], list(solution_strs), list(ground_truths), url,
                 timeout_s)
