#!/usr/bin/env bash
# Mutation score of the decision layer (issue 13 §9) with mutmut 3. Slow: not part of CI.
#
#   benchmarks/mutation.sh                        # every configured file ([tool.mutmut])
#   benchmarks/mutation.sh 'oversight.aggregate._rules*'   # one module's mutants
#
# Prints mutmut's per-mutant results, then a score per module:
#   killed / (killed + survived)  (timeouts count as killed; "no tests" are listed apart).
# Survivors judged equivalent (they cannot change behaviour) are listed in the README's
# aggregation section with the reason; the target is >= 90% of non-equivalent mutants.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
MUTMUT=${MUTMUT:-mutmut}
# The mutated copy must win over an editable install of oversight in the same environment:
# benchmarks/_mutmut_site/sitecustomize.py drops setuptools' editable import hook.
export PYTHONPATH="$PWD/mutants:$PWD/benchmarks/_mutmut_site:${PYTHONPATH:-}"
"$MUTMUT" run --max-children "${JOBS:-2}" "$@" || true
"$MUTMUT" results --all true > mutants/results.txt 2>&1 || true
"$PY" - <<'PY'
import collections, re
score = collections.defaultdict(collections.Counter)
for line in open("mutants/results.txt"):
    m = re.match(r"\s*(\S+?)__mutmut_\d+: (\S+.*)$", line)
    if not m:
        continue
    module = m.group(1).rsplit(".x", 1)[0].rsplit(".x_", 1)[0]
    score[module][m.group(2).strip()] += 1
for module, c in sorted(score.items()):
    killed = c["killed"] + c["timeout"]
    live = c["survived"]
    total = killed + live
    rate = f"{killed / total:.0%}" if total else "-"
    print(f"BENCH workload=mutation module={module} killed={killed} survived={live} "
          f"no_tests={c['no tests']} ratio={rate}")
PY
