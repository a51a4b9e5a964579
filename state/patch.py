"""Typed patch operations on a session document (JSON Patch terms, RFC 6902).

Agents return a list of :data:`PatchOp`; the controller applies it to the loaded
document with :func:`apply_patch` and commits the result with a version check.
``add``, ``replace`` and ``remove`` follow RFC 6902 over RFC 6901 JSON Pointers;
``increment`` (add a number) and ``append`` (push onto an array) are Laneway's
two extensions.
"""

from __future__ import annotations

import copy
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from state.errors import PatchError


class _Op(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(pattern=r"^(/([^~/]|~[01])*)+$")


class Add(_Op):
    op: Literal["add"] = "add"
    value: Any


class Replace(_Op):
    op: Literal["replace"] = "replace"
    value: Any


class Remove(_Op):
    op: Literal["remove"] = "remove"


class Increment(_Op):
    op: Literal["increment"] = "increment"
    value: int | float = 1


class Append(_Op):
    op: Literal["append"] = "append"
    value: Any


PatchOp = Annotated[Union[Add, Replace, Remove, Increment, Append], Field(discriminator="op")]
PATCH_ADAPTER: TypeAdapter[list[PatchOp]] = TypeAdapter(list[PatchOp])


def _tokens(path: str) -> list[str]:
    return [t.replace("~1", "/").replace("~0", "~") for t in path.split("/")[1:]]


def _parent(doc: Any, path: str) -> tuple[Any, str]:
    tokens = _tokens(path)
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            raise PatchError(path, f"no such location {token!r}")
    return node, tokens[-1]


def _apply_one(doc: Any, op: _Op) -> None:
    parent, last = _parent(doc, op.path)
    if isinstance(parent, dict):
        exists = last in parent
        current = parent.get(last)
    elif isinstance(parent, list):
        if last == "-" and op.op == "add":
            parent.append(op.value)
            return
        if not last.isdigit():
            raise PatchError(op.path, "array index must be a number")
        exists = int(last) < len(parent)
        current = parent[int(last)] if exists else None
    else:
        raise PatchError(op.path, "parent is neither an object nor an array")

    if op.op == "add":
        if isinstance(parent, list):
            if int(last) > len(parent):
                raise PatchError(op.path, "index out of range")
            parent.insert(int(last), op.value)
        else:
            parent[last] = op.value
        return
    if not exists:
        raise PatchError(op.path, f"cannot {op.op}: nothing at this path")
    if op.op == "replace":
        parent[int(last) if isinstance(parent, list) else last] = op.value
    elif op.op == "remove":
        del parent[int(last) if isinstance(parent, list) else last]
    elif op.op == "increment":
        if isinstance(current, bool) or not isinstance(current, (int, float)):
            raise PatchError(op.path, "increment needs a number at this path")
        parent[int(last) if isinstance(parent, list) else last] = current + op.value
    elif op.op == "append":
        if not isinstance(current, list):
            raise PatchError(op.path, "append needs an array at this path")
        current.append(op.value)


def apply_patch(doc: dict[str, Any], ops: list[PatchOp]) -> dict[str, Any]:
    """Apply ``ops`` in order to a deep copy of ``doc`` and return the copy.

    All or nothing: the input is never modified.

    Raises:
        PatchError: an operation does not fit the document; ``.path`` names it.
    """
    result = copy.deepcopy(doc)
    for op in ops:
        _apply_one(result, op)
    return result
