"""Experiments over a grid: a base spec, dotted paths with lists of values, their runs.

``expand_grid`` makes the Cartesian product of the grid's value lists — the last key
varying fastest — and applies each combination's values to a deep copy of the base
spec, key by key in the grid's order (so ``optimizer.learning_rate`` after
``optimizer`` sets the learning rate of every optimizer listed).

**Which paths exist.** A path is dot-separated; a segment is a field name, or a
list index written as digits. Every segment is looked up in the spec *schema*
(``core.specs.RunSpec``, read from its Pydantic fields, so a field added there is
known here at once) and in the spec document being built:

- a field name must be a field of the model at that point — for a union such as
  ``optimizer``, the model its ``type`` names (``optimizer.momentum`` on an adam
  optimizer does not exist) — or any key of a mapping field;
- a list index must be below the list's current length (``model.layers.5.units``
  with two layers does not exist; a grid cannot grow a list, but an earlier key
  may replace it: ``model.layers`` then ``model.layers.2.units``);
- a field that the document leaves out is created as ``{}`` when it holds a spec
  model (``training.batch_size`` without a ``training`` object, or
  ``training.early_stopping.patience`` with early stopping off); one that is a
  union of several models (``optimizer``) must be given first;
- nothing can be reached inside a plain value (``dataset.x``, ``model.init.std``
  while ``init`` is the string ``"auto"``).

Anything else is a :class:`GridError` naming the path (and the combination, when
only some combinations miss it). Whether each resulting spec is *valid* (value
ranges, the dataset's shape) is the caller's check, as is the maximum number of
runs: :func:`grid_size` counts them without expanding anything.

The results side (statistics over the seeds, the best run) is ``core.grid_summary``,
re-exported here.
"""

from __future__ import annotations

import copy
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import product
from typing import Any

from pydantic import BaseModel

from core.errors import AnnlabError
from core.grid_summary import SEED_PATH, Best, Stats, SummaryRow, pick_best, summarize_over_seeds
from core.specs import RunSpec

#: RunSpec.name's length limit: run names are cut to fit it.
MAX_NAME_LENGTH = 200


