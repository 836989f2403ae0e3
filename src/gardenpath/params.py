"""Chapter parameters: read from each notebook's ``parameters`` cell, layered, validated.

A notebook's first code cell, tagged ``parameters``, is the single source of its
parameter names, defaults, types and documentation: one flat literal per line with a
trailing comment. The comment may end with a constraint in brackets::

    batch_size = 32      # images per step [range: 1..]
    lr = 0.1             # learning rate [range: >0]
    momentum = 0.9       # momentum [range: 0..1]
    device = "auto"      # where to run [choices: auto | cpu | cuda]
    sizes = [8, 16]      # spatial sides (pixels) [nonempty]
    data_path = ""       # a user's own data folder; "" for the bundled digits [path]

Values are layered profile -> ``--params`` file -> ``--set``; each layer is checked
against the notebook before any kernel starts, and a bad one raises :class:`ParamError`
with one line naming the file or flag, the chapter and the parameter.
"""

from __future__ import annotations

import ast
import difflib
import io
import operator
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

TYPE_NAMES = {bool: "bool", int: "int", float: "float", str: "str", list: "list"}


class ParamError(ValueError):
    """A parameter problem found before execution; the CLI prints it and exits 2."""

    exit_code = 2


@dataclass(frozen=True)
class Param:
    """One notebook parameter as its ``parameters`` cell declares it."""

    name: str
    default: Any
    type: str
    doc: str
    constraint: str = ""

    def check(self, value: Any, where: str, chapter: str, root: Path | None = None) -> Any:
        """Return ``value`` coerced to this parameter's type, or raise :class:`ParamError`."""
        prefix = f"{where}: chapter '{chapter}', parameter '{self.name}'"
        coerced = _coerce(value, self.type, self.default)
        if coerced is _BAD:
            got = TYPE_NAMES.get(type(value), type(value).__name__)
            raise ParamError(f"{prefix}: expected {self.type}, got {got} {value!r}")
        value = coerced
        problem = _violates(self.constraint, value, root)
        if problem:
            raise ParamError(f"{prefix}: {value!r} {problem}")
        return value


_BAD = object()


def _coerce(value: Any, type_name: str, default: Any) -> Any:
    """``value`` as ``type_name`` (ints become floats), or ``_BAD`` when it does not fit."""
    if type_name == "any":
        return value
    if type_name == "bool":
        return value if isinstance(value, bool) else _BAD
    if type_name == "int":
        return value if isinstance(value, int) and not isinstance(value, bool) else _BAD
    if type_name == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return _BAD
        return float(value)
    if type_name == "str":
        return value if isinstance(value, str) else _BAD
    if type_name == "list":
        if not isinstance(value, list):
            return _BAD
        if default:
            elem = _type_name(default[0])
            out = [_coerce(v, elem, None) for v in value]
            return _BAD if any(v is _BAD for v in out) else out
        return value
    return _BAD


def _type_name(value: Any) -> str:
    for typ in (bool, int, float, str, list):
        if isinstance(value, typ):
            return TYPE_NAMES[typ]
    return "any"


_OPS = {">": operator.gt, "<": operator.lt}
_RANGE_PART = re.compile(r"^(>|<)\s*(-?[\d.eE+-]+)$")


def _violates(constraint: str, value: Any, root: Path | None) -> str | None:
    """Why ``value`` breaks ``constraint`` (text for the error line), or ``None``."""
    if not constraint:
        return None
    kind, _, arg = constraint.partition(":")
    kind, arg = kind.strip(), arg.strip()
    if kind == "nonempty":
        return "must not be empty" if len(value) == 0 else None
    if kind == "choices":
        options = [o.strip() for o in arg.split("|")]
        return None if str(value) in options else f"is not one of {', '.join(options)}"
    if kind == "path":
        if value == "":
            return None
        path = Path(value) if root is None or Path(value).is_absolute() else root / value
        return None if path.exists() else f"does not exist (looked at {path})"
    if kind == "range":
        items = value if isinstance(value, list) else [value]
        for part in arg.split(","):
            part = part.strip()
            if ".." in part:
                lo_text, hi_text = part.split("..", 1)
                lo = float(lo_text) if lo_text.strip() else float("-inf")
                hi = float(hi_text) if hi_text.strip() else float("inf")
                if any(not lo <= v <= hi for v in items):
                    if hi == float("inf"):
                        return f"must be at least {lo:g}"
                    if lo == float("-inf"):
                        return f"must be at most {hi:g}"
                    return f"is outside {lo:g}..{hi:g}"
                continue
            match = _RANGE_PART.match(part)
            if not match:
                raise ParamError(f"bad range constraint {constraint!r}")
            op, bound = match.group(1), float(match.group(2))
            compare = _OPS[op]
            if any(not compare(v, bound) for v in items):
                return f"must be {op} {bound:g}"
        return None
    raise ParamError(f"unknown constraint {constraint!r}")


