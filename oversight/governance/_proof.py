"""An SMT proof (z3) that the panel's decision procedure never chooses a response that a veto
verifier failed.

The model mirrors, for one item with K responses, what `oversight.aggregate.aggregate` does:

  ballots   (`_vote.ballots`) each non-abstaining critic votes for its unique highest-support
            response, or casts a tie ballot; the verifier critic is a ballot too (its support
            for a response is P(pass), 0 or 1, or missing when it abstained on that response)
  decide    (`_vote.decide`, no supermajority there) weighted tallies (weight 1 for majority),
            the top response wins unless the runner-up's share is within TIE_TOL (a tie), no
            ballots is "abstain"
  rules     (`_rules.apply_rules`) quorum on the number of ballots, supermajority on the
            winner's share, then the veto stage: the veto set holds every response a veto
            source vetoed (`_rules.vetoed_responses`: a pass/fail veto at P(pass) <= 0.5 - m,
            or < 0.5 when m = 0, with the code's TIE_TOL), plus any responses vetoed by other
            sources (free variables)

Ties and boundaries use the code's absolute tolerance TIE_TOL = 1e-9, as exact rationals.

For Bradley-Terry, Dawid-Skene and conservative fusion, whose decision step is not written
symbolically, the label entering the rules is a free variable (any response, a tie or an
abstention) with a free share and ballot count: the proof is then about the veto stage that
runs after them, for every label they could produce.

Theorem, for all critic weights > 0, supports in [0, 1], abstentions, quorum >= 1,
supermajority off or in [0.5, 1], veto margin m in [0, 0.5), and other vetoes: if the final
decision is a response r, the veto verifier did not fail r (it did not return P(pass) = 0 with
status ok). `prove_veto_guarantee` returns "proved", or a counterexample.

What it does not cover: whether a model critic's verdict is right, a verifier's own false
negatives (a violation it does not detect), a verifier that abstains or errors (no verdict, so
no veto), judgments that never reach `aggregate` (a critic left out of the panel), and numeric
effects of floating point (the model is over exact rationals; the property tests run the code).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from oversight.errors import missing_extra

TIE, ABSTAIN, NO_QUORUM, NO_SUPERMAJORITY, CONTESTED, VETOED = -1, -2, -3, -4, -5, -6
CODES = {TIE: "tie", ABSTAIN: "abstain", NO_QUORUM: "no_quorum",
         NO_SUPERMAJORITY: "no_supermajority", CONTESTED: "contested", VETOED: "vetoed"}
TIE_TOL = "1/1000000000"  # oversight.aggregate._ballots.TIE_TOL (1e-9), as an exact rational
SYMBOLIC_METHODS = ("vote", "majority")
VETO_STAGE_METHODS = ("bt", "ds", "conservative")


def _z3() -> Any:
    try:
        import z3
    except ImportError:
        raise missing_extra("z3", "governance") from None
    return z3


@dataclass
class PanelCase:
    """Inputs of one item's decision, each a z3 term (symbolic) or a concrete value.

    supports[c][r]: critic c's support for response r; abstain[c]: c cast no ballot;
    weights[c] > 0; verdict[r]: the veto verifier's P(pass) for r; answered[r]: its status was
    ok for r; other_veto[r]: vetoed by another veto source; label/share/n_ballots: the
    aggregator's output when it is not modelled (bt, ds, conservative).
    """

    k: int
    supports: list[list[Any]]
    abstain: list[Any]
    weights: list[Any]
    verdict: list[Any]
    answered: list[Any]
    verifier_weight: Any
    other_veto: list[Any]
    margin: Any
    quorum: Any
    supermajority_on: Any
    supermajority: Any
    label: Any = None
    share: Any = None
    n_ballots: Any = None
    constraints: list[Any] = field(default_factory=list)


def symbolic_case(k: int, n_critics: int) -> PanelCase:
    """Free variables for every input, with their domains as constraints."""
    z3 = _z3()
    R, B, Int = z3.Real, z3.Bool, z3.Int
    s = [[R(f"s_{c}_{r}") for r in range(k)] for c in range(n_critics)]
    case = PanelCase(
        k=k, supports=s, abstain=[B(f"abstain_{c}") for c in range(n_critics)],
        weights=[R(f"w_{c}") for c in range(n_critics)],
        verdict=[R(f"v_{r}") for r in range(k)], answered=[B(f"ok_{r}") for r in range(k)],
        verifier_weight=R("w_verifier"), other_veto=[B(f"x_{r}") for r in range(k)],
        margin=R("m"), quorum=Int("quorum"), supermajority_on=B("super_on"),
        supermajority=R("super"), label=Int("label"), share=R("share"),
        n_ballots=Int("n_ballots"))
    cs = case.constraints
    for row in s:
        cs += [z3.And(x >= 0, x <= 1) for x in row]
    cs += [w > 0 for w in case.weights] + [case.verifier_weight > 0]
    cs += [z3.And(v >= 0, v <= 1) for v in case.verdict]
    cs += [case.margin >= 0, case.margin < z3.RealVal("1/2"), case.quorum >= 1,
           z3.And(case.supermajority >= z3.RealVal("1/2"), case.supermajority <= 1),
           z3.And(case.label >= VETOED, case.label < k), case.share >= 0, case.share <= 1,
           case.n_ballots >= 0]
    return case


# -- the decision procedure, term by term ----------------------------------------------
def _ballot(z3: Any, support: Sequence[Any], present: Sequence[Any]) -> tuple[Any, Any]:
    """(casts a ballot, vote): the present support more than TIE_TOL above every other
    present support, else TIE (`is_tie` in `ballots`)."""
    k = len(support)
    tol = z3.RealVal(TIE_TOL)
    any_present = z3.Or(*present)
    is_best = [z3.And(present[r], *[z3.Or(z3.Not(present[j]), support[r] - support[j] > tol)
                                     for j in range(k) if j != r]) for r in range(k)]
    vote: Any = z3.IntVal(TIE)
    for r in reversed(range(k)):
        vote = z3.If(is_best[r], z3.IntVal(r), vote)
    return any_present, vote


def vote_stage(case: PanelCase, weighted: bool) -> tuple[Any, Any, Any]:
    """(label, share, n_ballots) of `Vote(weighted=...)` + `decide` without supermajority."""
    z3 = _z3()
    k = case.k
    ballots = []
    for c, sup in enumerate(case.supports):
        present = [z3.Not(_as_bool(z3, case.abstain[c]))] * k
        cast, vote = _ballot(z3, sup, present)
        ballots.append((cast, vote, case.weights[c] if weighted else z3.RealVal(1)))
    answered = [_as_bool(z3, a) for a in case.answered]
    cast, vote = _ballot(z3, case.verdict, answered)
    ballots.append((cast, vote, case.verifier_weight if weighted else z3.RealVal(1)))
    tally = [z3.Sum(*[z3.If(z3.And(cast, vote == r), w, z3.RealVal(0))
                      for cast, vote, w in ballots]) for r in range(k)]
    n = z3.Sum(*[z3.If(cast, z3.IntVal(1), z3.IntVal(0)) for cast, _v, _w in ballots])
    total = z3.Sum(*tally)
    top = tally[0]
    for t in tally[1:]:
        top = z3.If(t > top, t, top)
    winner: Any = z3.IntVal(TIE)
    for r in reversed(range(k)):  # argmax: the first response with the top tally
        winner = z3.If(tally[r] == top, z3.IntVal(r), winner)
    # `decide`: tied when the runner-up's share is within TIE_TOL of the winner's share
    tol = z3.RealVal(TIE_TOL)
    unique = z3.Not(z3.Or(*[z3.And(winner != r, top - tally[r] <= tol * total)
                            for r in range(k)]))
    label = z3.If(total > 0, z3.If(unique, winner, z3.IntVal(TIE)),
                  z3.If(n > 0, z3.IntVal(TIE), z3.IntVal(ABSTAIN)))
    share = z3.If(total > 0, top / z3.If(total > 0, total, z3.RealVal(1)), z3.RealVal(0))
    return label, share, n


def veto_set(case: PanelCase) -> list[Any]:
    """`vetoed_responses` for the verifier's pass/fail rows, plus the other veto sources."""
    z3 = _z3()
    m, half, tol = case.margin, z3.RealVal("1/2"), z3.RealVal(TIE_TOL)
    out = []
    for r in range(case.k):
        v, ok = case.verdict[r], _as_bool(z3, case.answered[r])
        # `_beyond(1 - P(pass), m)`: P(pass) <= 0.5 - m (within TIE_TOL); strictly below
        # 0.5 (beyond TIE_TOL) when m = 0
        by_verifier = z3.And(ok, z3.If(m == 0, v < half - tol, v <= half - m + tol))
        out.append(z3.Or(by_verifier, _as_bool(z3, case.other_veto[r])))
    return out


