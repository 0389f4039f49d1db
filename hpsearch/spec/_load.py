"""Reading a study spec from YAML or JSON, with ``--set a.b=value`` overrides.

All failures become one :class:`SpecError` listing every problem with its dotted field path, so a
user fixes the whole file in one go instead of one error per attempt.
"""

from __future__ import annotations

import copy
import difflib
import functools
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from hpsearch.errors import SpecError
from hpsearch.spec._model import StudySpec
from hpsearch.spec._problem import FieldProblem
from hpsearch.spec._ranges import SPEC_FORM_FIELDS, SearchRange

BUNDLED_DIR = Path(__file__).resolve().parent.parent.parent / "studies"


def parse_spec(data: object, source: str | None = None) -> StudySpec:
    """Validate already-parsed spec data (a mapping) into a :class:`StudySpec`."""
    if not isinstance(data, Mapping):
        kind = type(data).__name__ if data is not None else "nothing"
        problem = f"a spec must be a mapping of sections (dataset, model, train, ...), got {kind}"
        raise SpecError([("", problem)], source)
    try:
        return StudySpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_describe(exc), source) from None


MAX_DEPTH = 32  # of nested mappings and lists in a spec (a real one has 4)
# values in a spec, YAML aliases counted as often as they are used (a real one has a few hundred;
# a 521-byte "billion laughs" document has 10**9 and took the server minutes to walk)
MAX_NODES = 100_000


