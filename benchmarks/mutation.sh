#!/usr/bin/env bash
# Mutation score of the decision layer (issue 13 §9) with mutmut 3. Slow: not part of CI.
#
#   benchmarks/mutation.sh                        # every configured file ([tool.mutmut])
#   benchmarks/mutation.sh 'oversight.aggregate._rules*'   # one module's mutants
#   SAMPLE=25 SEED=13 benchmarks/mutation.sh      # a seeded sample of 25 mutants per module
# Needs mutmut >= 3 on PATH and PYTHON pointing at the environment with oversight's deps.
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
# benchmarks/_mutmut_site/sitecustomize.py drops setuptools' editable import hook (which would
# import the unmutated package from wherever it was installed), and mutmut itself puts mutants/
# first on sys.path. PYTHONPATH must NOT name mutants/ (nor the checkout): an entry for a
# directory that does not exist yet when Python starts is cached as unimportable, so the first
# run could not import oversight at all.
export PYTHONPATH="$PWD/benchmarks/_mutmut_site"
if [ -n "${SAMPLE:-}" ]; then
  # A seeded sample of SAMPLE mutants per module (a full run is ~2200 mutants, hours on two
  # cores). The first call only generates mutants/ and the coverage stats (no name matches).
  "$MUTMUT" run --max-children "${JOBS:-2}" "no-such-mutant" >/dev/null 2>&1 || true
  mapfile -t names < <("$PY" benchmarks/_mutation_sample.py "$SAMPLE" "${SEED:-13}")
  "$MUTMUT" run --max-children "${JOBS:-2}" "${names[@]}" || true
else
  "$MUTMUT" run --max-children "${JOBS:-2}" "$@" || true
fi
"$MUTMUT" results --all true > mutants/results.txt 2>&1 || true
"$PY" - <<'PY'
import collections, re
equivalent = {line.split()[0] for line in open("benchmarks/mutation_equivalent.txt")
              if line.strip() and not line.startswith("#")}
score = collections.defaultdict(collections.Counter)
for line in open("mutants/results.txt"):
    m = re.match(r"\s*((\S+?)\.x\S*__mutmut_\d+): (\S+.*)$", line)
    if not m:
        continue
    status = m.group(3).strip()
    if status == "survived" and m.group(1) in equivalent:
        status = "equivalent"
    score[m.group(2)][status] += 1
tot = collections.Counter()
for module, c in sorted(score.items()):
    tot.update(c)
for module, c in [*sorted(score.items()), ("all", tot)]:
    killed = c["killed"] + c["timeout"]
    live = c["survived"] + c["no tests"]  # a mutant no test runs is not killed
    total = killed + live
    rate = f"{killed / total:.0%}" if total else "-"
    print(f"BENCH workload=mutation module={module} killed={killed} survived={c['survived']} "
          f"no_tests={c['no tests']} equivalent={c['equivalent']} ratio={rate}")
PY