def rules_stage(case: PanelCase, label: Any, share: Any, n: Any, vetoed: Sequence[Any]) -> Any:
    """`apply_rules`: quorum, supermajority, then the veto stage. Returns the final code."""
    z3 = _z3()
    k = case.k
    eps = z3.RealVal(TIE_TOL)
    lab = z3.If(n < case.quorum, z3.IntVal(NO_QUORUM),
                z3.If(z3.And(_as_bool(z3, case.supermajority_on), label >= 0,
                             share < case.supermajority - eps),
                      z3.IntVal(NO_SUPERMAJORITY), label))
    any_veto = z3.Or(*vetoed)
    n_allowed = z3.Sum(*[z3.If(v, z3.IntVal(0), z3.IntVal(1)) for v in vetoed])
    only: Any = z3.IntVal(k - 1)
    for r in reversed(range(k - 1)):
        only = z3.If(z3.Not(vetoed[r]), z3.IntVal(r), only)
    lab_vetoed = z3.Or(*[z3.And(lab == r, vetoed[r]) for r in range(k)])
    return z3.If(z3.Not(any_veto), lab,
                 z3.If(n_allowed == 0, z3.IntVal(CONTESTED),
                       z3.If(n_allowed == 1, only,
                             z3.If(lab_vetoed, z3.IntVal(VETOED), lab))))