_CONSTRAINT = re.compile(r"\[\s*((?:range|choices|path|nonempty)[^\]]*)\]\s*$")


def parse_parameters_cell(source: str, where: str) -> dict[str, Param]:
    """Parse the flat assignments of a ``parameters`` cell into :class:`Param` records."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ParamError(f"{where}: parameters cell does not parse ({exc.msg})") from exc
    comments: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
    params: dict[str, Param] = {}
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)):
            raise ParamError(f"{where}: line {node.lineno}: parameters cell must hold "
                             "only 'name = literal' lines")
        name = node.targets[0].id
        try:
            default = ast.literal_eval(node.value)
        except ValueError as exc:
            raise ParamError(f"{where}: parameter '{name}' default is not a literal") from exc
        comment = comments.get(node.lineno, "")
        constraint = ""
        match = _CONSTRAINT.search(comment)
        if match:
            constraint = match.group(1).strip()
            comment = comment[: match.start()].strip()
        param = Param(name, default, _type_name(default), comment, constraint)
        try:
            problem = _violates(constraint, default, None) if constraint != "path" else None
        except ParamError as exc:
            raise ParamError(f"{where}: parameter '{name}': {exc}") from None
        if problem:
            raise ParamError(f"{where}: parameter '{name}' default {default!r} {problem}")
        params[name] = param
    return params


def notebook_parameters(path: str | Path) -> dict[str, Param]:
    """The parameters a jupytext percent-format notebook declares."""
    import jupytext

    path = Path(path)
    nb = jupytext.read(path)
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            return parse_parameters_cell(cell.source, str(path))
    raise ParamError(f"{path}: no code cell tagged 'parameters'")


def suggest(name: str, options: list[str] | tuple[str, ...]) -> str:
    """`` (did you mean 'x'?)`` for the closest option, or an empty string."""
    close = difflib.get_close_matches(name, list(options), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def load_yaml_layer(path: str | Path, where: str | None = None) -> dict[str, dict[str, Any]]:
    """Read a ``chapter -> {name: value}`` YAML file, refusing any other shape."""
    path = Path(path)
    where = where or str(path)
    if not path.is_file():
        raise ParamError(f"{where}: no such parameters file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "malformed"
        raise ParamError(f"{where}: malformed YAML{line}: {problem}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(
        isinstance(v, dict) or v is None for v in data.values()
    ):
        raise ParamError(f"{where}: expected a mapping of chapter -> {{parameter: value}}")
    return {str(k): dict(v or {}) for k, v in data.items()}


def parse_set(item: str) -> tuple[str, str, Any]:
    """Split ``CHAPTER.NAME=VALUE`` (VALUE read as YAML: 3, 0.1, true, [1, 2], text)."""
    if "=" not in item:
        raise ParamError(f"--set {item}: expected CHAPTER.NAME=VALUE (no '=')")
    key, raw = item.split("=", 1)
    if "." not in key:
        raise ParamError(f"--set {item}: expected CHAPTER.NAME=VALUE (no '.' in {key!r})")
    chapter, name = key.split(".", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ParamError(f"--set {item}: value is not valid YAML") from exc
    return chapter.strip(), name.strip(), value


def resolve(
    declared: dict[str, dict[str, Param]],
    layers: list[tuple[str, dict[str, dict[str, Any]]]],
    root: Path | None = None,
) -> dict[str, dict[str, Any]]:
    """Apply ``layers`` (name, chapter -> overrides) over the defaults, checking each value.

    Returns, for every chapter in ``declared``, the full resolved parameter dict.
    """
    resolved = {ch: {n: p.default for n, p in ps.items()} for ch, ps in declared.items()}
    for where, layer in layers:
        for chapter, overrides in layer.items():
            if chapter not in declared:
                raise ParamError(f"{where}: unknown chapter '{chapter}'"
                                 f"{suggest(chapter, sorted(declared))}")
            for name, value in overrides.items():
                params = declared[chapter]
                if name not in params:
                    raise ParamError(f"{where}: chapter '{chapter}' has no parameter "
                                     f"'{name}'{suggest(name, sorted(params))}")
                resolved[chapter][name] = params[name].check(value, where, chapter, root)
    for chapter, params in declared.items():
        for name, param in params.items():
            if param.constraint.startswith("path"):
                param.check(resolved[chapter][name], "parameters", chapter, root)
    return resolved
