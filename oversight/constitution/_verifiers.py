"""Verifier principles: deterministic checks with exact verdicts instead of a model question.

A principle with a `[principles.verifier]` table is judged by code, not by a model:

  regex        `pattern` (Python `re`), `on_match = "fail"` (a forbidden pattern, the default)
               or `"pass"` (a required pattern), optional `flags` (IGNORECASE, MULTILINE, DOTALL)
  python       `predicate = "package.module:function"`, called as f(response) or, if it has a
               parameter named `prompt`, f(response, prompt=...); it returns True (pass), False
               (fail), None (abstain), a `Verdict`, or a (True/False/None, reason) pair
  json_schema  `schema` (an inline table) or `schema_file` (a path relative to the TOML file);
               the response (or its first ```json fenced block) must parse and validate
  classifier   `classifier = "package.module:function"` returning a score, `threshold`, and
               `fail_when = "above"` (score >= threshold fails, the default) or `"below"`
               (score < threshold fails); a NaN score abstains

The verdict is exact: pass, fail, or abstain with a reason. There are no probabilities.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from oversight.errors import ConstitutionError, missing_extra

VerifierType = Literal["regex", "python", "json_schema", "classifier"]
VERIFIER_TYPES = ("regex", "python", "json_schema", "classifier")
Outcome = Literal["pass", "fail", "abstain"]

_FIELDS: dict[str, dict[str, tuple[type | tuple[type, ...], bool]]] = {
    "regex": {"pattern": (str, True), "on_match": (str, False), "flags": (list, False)},
    "python": {"predicate": (str, True)},
    "json_schema": {"schema": (dict, False), "schema_file": (str, False)},
    "classifier": {"classifier": (str, True), "threshold": ((int, float), True),
                   "fail_when": (str, False)},
}
_FLAGS = {"IGNORECASE": re.IGNORECASE, "MULTILINE": re.MULTILINE, "DOTALL": re.DOTALL}
_IMPORT_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_FENCE_RE = re.compile(r"```(?:json)?\s*\n(.*?)```", re.DOTALL)


@dataclass(frozen=True)
class Verdict:
    """A verifier's exact verdict. `reason` says why (always set for fail and abstain)."""

    outcome: Outcome
    reason: str = ""


@dataclass(frozen=True)
class VerifierSpec:
    """A validated verifier table. `schema_json` is the schema as canonical JSON text."""

    type: VerifierType
    pattern: str | None = None
    on_match: Literal["fail", "pass"] = "fail"
    flags: tuple[str, ...] = ()
    predicate: str | None = None
    schema_json: str | None = None
    classifier: str | None = None
    threshold: float | None = None
    fail_when: Literal["above", "below"] = "above"

    def to_dict(self) -> dict[str, Any]:
        """Only the fields this type uses (what the content hash and the TOML writer see)."""
        d: dict[str, Any] = {"type": self.type}
        if self.type == "regex":
            d.update(pattern=self.pattern, on_match=self.on_match, flags=list(self.flags))
        elif self.type == "python":
            d["predicate"] = self.predicate
        elif self.type == "json_schema":
            d["schema"] = json.loads(self.schema_json or "{}")
        else:
            d.update(classifier=self.classifier, threshold=self.threshold,
                     fail_when=self.fail_when)
        return d

    def code_fingerprint(self) -> str:
        """Hash of the referenced callable's source, so editing a predicate busts the cache."""
        ref = self.predicate or self.classifier
        if ref is None:
            return ""
        fn = resolve(ref)
        try:
            src = inspect.getsource(fn)
        except (OSError, TypeError):
            src = repr(fn)
        return hashlib.sha256(src.encode()).hexdigest()[:12]


def resolve(ref: str) -> Callable[..., Any]:
    """Import `package.module:attr` and return the callable; errors say what is wrong."""
    if not _IMPORT_RE.match(ref):
        raise ValueError(f"{ref!r} is not an import path of the form 'package.module:function'")
    module_name, attr = ref.split(":", 1)
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import module {module_name!r}: {exc}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"{ref!r} is {type(obj).__name__}, not a callable")
    return obj  # type: ignore[no-any-return]


