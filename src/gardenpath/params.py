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
    rules = ["a", "b"]   # rules to compare [choices: a | b | c] [nonempty]
    profile = ""         # results to read [choices: "" | smoke | cpu]

Besides its annotations, every value is held to its type: ints fit in 64 bits, floats are
finite, strings are one line of at most :data:`MAX_STR` printable characters, and a list
whose default is not empty may not be empty. A constraint on a list applies to each item.
YAML is read by the 1.2 core rules (``010`` and ``1:30`` are text, not 8 and 90), with no
anchors or aliases, so a value means what it says and a small file stays small.

Values are layered profile -> ``--params`` file -> ``--set``; each layer is checked
against the notebook before any kernel starts, and a bad one raises :class:`ParamError`
with one line naming the file or flag, the chapter and the parameter.
"""

from __future__ import annotations

import ast
import difflib
import io
import math
import operator
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

TYPE_NAMES = {bool: "bool", int: "int", float: "float", str: "str", list: "list"}
#: Longest string value a parameter takes, and most items in a list value.
MAX_STR = 500
MAX_ITEMS = 1000
#: Largest parameters file read (bytes); a bigger one is refused unread.
MAX_FILE_BYTES = 1 << 20
#: Integers are held to 64 bits (torch, numpy and papermill all take them).
INT_LIMIT = 2**63
#: Characters of a value echoed in a message.
ECHO = 60


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
            raise ParamError(f"{prefix}: expected {self.type}, got {got} {short(value)}")
        value = coerced
        problem = _unfit(value, self.type, self.default)
        for constraint in constraints(self.constraint):
            problem = problem or _violates(constraint, value, root)
        if problem:
            raise ParamError(f"{prefix}: {short(value)} {problem}")
        return value


def short(value: Any) -> str:
    """``repr(value)`` cut to :data:`ECHO` characters: a message never echoes a huge value."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return f"<an integer of about {int(value.bit_length() * 0.30103)} digits>"
    if isinstance(value, (list, dict)) and len(value) > ECHO:
        return f"<a {type(value).__name__} of {len(value)} items>"
    try:
        text = repr(value)
    except ValueError:
        text = f"<a {type(value).__name__}>"
    return text if len(text) <= ECHO else text[: ECHO - 3] + "..."


def cut(text: str, limit: int = ECHO) -> str:
    """``text`` on one line, cut to ``limit`` characters (for naming a flag's value)."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _unfit(value: Any, type_name: str, default: Any) -> str | None:
    """Why a value of the right type is still no value for a parameter, or ``None``.

    Ints beyond 64 bits, non-finite floats, strings with line breaks or other control
    characters (they would end the page's provenance block) or longer than
    :data:`MAX_STR`, and an empty list where the default is not empty.
    """
    if isinstance(value, list):
        if len(value) > MAX_ITEMS:
            return f"has more than {MAX_ITEMS} items"
        if not value and default:
            return "must not be empty"
        elem = _type_name(default[0]) if default else "any"
        for item in value:
            problem = _unfit(item, elem, None)
            if problem:
                return f"has an item that {problem.removeprefix('is ')}"
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return None if -INT_LIMIT < value < INT_LIMIT else "is out of range (64-bit integers)"
    if isinstance(value, float):
        return None if math.isfinite(value) else "is not a finite number"
    if isinstance(value, str):
        if len(value) > MAX_STR:
            return f"is longer than {MAX_STR} characters"
        if _CONTROL.search(value):
            return "holds a line break or control character (one line of text only)"
    return None


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
        try:
            return float(value)
        except OverflowError:  # an int beyond any float: ``_unfit`` refuses infinity
            return math.inf if value > 0 else -math.inf
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
        options = [o.strip().strip("'\"") for o in arg.split("|")]
        items = value if isinstance(value, list) else [value]
        for item in items:
            if str(item) not in options:
                shown = ", ".join(repr(o) if not o else o for o in options)
                where = f"item {short(item)} " if isinstance(value, list) else ""
                return f"{where}is not one of {shown}"
        return None
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


_CONSTRAINT = re.compile(r"(?:\[\s*(?:range|choices|path|nonempty)[^\]]*\]\s*)+$")


def constraints(text: str) -> list[str]:
    """The constraints of an annotation: ``[a] [b]`` (as stored: ``a; b``) -> ``[a, b]``."""
    return [c.strip() for c in text.split(";") if c.strip()]


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
            groups = re.findall(r"\[([^\]]*)\]", match.group(0))
            constraint = "; ".join(g.strip() for g in groups)
            comment = comment[: match.start()].strip()
        param = Param(name, default, _type_name(default), comment, constraint)
        try:
            problem = None
            for one in constraints(constraint):
                problem = problem or (_violates(one, default, None) if one != "path" else None)
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
    if not isinstance(name, str) or len(name) > 100:
        return ""
    close = difflib.get_close_matches(name, list(options), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader with the YAML 1.2 core schema's plain scalars and no aliases.

    YAML 1.1 reads ``010`` as 8, ``1:30`` as 90, ``no`` as false and ``1e3`` as text; here
    ints are plain decimals (or ``0x``/``0o``), bools are true/false, floats include
    exponents, and everything else is text. Anchors and aliases are refused: a few hundred
    bytes of nested aliases would otherwise expand to gigabytes.
    """

    def compose_node(self, parent, index):  # type: ignore[no-untyped-def]
        if self.check_event(yaml.AliasEvent) or (
                self.check_event(yaml.NodeEvent) and self.peek_event().anchor is not None):
            event = self.peek_event()
            raise yaml.MarkedYAMLError(problem="anchors and aliases (& and *) are not allowed",
                                       problem_mark=event.start_mark)
        return super().compose_node(parent, index)


_StrictLoader.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in (
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?(?:0|[1-9][0-9]*)|0x[0-9a-fA-F]+|0o[0-7]+)$",
     list("-+0123456789")),
    ("tag:yaml.org,2002:float",
     r"^(?:[-+]?(?:\.[0-9]+|(?:0|[1-9][0-9]*)(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
     r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$", list("-+0123456789.")),
):
    _StrictLoader.add_implicit_resolver(_tag, re.compile(_pattern), _first)


