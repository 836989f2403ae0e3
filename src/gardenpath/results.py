"""What a chapter records (key numbers and its verdict) and how pages read it back.

A chapter calls :func:`record` once at its end. Under the pipeline the record goes to the
run's staging folder and is moved to ``results/<profile>/<chapter>.json`` only when the
whole notebook succeeded, so a failing run never replaces the last good result.

Two kinds of values are kept apart, so that determinism can be checked: ``numbers`` are
computed results that a rerun with the same seed reproduces (accuracies, counts, bytes);
``measurements`` are readings of this machine (times, energy, bandwidth) that vary.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

from gardenpath.verdict import OUTCOMES, Decision

VERDICTS = OUTCOMES

#: The fields of a results file whose values are readings of the machine, not computed
#: results: two runs of the same profile may differ in these and nowhere else.
MEASUREMENT_FIELDS = ("measurements", "provenance.date", "provenance.wall_time_s",
                      "provenance.device")
#: Where a chapter's verdict rests on a reading of the machine (a measured time share, a
#: measured speed ratio), its record says ``verdict_basis: "measurements"``, and then
#: these fields are readings too.
MEASURED_VERDICT_FIELDS = ("verdict", "why", "reason", "tests")


def without_measurements(data: dict[str, Any]) -> dict[str, Any]:
    """A copy of a results record without the fields that are readings of the machine."""
    data = json.loads(json.dumps(data))
    fields = list(MEASUREMENT_FIELDS)
    if data.get("verdict_basis") == "measurements":
        fields += MEASURED_VERDICT_FIELDS
    for field in fields:
        *parents, leaf = field.split(".")
        node = data
        for part in parents:
            node = node.get(part, {})
        node.pop(leaf, None)
    return data

SCHEMA = 2
#: What every entry of a results file's ``tests`` carries (see :mod:`gardenpath.verdict`).
TEST_FIELDS = ("name", "quantity", "value", "interval", "n", "rule", "outcome")


class ResultsError(ValueError):
    """A results file is missing a field, has a bad verdict, or is not valid JSON."""


def _clean(value: Any) -> Any:
    """JSON-ready copy: numpy scalars to Python, NaN/inf to None, tuples to lists."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        try:
            value = value.item()
        except (ValueError, TypeError):
            pass
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


#: The chapter a notebook named to :func:`parameters`: a notebook run outside the pipeline
#: (papermill on a downloaded notebook, JupyterLab) then records under its own name.
_named_chapter: str | None = None

#: Where a notebook run outside the pipeline writes ``<profile>/<chapter>.json``:
#: this variable's folder, else ``results/`` in the working directory (beside the output).
RESULTS_DIR_ENV = "GARDENPATH_RESULTS_DIR"


def results_folder(profile: str, root: str | Path | None = None) -> Path:
    """Where the results files of ``profile`` live: ``<root>/results/<profile>`` for a tree
    (the pipeline's), else ``$GARDENPATH_RESULTS_DIR/<profile>``, else ``results/<profile>``
    in the working directory (a notebook run outside the pipeline)."""
    if root is not None:
        return Path(root) / "results" / profile
    return Path(os.environ.get(RESULTS_DIR_ENV) or "results") / profile


def chapter_name() -> str:
    """The running chapter: set by the pipeline, else the one the notebook named to
    :func:`parameters`, else ``"interactive"``."""
    return os.environ.get("GARDENPATH_CHAPTER") or _named_chapter or "interactive"


def profile_name() -> str:
    """The running profile (set by the pipeline), else ``"interactive"``."""
    return os.environ.get("GARDENPATH_PROFILE", "interactive")


def parameters(namespace: dict[str, Any], chapter: str) -> dict[str, Any]:
    """The values of every parameter ``chapter``'s notebook declares, read from ``namespace``
    (the notebook's ``globals()``, after papermill's injected cell): what to record and
    pass on, without listing the names a second time.

    Under the pipeline the names come from ``notebooks/<chapter>.py`` in its tree; anywhere
    else (a downloaded notebook run by papermill, or opened in JupyterLab) from the
    notebook's own parameters cell, the first cell the kernel ran that holds only
    ``name = literal`` lines, so nothing is read from a checkout.
    """
    from gardenpath.params import ParamError, notebook_parameters, parse_parameters_cell

    global _named_chapter
    _named_chapter = chapter
    root = os.environ.get("GARDENPATH_ROOT")
    source = Path(root) / "notebooks" / f"{chapter}.py" if root else None
    if source is not None and source.is_file():
        names = list(notebook_parameters(source))
    else:
        names = None
        for cell in namespace.get("In") or []:  # IPython's history, in the order run
            try:
                names = list(parse_parameters_cell(cell, chapter)) if cell.strip() else None
            except ParamError:
                continue
            if names:
                break
        if not names:
            raise ResultsError(f"{chapter}: parameters not found: run the notebook from its "
                               "first cell (its parameters cell) in a Jupyter kernel")
    missing = [n for n in names if n not in namespace]
    if missing:
        raise ResultsError(f"{chapter}: parameters not defined yet: {', '.join(missing)}")
    return {name: namespace[name] for name in names}


