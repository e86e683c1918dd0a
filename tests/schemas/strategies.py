"""Hypothesis strategies for payload models, derived from the models' own field constraints."""

import types
import typing
from typing import Any

from annotated_types import Ge, MaxLen
from hypothesis import strategies as st
from pydantic import BaseModel

from schemas.envelope import Envelope
from schemas.events import EVENT_TYPES, EventSpec

SHORT = 40  # generated strings stay short: the limits are tested elsewhere, speed matters here


def _limit(metadata: list[Any], kind: type[MaxLen] | type[Ge], default: int) -> int:
    for item in metadata:
        if isinstance(item, kind):
            limit = item.max_length if isinstance(item, MaxLen) else item.ge
            assert isinstance(limit, int), item  # the payload models' limits are whole numbers
            return limit
    return default


def _for_annotation(annotation: Any, metadata: list[Any]) -> st.SearchStrategy[Any]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return payloads(annotation)
    if annotation is type(None):
        return st.none()
    if annotation is str:
        return st.text(max_size=min(SHORT, _limit(metadata, MaxLen, SHORT)))
    if annotation is int:
        return st.integers(min_value=_limit(metadata, Ge, 0), max_value=2**53)
    if typing.get_origin(annotation) is list:
        (item,) = typing.get_args(annotation)
        size = min(5, _limit(metadata, MaxLen, 5))
        return st.lists(_for_annotation(item, []), max_size=size)
    if isinstance(annotation, types.UnionType):
        return st.one_of([_for_annotation(arg, metadata) for arg in typing.get_args(annotation)])
    raise NotImplementedError(f"no strategy for {annotation!r}: extend tests/schemas/strategies.py")


def payloads(model: type[BaseModel]) -> st.SearchStrategy[BaseModel]:
    fields = {
        name: _for_annotation(info.annotation, info.metadata)
        for name, info in model.model_fields.items()
    }
    return st.fixed_dictionaries(fields).map(lambda kw: model(**kw))


def payload_for(spec: EventSpec) -> st.SearchStrategy[Any]:
    return st.binary(max_size=200) if spec.model is None else payloads(spec.model)


header_text = st.text(max_size=SHORT)
letter_ids = st.text(min_size=1, max_size=60).filter(lambda s: 0 < len(s.encode()) <= 256)


@st.composite
def envelopes(draw: st.DrawFn, type: str) -> Envelope:
    return Envelope(
        type=type,
        firm=draw(header_text),
        user=draw(header_text),
        conn=draw(header_text),
        gw=draw(header_text),
        ts=draw(st.integers(min_value=0, max_value=2**53)),
        v=EVENT_TYPES[type].version,
    )
