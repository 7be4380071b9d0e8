"""A run directory, owned by this one module: `run.json`, the store, and the outputs.

Layout of a run directory:

    run.json            what ran: panel, critics (configs with fingerprints), aggregator and
                        its options, rules, data source, seed, package versions
    judgments.sqlite    the store (a cache: it may hold other runs' critics too)
    judgments.parquet   this run's judgments (written by `oversight judge`)

`run.json` carries `format = "oversight-run"` and `format_version`; a newer version than this
package reads is refused with a clear error, and so is a store whose schema version differs
(`JudgmentStore`). Every reader (aggregate, report, review, export, train, serve, `load_run`)
goes through `open_run`, which takes exactly the run's critics by fingerprint: a store reused
by another panel, or two critics sharing a name with different fingerprints, never mixes in.
The `human` critic (labels from `oversight review import`) is evidence, never a vote: it is
kept apart in `Run.human_judgments`.

A directory without `run.json` (a store filled by the Python API before this format, or by
hand) is read with every non-human critic in the store, unless two of them share a name with
different fingerprints: then the reader cannot tell which belongs to the run and says so.
A `run.json` without `format_version` (written before the format was versioned) is read
through its `critics` list, which already names each critic's fingerprint.
"""

from __future__ import annotations

import dataclasses
import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oversight._deprecated import renamed_attribute, renamed_kwarg
from oversight.data import Comparison
from oversight.errors import OversightError

RUN_FORMAT = "oversight-run"
RUN_FORMAT_VERSION = 1
RUN_JSON = "run.json"
STORE_NAME = "judgments.sqlite"
HUMAN = "human"
_VERSIONED = ("oversight", "numpy", "pandas", "scipy", "torch", "transformers", "trl")


