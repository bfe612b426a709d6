"""aiogram, imported with its Telegram types' validators built on first use instead of all at import.

Import this module before anything imports aiogram (it imports aiogram itself). aiogram's `aiogram.types`
ends with a loop that calls `model_rebuild` on each of its ~500 pydantic models, each building its own
validator for the whole graph of types it reaches: 1.8 s of import and ~110 MiB of RSS on an idle machine
(issue 17), most of it for types a bot never sees. Here, while aiogram is imported, pydantic models are
created with `defer_build` and that loop only records the namespace aiogram would have rebuilt each model
with (`__pydantic_parent_namespace__`, which pydantic's own deferred build uses); the first validation of a
type builds it with exactly the schema the eager rebuild would have made (the first Update: ≈ 0.2 s). The
`Response[T]` classes aiogram makes per call resolve names in that namespace too (`resolve_with_types`;
aiogram_channel.py holds them).
Pydantic itself is left as it was once aiogram is in.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pydantic import BaseModel

_namespace: dict[str, Any] = {}
"""The names aiogram resolves its types' forward references with (its `_types_namespace`)."""


def types_namespace() -> dict[str, Any] | None:
    """aiogram's types namespace when its models were deferred here; None when they were built eagerly."""
    return _namespace or None


def resolve_with_types(model: type[BaseModel]) -> None:
    """Let a deferred aiogram model (a `Response[T]`) resolve names as aiogram's eager import would have, when
    it is built on first use."""
    if _namespace and not model.__pydantic_complete__:
        model.__pydantic_parent_namespace__ = {**_namespace, **(model.__pydantic_parent_namespace__ or {})}


@contextmanager
def _types_built_on_first_use() -> Iterator[None]:
    eager = BaseModel.__dict__["model_rebuild"]
    had_defer = "defer_build" in BaseModel.model_config
    previous = BaseModel.model_config.get("defer_build")

    def record(cls: type[BaseModel], *, _types_namespace: Any = None, **kwargs: Any) -> bool | None:
        if _types_namespace is not None and not kwargs.get("force"):
            _namespace.update(_types_namespace)
            cls.__pydantic_parent_namespace__ = _namespace
            return None
        depth = kwargs.pop("_parent_namespace_depth", 2) + 1
        return eager.__func__(cls, _types_namespace=_types_namespace, _parent_namespace_depth=depth, **kwargs)

    BaseModel.model_config["defer_build"] = True
    BaseModel.model_rebuild = classmethod(record)  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        BaseModel.model_rebuild = eager  # type: ignore[method-assign]
        if had_defer:
            BaseModel.model_config["defer_build"] = previous  # type: ignore[typeddict-item]
        else:
            BaseModel.model_config.pop("defer_build", None)


if "aiogram" not in sys.modules:  # imported eagerly already (a test harness): nothing left to defer
    with _types_built_on_first_use():
        import aiogram
        import aiogram.client.session.aiohttp
        import aiogram.methods
        import aiogram.types

    # The Bot API methods are built on first use too, and a model's build resolves the names of every type
    # it reaches in its own parent namespace: theirs gets aiogram's types namespace as well.
    for _name in aiogram.methods.__all__:
        _method = getattr(aiogram.methods, _name)
        if isinstance(_method, type) and issubclass(_method, BaseModel):
            _method.__pydantic_parent_namespace__ = {
                **_namespace,
                **(_method.__pydantic_parent_namespace__ or {}),
            }