def read_spec_text(text: str, source: str, *, is_json: bool = False) -> object:
    """Parse spec text as JSON or YAML; a syntax error names the line and column, and nesting
    deeper than :data:`MAX_DEPTH` is refused (it cannot be a spec, and parsing it would recurse
    as deep)."""
    too_deep = SpecError([("", f"nested deeper than {MAX_DEPTH} levels")], source)
    try:
        data = json.loads(text) if is_json else yaml.safe_load(text)
    except RecursionError:
        raise too_deep from None
    except json.JSONDecodeError as exc:
        raise SpecError(
            [("", f"not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}")], source
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError([("", f"not valid YAML{where}: {problem}")], source) from None
    deepest, nodes = _shape(data)
    if deepest > MAX_DEPTH:
        raise too_deep
    if nodes > MAX_NODES:
        problem = f"more than {MAX_NODES:,} values (YAML aliases counted each time they are used)"
        raise SpecError([("", problem)], source)
    if data is None or data == {}:
        problem = (
            "the spec is empty: name at least its data (dataset: {name: ...}); every other "
            "field has a default"
        )
        raise SpecError([("", problem)], source)
    return data


def _shape(data: object) -> tuple[int, int]:
    """How deeply ``data`` nests mappings and lists, and how many values it holds, aliases
    counted at each use (iteratively, stopping past either bound: a bounded walk)."""
    deepest, nodes, stack = 0, 0, [(data, 0)]
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if isinstance(node, Mapping):
            stack += [(v, depth + 1) for v in node.values()]
        elif isinstance(node, list):
            stack += [(v, depth + 1) for v in node]
        else:
            deepest = max(deepest, depth)
            continue
        deepest = max(deepest, depth + 1)
        if deepest > MAX_DEPTH or nodes + len(stack) > MAX_NODES:
            return deepest, max(nodes + len(stack), nodes)
    return deepest, nodes


def load_spec(path: str | Path, overrides: Iterable[str] = ()) -> StudySpec:
    """Load a spec file (YAML, or JSON by suffix) and apply ``key.path=value`` overrides.

    A bare name such as ``digits`` that is not a file refers to the spec shipped in ``studies/``.
    """
    file = resolve_spec_path(path)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise SpecError([("", f"cannot read the file: {exc.strerror}")], str(file)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError([("", "not valid YAML: the file is not UTF-8 text")], str(file)) from None
    data = read_spec_text(text, str(file), is_json=file.suffix.lower() == ".json")
    items = list(overrides)
    if not items or not isinstance(data, dict):
        return parse_spec(data, str(file))
    changed = apply_overrides(data, items, str(file))
    try:
        return parse_spec(changed, str(file))
    except SpecError as exc:
        raise _blame_overrides(exc, data, items) from None


def resolve_spec_path(path: str | Path) -> Path:
    file = Path(path).expanduser()
    if file.exists():
        return file
    bundled = BUNDLED_DIR / f"{path}.yaml"
    if bundled.exists():
        return bundled
    names = ", ".join(sorted(p.stem for p in BUNDLED_DIR.glob("*.yaml")))
    raise SpecError([("", f"no such file (bundled specs: {names})")], str(file))


def apply_overrides(data: dict[str, Any], overrides: Iterable[str], source: str) -> dict[str, Any]:
    """Return a copy of ``data`` with each ``a.b.c=value`` set; values are parsed as YAML.

    A problem with the overrides themselves names the ``--set`` it comes from."""
    updates: dict[str, Any] = {}
    given: dict[str, str] = {}
    problems: list[tuple[str, str]] = []
    for item in overrides:
        key, sep, value_text = item.partition("=")
        if not sep or not key.strip():
            problems.append(("--set", f"{item!r} is not of the form key.path=value"))
            continue
        try:
            updates[key.strip()] = yaml.safe_load(value_text)
        except yaml.YAMLError:
            updates[key.strip()] = value_text
        given[key.strip()] = item
    if problems:
        raise SpecError(problems, _after_set(source))
    return _set_paths(data, updates, _after_set(source), given)


def _after_set(source: str) -> str:
    return f"{source} after --set"


def _blame_overrides(exc: SpecError, data: dict[str, Any], overrides: list[str]) -> SpecError:
    """``exc`` (the spec with ``overrides`` is invalid) with each problem the file alone does not
    have marked as coming from the overrides: those on the field an override sets (or inside
    it, or around it), else all of them."""
    source = exc.source or ""
    try:
        parse_spec(data, source)
        in_file: set[tuple[str, str]] = set()
    except SpecError as alone:
        in_file = set(alone.problems)
    keys = {item.partition("=")[0].strip(): item for item in overrides}
    problems, blamed = [], False
    for path, message in exc.problems:
        if (path, message) not in in_file:
            culprits = [item for key, item in keys.items() if _overlaps(key, path)] or overrides
            message += " (from " + ", ".join(f"--set {item}" for item in culprits) + ")"
            blamed = True
        problems.append((path, message))
    return SpecError(problems, _after_set(source) if blamed else source)


def _overlaps(key: str, path: str) -> bool:
    """Whether the field ``path`` is the field ``key``, inside it, or a section around it."""
    return bool(path) and ((key + ".").startswith(path + ".") or path.startswith(key + "."))


def spec_with(spec: StudySpec, updates: Mapping[str, Any]) -> StudySpec:
    """A copy of ``spec`` with dotted fields replaced (``{"train.lr": 0.1}``), validated again."""
    return parse_spec(_set_paths(spec.model_dump(mode="json"), updates, spec.name), spec.name)


def _set_paths(
    data: Mapping[str, Any],
    updates: Mapping[str, Any],
    source: str,
    given: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A copy of ``data`` with ``updates`` set; ``given``: the ``--set`` item of each key."""
    result: dict[str, Any] = json.loads(json.dumps(data))  # deep copy of plain data
    problems: list[tuple[str, str]] = []
    for key, value in updates.items():
        parts = key.split(".")
        node = result
        for depth, part in enumerate(parts[:-1]):
            if part not in node:  # a section left to its defaults: one field of it changes
                node[part] = _default_section(parts[: depth + 1])
            child = node[part]
            if not isinstance(child, dict):
                where = f" (from --set {given[key]})" if given and key in given else ""
                problems.append((".".join(parts[: depth + 1]), f"is a value, not a section{where}"))
                break
            node = child
        else:
            node[parts[-1]] = value
    if problems:
        raise SpecError(problems, source)
    return result


@functools.cache
def _defaults() -> dict[str, Any]:
    return StudySpec().model_dump(mode="json")


def _default_section(path: list[str]) -> dict[str, Any]:
    """A copy of the default value of the section at ``path``; {} where there is none."""
    node: Any = _defaults()
    for part in path:
        node = node.get(part) if isinstance(node, dict) else None
    return copy.deepcopy(node) if isinstance(node, dict) else {}


def _describe(exc: ValidationError) -> list[tuple[str, str]]:
    problems = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, FieldProblem):
            problems.append((".".join([*loc, cause.path]), str(cause)))
            continue
        path = ".".join(loc)
        if error["type"] == "extra_forbidden":
            problems.append((path, _unknown_field_message(loc)))
            continue
        message = error["msg"]
        value = error.get("input")
        if not isinstance(value, dict | list) and error["type"] != "missing":
            message += f" (got {value!r})"
        problems.append((path, message))
    return problems


def _unknown_field_message(loc: list[str]) -> str:
    """Name the unknown field and suggest the closest real one, if any is close."""
    model: type[BaseModel] = StudySpec
    for part in loc[:-1]:
        annotation = model.model_fields[part].annotation if part in model.model_fields else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return "unknown field"
        model = annotation
    known = list(SPEC_FORM_FIELDS if model is SearchRange else model.model_fields)
    close = difflib.get_close_matches(loc[-1], known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown field{hint}; known fields: {', '.join(known)}"