def record(
    claim: str,
    verdict: str | Decision,
    numbers: dict[str, Any],
    *,
    why: str = "",
    measurements: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    device: dict[str, Any] | None = None,
    seed: int | None = None,
    verdict_basis: str = "numbers",
) -> dict[str, Any]:
    """Write this chapter's results file and return its content.

    Args:
        claim: the essay's claim this chapter tests, in our words (one sentence).
        verdict: the chapter's :class:`~gardenpath.verdict.Decision` (its tests and facts;
            the verdict and ``why`` follow from it), or, for a page without tests, one of
            :data:`VERDICTS`.
        numbers: the key computed numbers, by name (JSON-able scalars or small lists).
        why: one sentence giving the numbers that decide the verdict.
        measurements: readings of this machine (``*_s``, ``*_j``, bandwidths).
        params: the parameter values the run used.
        device: the device description (:func:`gardenpath.measure.device.describe`).
        seed: the seed the run used.
        verdict_basis: ``"numbers"`` when the verdict follows from computed results only,
            ``"measurements"`` when it rests on readings of the machine (then a rerun may
            reach another verdict, and the record says so).
    """
    if verdict_basis not in ("numbers", "measurements"):
        raise ResultsError(f"verdict_basis must be 'numbers' or 'measurements', "
                           f"got {verdict_basis!r}")
    decision = verdict if isinstance(verdict, Decision) else None
    if decision is not None:
        verdict, why = decision.verdict, why or decision.why()
    if verdict not in VERDICTS:
        raise ResultsError(f"verdict must be one of {VERDICTS}, got {verdict!r}")
    from gardenpath.measure.provenance import collect

    prov = collect(params, seed=seed, device=device)
    prov["profile"] = profile_name()
    data = _clean(
        {
            "schema": SCHEMA,
            "chapter": chapter_name(),
            "claim": claim,
            "verdict": verdict,
            "verdict_basis": verdict_basis,
            "why": why,
            **(_decision_fields(decision) if decision is not None else {}),
            "numbers": numbers,
            "measurements": measurements or {},
            "provenance": prov,
        }
    )
    stage = os.environ.get("GARDENPATH_STAGE")
    if stage:
        target = Path(stage) / "results.json"
    else:
        target = results_folder(profile_name()) / f"{chapter_name()}.json"
    write_json_atomic(target, data)
    return data


def _decision_fields(decision: Decision) -> dict[str, Any]:
    d = decision.as_dict()
    return {"reason": d["reason"], "tests": d["tests"], "facts": d["facts"]}


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write JSON to ``path`` through a temporary file and a rename, never half-written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def validate(data: Any, source: str = "results") -> dict[str, Any]:
    """Check a loaded results record; raise :class:`ResultsError` naming what is wrong."""
    if not isinstance(data, dict):
        raise ResultsError(f"{source}: not a JSON object")
    for field in ("chapter", "claim", "verdict", "numbers", "provenance"):
        if field not in data:
            raise ResultsError(f"{source}: missing field {field!r}")
    if data["verdict"] not in VERDICTS:
        raise ResultsError(f"{source}: bad verdict {data['verdict']!r}")
    if not isinstance(data["numbers"], dict):
        raise ResultsError(f"{source}: 'numbers' is not an object")
    for key in ("tests", "facts"):
        if not isinstance(data.get(key, []), list):
            raise ResultsError(f"{source}: {key!r} is not a list")
    for test in data.get("tests", []):
        missing = [f for f in TEST_FIELDS if not isinstance(test, dict) or f not in test]
        if missing:
            raise ResultsError(f"{source}: a test lacks {', '.join(missing)}")
    return data


def load(chapter: str, profile: str, root: str | Path = ".") -> dict[str, Any] | None:
    """Read and validate ``results/<profile>/<chapter>.json``; ``None`` when absent."""
    path = Path(root) / "results" / profile / f"{chapter}.json"
    return load_file(path) if path.exists() else None


def load_file(path: str | Path) -> dict[str, Any]:
    """Read and validate one results file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: not valid JSON ({exc})") from exc
    return validate(data, str(path))


def file_digest(path: str | Path) -> str | None:
    """SHA-256 of a file's bytes, ``None`` when it does not exist."""
    path = Path(path)
    if not path.is_file():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def glue_all(numbers: dict[str, Any], prefix: str = "") -> None:
    """Glue every number for ``{glue:text}`` in the page's prose, hidden from the output.

    A value that could not be computed (``None``, NaN) is glued as NaN, so the prose shows
    ``nan`` where the number would stand instead of the page failing to build.
    """
    from myst_nb import glue

    for name, value in numbers.items():
        value = _clean(value)  # numpy scalars to Python, so format specs apply
        if value is None:
            value = float("nan")
        if isinstance(value, (int, float, str)):
            glue(prefix + name, value, display=False)


def glue_prose(sentences: dict[str, str]) -> None:
    """Glue computed sentences (Markdown) for ``{glue:md}`` in the page's prose, hidden."""
    from IPython.display import Markdown
    from myst_nb import glue

    for name, sentence in sentences.items():
        glue(name, Markdown(sentence), display=False)


def glue_verdict(decision: Decision, claim: str) -> None:
    """Glue the verdict box for the page: ``verdict`` (the word), ``verdict_reason`` (one
    line) and ``verdict_box`` (Markdown: the verdict, each test's rule and measurement, the
    facts). Show the box with a ``{glue:md} verdict_box`` directive, ``:format: myst``."""
    from myst_nb import glue

    glue("verdict", decision.verdict, display=False)
    glue("verdict_reason", decision.reason(), display=False)
    glue_prose({"verdict_box": decision.box_markdown(claim)})
