"""What crosses the core's public surface is typed: no ``dict[str, Any]`` (nor a bare ``dict`` or
``Any``) stands for domain data in the signatures of the client, the views and the scheduling
package. Their data has models (``hpsearch.protocol``, ``hpsearch.results``); an untyped dict
there is what the wire, the CLI and the dashboard each used to re-parse their own way."""

from __future__ import annotations

import builtins
import importlib
import inspect
import pkgutil
import types
import typing
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import hpsearch.scheduling
import hpsearch.views

PACKAGES = (hpsearch.scheduling, hpsearch.views)
MODULES = ("hpsearch.client",)
# Parameters whose Any is not domain data: pass-through keyword arguments of an HTTP call.
PASS_THROUGH = {"kwargs", "args"}


def _modules() -> Iterator[types.ModuleType]:
    for name in MODULES:
        yield importlib.import_module(name)
    for package in PACKAGES:
        yield package
        for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
            yield importlib.import_module(info.name)


def _public_functions() -> Iterator[tuple[str, Callable[..., Any]]]:
    """Every public function and public method of a public class defined in those modules."""
    seen: set[int] = set()
    for module in _modules():
        for name, value in vars(module).items():
            if name.startswith("_") or getattr(value, "__module__", None) != module.__name__:
                continue
            if inspect.isfunction(value) and id(value) not in seen:
                seen.add(id(value))
                yield f"{module.__name__}.{name}", value
            elif inspect.isclass(value) and id(value) not in seen:
                seen.add(id(value))
                for attr, member in vars(value).items():
                    if attr.startswith("_") and attr != "__init__":
                        continue
                    function = _function_of(member)
                    if function is not None:
                        yield f"{module.__name__}.{name}.{attr}", function


def _function_of(member: object) -> Callable[..., Any] | None:
    if isinstance(member, staticmethod | classmethod):
        member = member.__func__
    if isinstance(member, property):
        member = member.fget
    return member if inspect.isfunction(member) else None


def untyped(annotation: object) -> bool:
    """Is ``annotation``, or any part of it, a ``dict[str, Any]``, a bare ``dict`` or ``Any``?"""
    if annotation is Any or annotation is dict or annotation is typing.Dict:  # noqa: UP006
        return True
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is dict and len(args) == 2 and args[1] is Any:
        return True
    if origin is typing.Annotated:
        return untyped(args[0])
    return any(untyped(arg) for arg in args if arg is not Ellipsis)


class _Namespace(dict[str, Any]):
    """A function's globals; a name imported only for type checking stands for a type of its
    own (it is no dict and no Any: those are imported at run time wherever they are used)."""

    def __missing__(self, name: str) -> object:
        if name.startswith("_") or hasattr(builtins, name):
            raise KeyError(name)  # builtins are looked up after this namespace
        return type(name, (), {})


def hints_of(function: Callable[..., Any]) -> dict[str, Any]:
    """``typing.get_type_hints``, also where an annotation names a ``TYPE_CHECKING`` import."""
    try:
        return typing.get_type_hints(function, include_extras=True)
    except NameError:
        namespace = _Namespace(vars(importlib.import_module(function.__module__)))
        return {
            name: eval(hint, {}, namespace) if isinstance(hint, str) else hint
            for name, hint in function.__annotations__.items()
        }


def offences(function: Callable[..., Any]) -> list[str]:
    hints = hints_of(function)
    names = set(inspect.signature(function).parameters) - PASS_THROUGH
    return [
        f"{'returns' if name == 'return' else name}: {hint}"
        for name, hint in hints.items()
        if (name == "return" or name in names) and untyped(hint)
    ]


FUNCTIONS = dict(_public_functions())


def test_the_walk_finds_the_surface() -> None:
    """The walk reaches what it should (a walk that found nothing would pass vacuously)."""
    for name in (
        "hpsearch.client.ServiceClient.study",
        "hpsearch.client.ProtocolClient.claim",
        "hpsearch.scheduling._scheduler.Scheduler.claim",
        "hpsearch.scheduling._workers.WorkerBook.list",
        "hpsearch.views._summary.summary",
        "hpsearch.views._pages.trial_page",
    ):
        assert name in FUNCTIONS, name


def test_the_check_sees_an_untyped_signature() -> None:
    def made_up(data: dict[str, Any], n: int) -> list[dict[str, Any]] | None:
        return None

    assert [o.split(":")[0] for o in offences(made_up)] == ["data", "returns"]
    assert not untyped(dict[str, int])
    assert untyped(dict)
    assert untyped(Any)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_public_signatures_are_typed(name: str) -> None:
    assert offences(FUNCTIONS[name]) == [], f"{name} takes or returns untyped domain data"
