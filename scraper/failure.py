"""Failure: what an errback receives when a request did not end in a handled response."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .http import Request
    from .response import Response

__all__ = ["Failure"]


@dataclass(slots=True)
class Failure:
    """The request, the exception and, if there was one, the response."""

    request: Request
    exception: BaseException
    response: Response | None = None

    @property
    def kind(self) -> str:
        """The stats key of the failure (``timeout``, ``http-404``, ``robots``...)."""
        kind = getattr(self.exception, "kind", None)
        return kind if isinstance(kind, str) else type(self.exception).__name__

    def __repr__(self) -> str:
        return f"<Failure {self.kind} {self.request.url}>"
