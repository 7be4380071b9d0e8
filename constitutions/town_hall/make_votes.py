"""Write votes.csv: a synthetic town hall voting on the 40 shipped principles' statements.

Three opinion groups with planted leanings (probability of "agree" per constitution):
  cautious (50 people):    harmlessness .90, privacy .85, honesty .85, helpfulness .45, autonomy .30
  libertarian (35 people): harmlessness .30, privacy .75, honesty .85, helpfulness .85, autonomy .90
  pragmatic (25 people):   harmlessness .60, privacy .60, honesty .80, helpfulness .90, autonomy .50
Each statement's probabilities get a seeded jitter of +-0.08; a non-agree is "disagree" 85% of
the time and "pass" otherwise; each person sees a random 60% of the statements. The votes are
synthetic: they illustrate the method, they are nobody's opinion.

Run: python constitutions/town_hall/make_votes.py   (deterministic; rewrites votes.csv)
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from oversight.constitution import builtin

GROUPS = {
    "cautious": (50, {"harmlessness": .90, "privacy": .85, "honesty": .85, "helpfulness": .45,
                      "autonomy": .30}),
    "libertarian": (35, {"harmlessness": .30, "privacy": .75, "honesty": .85, "helpfulness": .85,
                         "autonomy": .90}),
    "pragmatic": (25, {"harmlessness": .60, "privacy": .60, "honesty": .80, "helpfulness": .90,
                       "autonomy": .50}),
}
NAMES = ("harmlessness", "helpfulness", "honesty", "privacy", "autonomy")


def main(out: Path = Path(__file__).with_name("votes.csv"), seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    statements = [(f"{c.name}/{p.id}", p.statement, c.name)
                  for c in (builtin(n) for n in NAMES) for p in c.principles]
    jitter = rng.uniform(-0.08, 0.08, size=(len(GROUPS), len(statements)))
    rows = []
    person = 0
    for g, (size, lean) in enumerate(GROUPS.values()):
        p = np.clip([lean[c] for _, _, c in statements] + jitter[g], 0.02, 0.98)
        for _ in range(size):
            person += 1
            for j, (sid, text, _) in enumerate(statements):
                if rng.random() > 0.6:
                    continue
                u = rng.random()
                vote = ("agree" if u < p[j] else
                        "disagree" if u < p[j] + (1 - p[j]) * 0.85 else "pass")
                rows.append((f"p{person:03d}", sid, text, vote))
    with open(out, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["participant", "statement_id", "statement", "vote"])
        w.writerows(rows)
    print(f"wrote {out}: {person} participants, {len(statements)} statements, {len(rows)} votes")


if __name__ == "__main__":
    main()
