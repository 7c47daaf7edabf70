"""`erp_flow`: Prefect's `@flow`, with parameters sent to the API without importing FastAPI.

Prefect's `Flow.serialize_parameters` imports `fastapi.encoders` for every flow run (about
0.2 s of a one-row import, README "Start-up") to turn the parameters into JSON for the API.
erp-sync's flows take strings and `ImportOptions` (a pydantic model of strings, numbers, paths
and a datetime), which pydantic-core (imported by Prefect anyway) turns into the same JSON values;
anything it cannot encode goes to Prefect's own method, as before.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from prefect import Flow
from prefect.client.schemas.objects import State
from prefect.futures import PrefectFuture
from pydantic import BaseModel
from pydantic_core import PydanticSerializationError, to_jsonable_python

P = ParamSpec("P")
R = TypeVar("R")


class ErpSyncFlow(Flow[P, R]):
    """A Prefect flow whose parameters are encoded by pydantic-core (no FastAPI import)."""

    def serialize_parameters(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """The parameters as JSON values for the API (Prefect's encoder for anything unusual)."""
        if not all(_plain(value) for value in parameters.values()):
            return super().serialize_parameters(parameters)
        try:
            return {key: to_jsonable_python(value) for key, value in parameters.items()}
        except (PydanticSerializationError, TypeError, ValueError, RecursionError):
            return super().serialize_parameters(parameters)


def _plain(value: Any) -> bool:
    """A value of the kinds erp-sync's flows take: a scalar, a pydantic model or a dataclass
    instance (never a Prefect state or future, which Prefect sends as a placeholder)."""
    if value is None or isinstance(value, str | int | float | bool):
        return True
    if isinstance(value, State | PrefectFuture):
        return False
    if isinstance(value, BaseModel):
        return True
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


def erp_flow(**options: Any) -> Callable[[Callable[P, R]], ErpSyncFlow[P, R]]:
    """`@flow(**options)` making an `ErpSyncFlow`."""

    def decorate(fn: Callable[P, R]) -> ErpSyncFlow[P, R]:
        return ErpSyncFlow(fn=fn, **options)

    return decorate
