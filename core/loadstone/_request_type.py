"""Why an image is wanted: the request types of the pool, in rank order."""

from __future__ import annotations

from enum import Enum

__all__ = ["RequestType"]


class RequestType(str, Enum):
    """Why an image is wanted; decides its rank in the pool."""

    INTERACTION = "interaction"
    THUMBNAIL = "thumbnail"
    PREFETCH = "prefetch"
    COMPUTE = "compute"

    @classmethod
    def parse(cls, value: RequestType | str) -> RequestType:
        """Accept the member or its name/value in any case."""
        if isinstance(value, RequestType):
            return value
        try:
            return cls(str(value).lower())
        except ValueError:
            names = ", ".join(member.name for member in cls)
            raise ValueError(f"unknown request type {value!r}; expected one of {names}") from None
