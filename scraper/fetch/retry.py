"""The retry policy: which failed attempts are tried again and how long to wait
(tenacity's conditions and exponential-with-jitter waits), ``Retry-After``, and how
long a whole host backs off after a 429 or 503.

The engine does the waiting, by re-queueing the request with a not-before time, so
no worker sleeps.
"""

from __future__ import annotations

import email.utils
import time

import tenacity

from ..config import RetrySettings
from ..exceptions import ConnectionFailed, FetchTimeout
from ..response import Response

__all__ = ["RetryPolicy", "retry_after"]


class RetryPolicy:
    """Whether a failed attempt is retried and how long to wait: tenacity's strategies."""

    def __init__(self, attempts: int, statuses: tuple[int, ...], backoff: float,
                 backoff_max: float, retry_after_max: float = 300.0) -> None:
        self.retry_after_max = retry_after_max
        self.attempts = attempts
        self.statuses = frozenset(statuses)
        self._retry = (tenacity.retry_if_exception_type((FetchTimeout, ConnectionFailed))
                       | tenacity.retry_if_result(lambda r: r.status in self.statuses))
        self._stop = tenacity.stop_after_attempt(attempts)
        self._wait = (tenacity.wait_exponential(multiplier=backoff, max=backoff_max)
                      + tenacity.wait_random(0, backoff))
        self.backoff_max = backoff_max

    @classmethod
    def from_settings(cls, s: RetrySettings) -> RetryPolicy:
        return cls(s.attempts, s.statuses, s.backoff, s.backoff_max, s.retry_after_max)

    def backoff(self, attempt: int) -> float:
        """The back-off before attempt ``attempt + 1``, whatever failed."""
        # tenacity wants a Retrying and a function; its strategies read neither
        state = tenacity.RetryCallState(None, None, (), {})  # type: ignore[arg-type]
        state.attempt_number = attempt
        return min(self._wait(state), self.backoff_max)

    def retryable(self, *, response: Response | None = None,
                  error: BaseException | None = None) -> bool:
        """Whether this kind of failure is one that is retried (whatever the attempt)."""
        if error is not None:
            return isinstance(error, (FetchTimeout, ConnectionFailed))
        return response is not None and response.status in self.statuses

    def host_backoff(self, attempt: int, response: Response) -> float:
        """How long a host that answered 429/503 should get no requests."""
        after = retry_after(response.headers.get("Retry-After"))
        if after is not None:
            return min(after, self.retry_after_max)
        return self.backoff(attempt)

    def delay(self, attempt: int, *, response: Response | None = None,
              error: BaseException | None = None, attempts: int | None = None) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None if not to retry.

        ``attempt`` counts from 1; ``attempts`` (tries in all) overrides
        ``retry.attempts`` for one request. ``Retry-After`` (seconds or an HTTP date)
        wins over the back-off when present, capped at ``retry.retry_after_max``.
        """
        # tenacity wants a Retrying and a function; its strategies read neither
        state = tenacity.RetryCallState(None, None, (), {})  # type: ignore[arg-type]
        state.attempt_number = attempt
        if error is not None:
            state.set_exception((type(error), error, error.__traceback__))
        else:
            state.set_result(response)
        if not self._retry(state):
            return None
        if (attempt >= attempts) if attempts is not None else self._stop(state):
            return None
        if response is not None:
            after = retry_after(response.headers.get("Retry-After"))
            if after is not None:
                return min(after, self.retry_after_max)
        return min(self._wait(state), self.backoff_max)


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())