def package_versions() -> dict[str, str]:
    """Installed versions of the packages a run's numbers depend on (metadata only, no import)."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def rules_to_dict(rules: Any) -> dict[str, Any] | None:
    if rules is None:
        return None
    d = dataclasses.asdict(rules)
    d["veto_critics"] = list(d.get("veto_critics", ()))
    return d


def rules_from_dict(d: dict[str, Any] | None, where: str) -> Any:
    from oversight.aggregate import PanelRules

    if d is None:
        return None
    known = {f.name for f in dataclasses.fields(PanelRules)}
    bad = sorted(set(d) - known)
    if bad:
        raise OversightError(f"{where}: field 'rules' has unknown key(s) {bad}; known: "
                             f"{', '.join(sorted(known))}")
    d = dict(d)
    d["veto_critics"] = tuple(d.get("veto_critics", ()))
    return PanelRules(**d)


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    return x


def is_run_store(db_path: str | Path) -> bool:
    """True when a store file follows the run-directory convention (`<dir>/judgments.sqlite`)."""
    return Path(db_path).name == STORE_NAME


def write_run(run_dir: str | Path, *, critics: list[dict[str, Any]], method: str = "vote",
              method_options: dict[str, Any] | None = None, rules: Any = None,
              panel: str | None = None, data: str | None = None, seed: int | None = None,
              **extra: Any) -> Path:
    """Write (replace) `run.json`: the run's panel, critics by fingerprint, aggregation method
    and options (under the file's "aggregator" key), rules, data source, seed and package
    versions, plus `extra` fields (counts, timings). Returns its path."""
    method = renamed_kwarg("write_run", extra, "aggregator", "method", method)
    method_options = renamed_kwarg("write_run", extra, "aggregator_options", "method_options",
                                   method_options)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    info = {"format": RUN_FORMAT, "format_version": RUN_FORMAT_VERSION, "panel": panel,
            "critics": critics, "aggregator": {"method": method,
                                               "options": dict(method_options or {})},
            "rules": rules_to_dict(rules), "data": data, "seed": seed,
            "versions": package_versions(), **extra}
    path = run_dir / RUN_JSON
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_jsonable(info), indent=2))
    tmp.replace(path)  # readers never see half a file
    return path


def read_run_info(run_dir: str | Path) -> dict[str, Any] | None:
    """The run's `run.json` as a dict (None if there is none); refuses other formats."""
    path = Path(run_dir) / RUN_JSON
    if not path.exists():
        return None
    try:
        info = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise OversightError(f"{path}: not a readable run.json ({exc})") from None
    if not isinstance(info, dict):
        raise OversightError(f"{path}: run.json must hold a JSON object")
    version = info.get("format_version", 0)
    if info.get("format", RUN_FORMAT) != RUN_FORMAT:
        raise OversightError(f"{path}: field 'format' is {info.get('format')!r}, not "
                             f"{RUN_FORMAT!r}")
    if not isinstance(version, int) or version > RUN_FORMAT_VERSION or version < 0:
        raise OversightError(
            f"{path}: run format version {version!r}; this oversight reads versions up to "
            f"{RUN_FORMAT_VERSION}. Upgrade oversight, or rerun `oversight judge --out "
            f"{Path(run_dir)}` with this version (the store's judgments are reused)")
    return info


@dataclass
class Run:
    """A run read back: its items, its critics' judgments (exactly the run's fingerprints),
    the human review labels kept apart, and the panel's aggregator, options and rules.

    The judgments stay in the store until asked for, and are read as columns (Arrow
    batches), never one object per row: `judgments` and `human_judgments` (pandas, read once
    and kept), `result()` (a `PanelResult` reading from the store), `working_table()` (the
    columns aggregation reads, text dictionary-encoded)."""

    path: Path
    items: list[Comparison]
    critics: list[dict[str, Any]]
    method: str = "vote"
    method_options: dict[str, Any] = field(default_factory=dict)
    rules: Any = None
    info: dict[str, Any] = field(default_factory=dict)
    selections: list[Any] = field(default_factory=list, repr=False)
    human_selections: list[Any] = field(default_factory=list, repr=False)
    _frames: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    aggregator = renamed_attribute("Run", "aggregator", "method")
    aggregator_options = renamed_attribute("Run", "aggregator_options", "method_options")

    @property
    def store_path(self) -> Path:
        return self.path / STORE_NAME

    @property
    def critic_names(self) -> list[str]:
        return [c["name"] for c in self.critics]

    @property
    def judgments(self) -> Any:
        """The run's critics' judgments as one pandas table (`JUDGMENT_COLUMNS`)."""
        return self._frame("judgments", self.selections)

    @property
    def human_judgments(self) -> Any:
        """The `human` critic's labels on the run's items (evidence, never a vote)."""
        return self._frame("human", self.human_selections)

    def _frame(self, key: str, selections: list[Any]) -> Any:
        if key not in self._frames:
            from oversight.store._columns import concat, read_batches, to_pandas

            # human labels on other items of the store are not this run's evidence
            ids = [it.id for it in self.items] if key == "human" else None
            self._frames[key] = to_pandas(concat(
                read_batches(self._db_path, selections, ids) if selections else []))
        return self._frames[key]

    @property
    def _db_path(self) -> Path:
        from oversight.store import run_store

        return run_store(self.path)

    def result(self) -> Any:
        """This run as a PanelResult reading from the store (human labels left out: they
        are evidence, not a vote)."""
        from oversight.panel._panel import PanelResult, StoreSource

        if "result" in self._frames:
            return self._frames["result"]
        self._frames["result"] = PanelResult(
            items=self.items, critics=self.critics, method=self.method, rules=self.rules,
            method_options=dict(self.method_options),
            source=StoreSource(self._db_path, list(self.selections)))
        return self._frames["result"]

    def working_table(self) -> Any:
        """The columns aggregation reads, text as pandas categoricals (see
        `PanelResult.working_table`)."""
        return self.result().working_table()

    def aggregate(self, method: str | None = None, **options: Any) -> Any:
        """The panel's aggregation (its method, options and rules unless overridden)."""
        return self.result().aggregate(method, **options)

    def references(self) -> dict[str, int]:
        return {it.id: int(it.reference) for it in self.items if it.reference is not None}


def _select_critics(store_critics: list[dict[str, Any]], info: dict[str, Any] | None,
                    where: str) -> list[dict[str, Any]]:
    by_fp = {c.get("fingerprint"): c for c in store_critics}
    if info is not None and isinstance(info.get("critics"), list):
        chosen = []
        for c in info["critics"]:
            if not isinstance(c, dict) or "fingerprint" not in c or "name" not in c:
                raise OversightError(f"{where}/{RUN_JSON}: field 'critics' needs name and "
                                     f"fingerprint for each critic, got {c!r}")
            chosen.append({**by_fp.get(c["fingerprint"], {}), **c})
        return chosen
    panel = [c for c in store_critics if c.get("name") != HUMAN]
    names: dict[str, set[str]] = {}
    for c in panel:
        names.setdefault(c["name"], set()).add(c["fingerprint"])
    clash = {n: fps for n, fps in names.items() if len(fps) > 1}
    if clash:
        n, fps = sorted(clash.items())[0]
        raise OversightError(
            f"{where}: the store holds {len(fps)} different critics named {n!r} (fingerprints "
            f"{', '.join(sorted(fps))}) and no {RUN_JSON} says which belongs to this run; "
            f"judge into a fresh directory, or rerun `oversight judge --out {where}`")
    return panel


def open_run(run_dir: str | Path) -> Run:
    """Read a run directory (or a store file) through its run.json; see the module docs.
    Nothing is read row by row: the judgments stay in the store until asked for."""
    from oversight.store import JudgmentStore, run_store
    from oversight.store._columns import Selection

    db_path = run_store(run_dir)
    run_dir = db_path.parent
    info = read_run_info(run_dir) if is_run_store(db_path) else None
    with JudgmentStore(db_path) as db:
        store_critics = db.critics()
        critics = _select_critics(store_critics, info, str(run_dir))
        fps = [c["fingerprint"] for c in critics]
        human_fps = [c["fingerprint"] for c in store_critics if c.get("name") == HUMAN]
        judged = db.item_ids(fingerprints=fps)
        all_items = db.items() if judged else []
    if not judged:
        raise OversightError(f"{db_path}: the store holds no judgments of this run's critics"
                             + (f" ({', '.join(c['name'] for c in critics)})" if critics
                                else ""))
    items = [it for it in all_items if it.id in judged]
    # a critic's name within the run is the run's, whatever the store says; rows come
    # critic by critic in the order of the names they were stored under (as SQL ordered them)
    stored_name = {c["fingerprint"]: c.get("name", "") for c in store_critics}
    by_stored = sorted(critics, key=lambda c: (stored_name.get(c["fingerprint"], c["name"]),
                                               c["fingerprint"]))
    selections = [Selection(c["name"], c["fingerprint"]) for c in by_stored]
    human = [Selection(HUMAN, fp) for fp in sorted(human_fps)]
    agg = (info or {}).get("aggregator") or {}
    if isinstance(agg, str):
        agg = {"method": agg}
    method = str(agg.get("method", "vote"))
    rules = rules_from_dict((info or {}).get("rules"), f"{run_dir}/{RUN_JSON}")
    if rules is None:
        from oversight.aggregate import PanelRules

        rules = PanelRules(veto_critics=tuple(sorted(c["name"] for c in critics
                                                     if c.get("veto"))))
    return Run(path=run_dir, items=items, critics=critics, method=method,
               method_options=dict(agg.get("options") or {}), rules=rules,
               info=dict(info or {}), selections=selections, human_selections=human)