def parse_verifier(path: str, principle: str, table: Any) -> VerifierSpec:
    """Validate a `[principles.verifier]` table. Errors name file, principle and field."""
    def fail(message: str, fld: str) -> ConstitutionError:
        return ConstitutionError(path, message, principle=principle, field=fld)

    if not isinstance(table, dict):
        raise fail("must be a table ([principles.verifier])", "verifier")
    vtype = table.get("type")
    if vtype not in VERIFIER_TYPES:
        raise fail(f"{vtype!r} is not a verifier type; use one of {', '.join(VERIFIER_TYPES)}",
                   "verifier.type")
    spec = _FIELDS[vtype]
    for key in table:
        if key != "type" and key not in spec:
            raise fail(f"unknown key for a {vtype} verifier; valid keys: type, "
                       f"{', '.join(spec)}", f"verifier.{key}")
    for key, (typ, required) in spec.items():
        if key not in table:
            if required:
                raise fail(f"missing required field of a {vtype} verifier", f"verifier.{key}")
            continue
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, typ):
            names = " or ".join(t.__name__ for t in typ) if isinstance(typ, tuple) \
                else typ.__name__
            raise fail(f"expected {names}, got {type(value).__name__} {value!r}",
                       f"verifier.{key}")
    if vtype == "regex":
        on_match = table.get("on_match", "fail")
        if on_match not in ("fail", "pass"):
            raise fail(f"{on_match!r} is not valid; use 'fail' (forbidden pattern) or 'pass' "
                       "(required pattern)", "verifier.on_match")
        flags = table.get("flags", [])
        bad = [f for f in flags if f not in _FLAGS]
        if bad:
            raise fail(f"unknown flag(s) {bad}; valid: {', '.join(_FLAGS)}", "verifier.flags")
        try:
            re.compile(table["pattern"], _flag_bits(tuple(flags)))
        except re.error as exc:
            raise fail(f"invalid regular expression: {exc}", "verifier.pattern") from None
        return VerifierSpec("regex", pattern=table["pattern"], on_match=on_match,
                            flags=tuple(flags))
    if vtype in ("python", "classifier"):
        key = "predicate" if vtype == "python" else "classifier"
        try:
            resolve(table[key])
        except ValueError as exc:
            raise fail(str(exc), f"verifier.{key}") from None
        if vtype == "python":
            return VerifierSpec("python", predicate=table["predicate"])
        threshold = float(table["threshold"])
        if not math.isfinite(threshold):
            raise fail(f"must be a finite number, got {threshold}", "verifier.threshold")
        fail_when = table.get("fail_when", "above")
        if fail_when not in ("above", "below"):
            raise fail(f"{fail_when!r} is not valid; use 'above' (score >= threshold fails) or "
                       "'below' (score < threshold fails)", "verifier.fail_when")
        return VerifierSpec("classifier", classifier=table["classifier"], threshold=threshold,
                            fail_when=fail_when)
    # json_schema
    if ("schema" in table) == ("schema_file" in table):
        raise fail("give exactly one of 'schema' (an inline table) and 'schema_file'",
                   "verifier.schema")
    if "schema_file" in table:
        file = Path(path).parent / table["schema_file"]
        try:
            schema = json.loads(file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise fail(f"cannot read {file}: {exc.strerror or exc}",
                       "verifier.schema_file") from None
        except json.JSONDecodeError as exc:
            raise fail(f"{file} is not JSON: {exc}", "verifier.schema_file") from None
    else:
        schema = table["schema"]
    try:
        import jsonschema
    except ImportError:
        raise fail(str(missing_extra("jsonschema", "governance")), "verifier.type") from None
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise fail(f"invalid JSON Schema: {exc.message}", "verifier.schema") from None
    return VerifierSpec("json_schema",
                        schema_json=json.dumps(schema, sort_keys=True, ensure_ascii=False))


def _flag_bits(flags: tuple[str, ...]) -> int:
    bits = 0
    for f in flags:
        bits |= _FLAGS[f]
    return bits


@lru_cache(maxsize=256)
def _compiled(pattern: str, flags: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(pattern, _flag_bits(flags))


@lru_cache(maxsize=64)
def _validator(schema_json: str) -> Any:
    import jsonschema

    schema = json.loads(schema_json)
    return jsonschema.validators.validator_for(schema)(schema)


def run_verifier(spec: VerifierSpec, response: str, prompt: Any = None) -> Verdict:
    """The exact verdict of one verifier on one response. A raising user function propagates
    (the backend records it as an error; it is never turned into a pass)."""
    if spec.type == "regex":
        m = _compiled(spec.pattern or "", spec.flags).search(response)
        if spec.on_match == "fail":
            if m:
                return Verdict("fail", f"forbidden pattern matched {m.group(0)[:80]!r} "
                                       f"at {m.start()}")
            return Verdict("pass", "forbidden pattern absent")
        if m:
            return Verdict("pass", f"required pattern matched at {m.start()}")
        return Verdict("fail", "required pattern absent")
    if spec.type == "python":
        fn = resolve(spec.predicate or "")
        out = fn(response, prompt=prompt) if _takes_prompt(fn) else fn(response)
        return _as_verdict(out, spec.predicate or "")
    if spec.type == "json_schema":
        text = response.strip()
        fenced = _FENCE_RE.search(text)
        if fenced:
            text = fenced.group(1).strip()
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            return Verdict("fail", f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
        errors = sorted(_validator(spec.schema_json or "{}").iter_errors(doc),
                        key=lambda e: list(e.absolute_path))
        if errors:
            e = errors[0]
            where = "/".join(str(x) for x in e.absolute_path) or "(root)"
            return Verdict("fail", f"schema violation at {where}: {e.message[:200]}")
        return Verdict("pass", "valid against the schema")
    fn = resolve(spec.classifier or "")
    raw = fn(response)
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise TypeError(f"classifier {spec.classifier} returned {type(raw).__name__}; "
                        "expected a number")
    score = float(raw)
    if math.isnan(score):
        return Verdict("abstain", f"classifier {spec.classifier} returned NaN")
    t = spec.threshold if spec.threshold is not None else 0.5
    failed = score >= t if spec.fail_when == "above" else score < t
    rel = ">=" if score >= t else "<"
    return Verdict("fail" if failed else "pass", f"score {score:.4g} {rel} threshold {t:g}")


def _takes_prompt(fn: Callable[..., Any]) -> bool:
    try:
        return "prompt" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _as_verdict(out: Any, ref: str) -> Verdict:
    reason = ""
    if isinstance(out, Verdict):
        if out.outcome not in ("pass", "fail", "abstain"):
            raise ValueError(f"predicate {ref} returned outcome {out.outcome!r}")
        return out
    if isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], str):
        out, reason = out
    if out is None:
        return Verdict("abstain", reason or f"predicate {ref} returned None")
    if isinstance(out, bool):
        return Verdict("pass" if out else "fail",
                       reason or f"predicate {ref} returned {out}")
    raise TypeError(f"predicate {ref} returned {type(out).__name__}; expected True, False, "
                    "None, a Verdict or a (bool | None, reason) pair")