RulesStage = Callable[[PanelCase, Any, Any, Any, Sequence[Any]], Any]


def final_decision(case: PanelCase, method: str, rules: RulesStage = rules_stage) -> Any:
    """The final decision term for `method` (vote and majority modelled; others free)."""
    if method in SYMBOLIC_METHODS:
        label, share, n = vote_stage(case, weighted=method == "vote")
    elif method in VETO_STAGE_METHODS:
        label, share, n = case.label, case.share, case.n_ballots
    else:
        raise ValueError(f"method={method!r}: use one of "
                         f"{', '.join(SYMBOLIC_METHODS + VETO_STAGE_METHODS)}")
    return rules(case, label, share, n, veto_set(case))


@dataclass
class ProofResult:
    method: str
    k: int
    n_critics: int
    proved: bool
    counterexample: dict[str, str] | None = None

    def __str__(self) -> str:
        head = f"{self.method}, K={self.k}, {self.n_critics} model critics + 1 verifier"
        if self.proved:
            return f"{head}: proved"
        return f"{head}: COUNTEREXAMPLE {self.counterexample}"


def prove_veto_guarantee(method: str, k: int = 2, n_critics: int = 3, *,
                         rules: RulesStage = rules_stage, timeout_ms: int = 60000
                         ) -> ProofResult:
    """Ask z3 for a panel where the final decision is a response the verifier failed; none
    exists (unsat) means the guarantee is proved for these sizes and every value."""
    z3 = _z3()
    case = symbolic_case(k, n_critics)
    final = final_decision(case, method, rules)
    failed = z3.Or(*[z3.And(final == r, _as_bool(z3, case.answered[r]), case.verdict[r] == 0)
                     for r in range(k)])
    solver = z3.Solver()
    solver.set("timeout", timeout_ms)
    solver.add(*case.constraints)
    solver.add(failed)
    status = solver.check()
    if status == z3.unsat:
        return ProofResult(method, k, n_critics, True)
    if status == z3.unknown:
        raise RuntimeError(f"z3 gave up on {method}, K={k}: {solver.reason_unknown()}")
    model = solver.model()
    cex = {str(d): str(model[d]) for d in model.decls()}
    cex["final"] = str(model.eval(final, model_completion=True))
    return ProofResult(method, k, n_critics, False, cex)


def evaluate(case: PanelCase, method: str, rules: RulesStage = rules_stage) -> int:
    """The model's final decision on concrete inputs (a code: >= 0 response, < 0 see CODES)."""
    z3 = _z3()
    term = z3.simplify(final_decision(case, method, rules))
    if not z3.is_int_value(term):
        raise ValueError(f"inputs are not all concrete: {term}")
    return int(term.as_long())


def concrete_case(supports: Sequence[Sequence[float]], abstain: Sequence[bool],
                  weights: Sequence[float], verdict: Sequence[float | None],
                  verifier_weight: float, margin: float, quorum: int,
                  supermajority: float | None, label: Any = None, share: float = 0.0,
                  n_ballots: int = 0) -> PanelCase:
    """A PanelCase of exact values (floats are converted exactly); `verdict[r]` None means the
    verifier abstained on r. `label` is an int, or 'tie' / 'abstain' (bt, ds, conservative)."""
    z3 = _z3()

    def real(x: float) -> Any:
        return z3.RealVal(_exact(x))

    code = {"tie": TIE, "abstain": ABSTAIN}
    lab = label if isinstance(label, int) else code.get(str(label), TIE)
    k = len(verdict)
    return PanelCase(
        k=k, supports=[[real(x) for x in row] for row in supports],
        abstain=[z3.BoolVal(bool(a)) for a in abstain], weights=[real(w) for w in weights],
        verdict=[real(v if v is not None else 0.5) for v in verdict],
        answered=[z3.BoolVal(v is not None) for v in verdict],
        verifier_weight=real(verifier_weight), other_veto=[z3.BoolVal(False)] * k,
        margin=real(margin), quorum=z3.IntVal(quorum),
        supermajority_on=z3.BoolVal(supermajority is not None),
        supermajority=real(supermajority if supermajority is not None else 0.5),
        label=z3.IntVal(lab), share=real(share), n_ballots=z3.IntVal(n_ballots))


def _exact(x: float) -> str:
    from fractions import Fraction

    f = Fraction(float(x))
    return f"{f.numerator}/{f.denominator}"


def _as_bool(z3: Any, x: Any) -> Any:
    return z3.BoolVal(x) if isinstance(x, bool) else x


def decode(code: int) -> int | str:
    return code if code >= 0 else CODES[code]
