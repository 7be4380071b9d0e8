"""Deprecated location: `load_prompts` lives in `oversight.data` (removed next release)."""

from __future__ import annotations

from oversight._deprecated import moved

__getattr__ = moved("oversight.train._prompts",
                    {"load_prompts": "oversight.data.load_prompts",
                     "Messages": "oversight.data._prompts.Messages"})