class GridError(AnnlabError, ValueError):
    """A grid that cannot be expanded: ``path`` is the offending key (``field`` the
    same, as for SpecError), ``message`` says why."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.field = path
        self.message = message


@dataclass(frozen=True)
class GridPoint:
    """One run of the grid: ``params`` {path: value} in the grid's key order, and the
    spec document (a new dict, sharing nothing with the base or the grid)."""

    params: dict[str, Any]
    spec: dict[str, Any]


def grid_size(grid: Mapping[str, Any]) -> int:
    """How many runs ``grid`` makes (the product of its list lengths), after checking
    that every key is a non-empty path and every value a non-empty list."""
    if not isinstance(grid, Mapping):
        raise GridError("grid", "must be an object of {path: [values]}")
    count = 1
    for path, values in grid.items():
        if not isinstance(path, str) or not path or any(not part for part in path.split(".")):
            raise GridError(
                str(path), "a grid key is a dotted path such as optimizer.learning_rate"
            )
        if not isinstance(values, list):
            raise GridError(path, f"must be a list of values, got {type(values).__name__}")
        if not values:
            raise GridError(path, "the list of values is empty: give at least one")
        count *= len(values)
    return count


def expand_grid(base: Mapping[str, Any], grid: Mapping[str, list[Any]]) -> list[GridPoint]:
    """Every combination of ``grid`` applied to a copy of ``base`` (last key fastest).

    Check :func:`grid_size` against the run limit first: this builds them all.
    Neither argument is modified.
    """
    if not isinstance(base, Mapping):
        raise GridError("base", "must be a spec object")
    grid_size(grid)
    paths = list(grid)
    points = []
    for combination in product(*(grid[path] for path in paths)):
        params = dict(zip(paths, combination, strict=True))
        spec = copy.deepcopy(dict(base))
        for path, value in params.items():
            try:
                _assign(spec, path, copy.deepcopy(value))
            except GridError as error:
                where = f" (in the combination {_render_params(params)})" if len(paths) > 1 else ""
                raise GridError(path, error.message + where) from None
        points.append(GridPoint(params=copy.deepcopy(params), spec=spec))
    return points


# ------------------------------------------------------------ the schema walk


def _strip(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _union_members(annotation: Any) -> list[Any] | None:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [_strip(arg) for arg in typing.get_args(annotation) if arg is not type(None)]
    return None


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _type_names(model: type[BaseModel]) -> tuple[Any, ...]:
    field = model.model_fields.get("type")
    if field is None or typing.get_origin(field.annotation) is not typing.Literal:
        return ()
    return typing.get_args(field.annotation)


def _resolve(annotation: Any, value: Any, where: str) -> Any:
    """The concrete schema of ``value`` (a union narrowed by the value's ``type``)."""
    annotation = _strip(annotation)
    members = _union_members(annotation)
    if members is None:
        return annotation
    if isinstance(value, list):
        lists = [m for m in members if typing.get_origin(m) in (list, tuple)]
        return lists[0] if lists else annotation
    models = [m for m in members if _is_model(m)]
    if isinstance(value, dict) and len(models) > 1:
        kind = value.get("type")
        for model in models:
            if kind in _type_names(model):
                return model
        known = [name for model in models for name in _type_names(model)]
        raise GridError("", f"{where} has type {kind!r}; the known types are {known}")
    if len(models) == 1 and (isinstance(value, dict) or value is None):
        return models[0]
    dicts = [m for m in members if typing.get_origin(m) is dict]
    return dicts[0] if dicts and isinstance(value, dict) else annotation


def _creatable(annotation: Any, where: str) -> Any:
    """The schema of a missing field that may be created as ``{}`` (a spec model, or
    an optional one), or None. A union of several alternatives is never guessed."""
    annotation = _strip(annotation)
    members = _union_members(annotation)
    if members is not None:
        if len(members) > 1 and sum(_is_model(m) for m in members) > 1:
            raise GridError(
                "", f"{where} is not set: give it (with its type) before setting inside it"
            )
        if len(members) != 1:
            return None
        annotation = members[0]
    if _is_model(annotation) or typing.get_origin(annotation) is dict:
        return annotation
    return None


def _field(schema: Any, segment: str, where: str) -> Any:
    """The schema of key ``segment`` inside a mapping of schema ``schema``."""
    if _is_model(schema):
        fields = schema.model_fields
        if segment not in fields:
            known = ", ".join(sorted(fields))
            raise GridError("", f"{where} has no field {segment!r} (its fields: {known})")
        return fields[segment].annotation
    if typing.get_origin(schema) is dict:
        return typing.get_args(schema)[1]
    raise GridError("", f"{where} holds a value, not fields: nothing called {segment!r} inside it")


def _index(container: list[Any], segment: str, where: str) -> int:
    if not segment.isdigit():
        raise GridError("", f"{where} is a list: {segment!r} is not an index (0, 1, …)")
    index = int(segment)
    if index >= len(container):
        raise GridError(
            "",
            f"{where} has {len(container)} entries (indices 0..{len(container) - 1}), "
            f"so index {index} does not exist",
        )
    return index


def _assign(spec: dict[str, Any], path: str, value: Any) -> None:
    """Set ``path`` in ``spec`` to ``value``; GridError when the path does not exist."""
    segments = path.split(".")
    node: Any = spec
    schema: Any = RunSpec
    walked: list[str] = []
    for position, segment in enumerate(segments):
        where = ".".join(walked) or "the spec"
        schema = _resolve(schema, node, where)
        last = position == len(segments) - 1
        if isinstance(node, dict):
            child_schema = _field(schema, segment, where)
            if last:
                node[segment] = value
                return
            if node.get(segment) is None:
                created = _creatable(child_schema, ".".join([*walked, segment]))
                if created is None:
                    raise GridError(
                        "", f"{'.'.join([*walked, segment])} is not set, so it has nothing inside"
                    )
                node[segment] = {}
            node = node[segment]
        elif isinstance(node, list):
            index = _index(node, segment, where)
            args = typing.get_args(schema)
            child_schema = args[0] if args else Any
            if (
                typing.get_origin(schema) is tuple
                and len(args) > index
                and args[-1] is not Ellipsis
            ):
                child_schema = args[index]
            if last:
                node[index] = value
                return
            node = node[index]
        else:
            raise GridError("", f"{where} is {_render(node)}, a plain value: it has no {segment!r}")
        schema = child_schema
        walked.append(segment)


# -------------------------------------------------------------------- names


def _render(value: Any) -> str:
    """Compact text of a grid value: 0.1, true, sgd(lr=0.1, momentum=0.9), [16 relu, …]."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    if isinstance(value, int | str):
        return str(value)
    if isinstance(value, Mapping):
        if set(value) == {"units", "activation"}:
            return f"{_render(value['units'])} {_render(value['activation'])}"
        items = [(k, v) for k, v in value.items() if k != "type"]
        items.sort(key=lambda item: item[0] != "learning_rate")  # lr first, the rest in order
        inner = ", ".join(
            f"{'lr' if key == 'learning_rate' else key}={_render(item)}" for key, item in items
        )
        return f"{value['type']}({inner})" if "type" in value else f"({inner})"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_render(item) for item in value) + "]"
    return str(value)


def _render_params(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{path}={_render(value)}" for path, value in params.items())


def run_name(
    experiment_name: str, params: Mapping[str, Any], *, max_length: int = MAX_NAME_LENGTH
) -> str:
    """``"<experiment name> · <path>=<value>, …"``, cut with "…" to ``max_length``."""
    name = f"{experiment_name} · {_render_params(params)}" if params else experiment_name
    return name if len(name) <= max_length else name[: max_length - 1] + "…"


__all__ = [
    "MAX_NAME_LENGTH",
    "SEED_PATH",
    "Best",
    "GridError",
    "GridPoint",
    "Stats",
    "SummaryRow",
    "expand_grid",
    "grid_size",
    "pick_best",
    "run_name",
    "summarize_over_seeds",
]