def _construct_float(loader: yaml.SafeLoader, node: yaml.Node) -> float:
    text = loader.construct_scalar(node).lower()
    return float(text.replace(".inf", "inf").replace(".nan", "nan"))


def _construct_int(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    text = loader.construct_scalar(node)
    if len(text) > 1000:  # Python refuses to read ints beyond 4,300 digits
        raise yaml.constructor.ConstructorError(
            problem=f"an integer of {len(text)} digits, beyond any parameter's range",
            problem_mark=node.start_mark)
    return int(text, 0) if text.lstrip("+-").startswith(("0x", "0o")) else int(text)


_StrictLoader.add_constructor("tag:yaml.org,2002:float", _construct_float)
_StrictLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def read_yaml(text: str) -> Any:
    """``text`` read by :class:`_StrictLoader` (raises ``yaml.YAMLError``)."""
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a safe loader


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    line = f" at line {mark.line + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or "malformed"
    return f"malformed YAML{line}: {problem}"


def load_yaml_layer(path: str | Path, where: str | None = None) -> dict[str, dict[str, Any]]:
    """Read a ``chapter -> {name: value}`` YAML file, refusing any other shape."""
    path = Path(path)
    where = where or str(path)
    if path.is_dir():
        raise ParamError(f"{where}: is a folder, not a parameters file")
    if not path.is_file():
        raise ParamError(f"{where}: no such parameters file")
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ParamError(f"{where}: {size} bytes, more than a parameters file may hold "
                             f"({MAX_FILE_BYTES})")
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ParamError(f"{where}: not a text file (not UTF-8)") from None
    except OSError as exc:
        raise ParamError(f"{where}: cannot be read ({exc.strerror})") from None
    if "\0" in text:
        raise ParamError(f"{where}: not a text file (holds NUL bytes)")
    try:
        data = read_yaml(text)
    except yaml.YAMLError as exc:
        raise ParamError(f"{where}: {_yaml_problem(exc)}") from None
    if data is None:
        return {}
    shape = f"{where}: expected a mapping of chapter -> {{parameter: value}}"
    if not isinstance(data, dict) or not all(
        isinstance(v, dict) or v is None for v in data.values()
    ):
        raise ParamError(shape)
    for chapter, values in data.items():
        if not isinstance(chapter, str) or not all(isinstance(k, str) for k in values or {}):
            bad = chapter if not isinstance(chapter, str) else next(
                k for k in values if not isinstance(k, str))
            raise ParamError(f"{shape}; the key {short(bad)} is not a name")
    return {k: dict(v or {}) for k, v in data.items()}


def parse_set(item: str) -> tuple[str, str, Any]:
    """Split ``CHAPTER.NAME=VALUE`` (VALUE read as YAML: 3, 0.1, true, [1, 2], text)."""
    shown = cut(item)
    if "=" not in item:
        raise ParamError(f"--set {shown}: expected CHAPTER.NAME=VALUE (no '=')")
    key, raw = item.split("=", 1)
    if "." not in key:
        raise ParamError(f"--set {shown}: expected CHAPTER.NAME=VALUE (no '.' in {short(key)})")
    chapter, name = key.split(".", 1)
    try:
        value = read_yaml(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ParamError(f"--set {shown}: value is not valid YAML "
                         f"({_yaml_problem(exc).removeprefix('malformed YAML')[2:]})") from None
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
                raise ParamError(f"{where}: unknown chapter {short(chapter)}"
                                 f"{suggest(chapter, sorted(declared))}")
            for name, value in overrides.items():
                params = declared[chapter]
                if name not in params:
                    raise ParamError(f"{where}: chapter '{chapter}' has no parameter "
                                     f"{short(name)}{suggest(name, sorted(params))}")
                resolved[chapter][name] = params[name].check(value, where, chapter, root)
    for chapter, params in declared.items():
        for name, param in params.items():
            if "path" in constraints(param.constraint):
                param.check(resolved[chapter][name], "parameters", chapter, root)
    return resolved
