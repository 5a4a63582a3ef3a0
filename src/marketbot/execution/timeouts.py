"""Order timeouts: an order that has not filled by its deadline is cancelled, then re-read.

:class:`OrderTimeoutHandler` watches orders on one or more exchanges. Deadlines are read on
the injected :class:`~marketbot.core.clock.Clock`, never on the wall clock, so a replay or a
test moves time itself. It serves two callers:

- the bot's loop, which must never wait: it :meth:`~OrderTimeoutHandler.watch` es an order
  after placing it and calls :meth:`~OrderTimeoutHandler.poll` (one status fetch per watched
  order) or :meth:`~OrderTimeoutHandler.check_deadlines` (no fetch unless a deadline passed)
  once per iteration; both return at once with the outcomes that are now settled;
- code that can wait: :meth:`~OrderTimeoutHandler.monitor_order` polls the exchange every
  ``poll_interval_seconds`` through an injected ``sleep`` until the order ends or its
  deadline passes; :meth:`~OrderTimeoutHandler.monitor_order_async` does the same on a
  worker thread and returns a :class:`~concurrent.futures.Future`.

At the deadline the handler cancels the rest of the order at priority 1 (emergency) and
then fetches it again, also at priority 1: it may have filled between the last poll and the
cancel, and the outcome says so. An :class:`OrderOutcome` is truthy only when the order
filled in full. When the cancel fails (the exchange is unreachable) and the order is still
open, the outcome is not final (``final`` is False) and the order stays watched: the next
``poll``/``check_deadlines`` (or :meth:`~OrderTimeoutHandler.cancel_all`) tries again.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Final

from marketbot.core.clock import Clock, SystemClock
from marketbot.core.errors import ConfigError, MarketbotError
from marketbot.execution.exchange import Exchange, OrderNotFoundError
from marketbot.execution.models import Order, OrderStatus
from marketbot.execution.timeout_outcomes import OrderOutcome, TimeoutStatistics
from marketbot.net.rate_limiter import PRIORITY_EMERGENCY, PRIORITY_NORMAL

__all__ = ["OrderOutcome", "OrderTimeoutHandler", "TimeoutStatistics"]

_LOG = logging.getLogger(__name__)
_ASYNC_WORKERS: Final = 4


@dataclass(slots=True)
class _Watch:
    """One watched order and what is known of it; changed only under the handler's lock."""

    order_id: str
    exchange: str
    symbol: str | None
    started_at: datetime
    deadline: datetime
    order: Order | None = None
    timed_out: bool = False
    cancel_requested: bool = False
    not_found: bool = False
    error: str = ""
    outcome: OrderOutcome | None = None


@dataclass(slots=True)
class _Counts:
    monitored: int = 0
    filled: int = 0
    timed_out: int = 0
    cancelled: int = 0
    ended_otherwise: int = 0
    cancel_failures: int = 0
    fill_seconds_sum: float = 0.0


class OrderTimeoutHandler:
    """Watches orders until they fill, and cancels what is left when a deadline passes.

    Args:
        exchanges: The exchanges by name (``{"paper": paper_exchange}``).
        clock: Source of "now" for deadlines and outcome times.
        sleep: Waits the given seconds between polls of :meth:`monitor_order`. Required
            unless ``clock`` is a :class:`~marketbot.core.clock.SystemClock` (then
            ``time.sleep``): with any other clock, pass one that advances it.
        poll_interval_seconds: The longest wait between two status polls of
            :meth:`monitor_order` (the last wait is cut to end at the deadline).
        executor: Runs :meth:`monitor_order_async`; by default a small thread pool of the
            handler's own, shut down by :meth:`close`.

    Raises:
        ConfigError: no exchanges, or ``poll_interval_seconds`` not a positive number.
    """

    def __init__(
        self,
        exchanges: Mapping[str, Exchange],
        clock: Clock,
        *,
        sleep: Callable[[float], None] | None = None,
        poll_interval_seconds: float = 1.0,
        executor: Executor | None = None,
    ) -> None:
        if not exchanges:
            raise ConfigError("`exchanges` must name at least one exchange")
        _require_positive("poll_interval_seconds", poll_interval_seconds)
        self.exchanges: Mapping[str, Exchange] = dict(exchanges)
        self.clock = clock
        self.poll_interval_seconds = float(poll_interval_seconds)
        if sleep is None and isinstance(clock, SystemClock):
            sleep = time.sleep
        self._sleep = sleep
        self._executor = executor
        self._owns_executor = False
        self._lock = threading.Lock()
        self._watches: dict[tuple[str, str], _Watch] = {}
        self._counts = _Counts()

    # -- the loop's side: never waits ------------------------------------------------------

    def watch(
        self,
        order_id: str,
        exchange: str = "paper",
        timeout_seconds: float = 30.0,
        *,
        symbol: str | None = None,
    ) -> None:
        """Start watching an order; its deadline is ``timeout_seconds`` from now.

        Watching an order already watched keeps its first deadline.

        Raises:
            ConfigError: an unknown exchange name or a non-positive timeout.
        """
        self._watch(order_id, exchange, timeout_seconds, symbol)

    def poll(self) -> list[OrderOutcome]:
        """Fetch each watched order once (priority 5), then settle what ended or is overdue.

        Returns:
            The outcomes settled by this call: orders that ended, and orders past their
            deadline (cancelled, re-read), in the order they were watched.
        """
        outcomes = []
        for watch in self._open_watches():
            order = self._refresh(watch, PRIORITY_NORMAL)
            if watch.outcome is not None:
                continue  # settled by another thread meanwhile
            if watch.not_found or (order is not None and order.status.is_terminal):
                outcomes.append(self._settle(watch))
            elif self.clock.now() >= watch.deadline:
                outcomes.append(self._expire(watch, timed_out=True))
        return outcomes

    def check_deadlines(self) -> list[OrderOutcome]:
        """Cancel and re-read every watched order past its deadline; fetch nothing else.

        Returns:
            The outcomes of the overdue orders, in the order they were watched.
        """
        now = self.clock.now()
        return [
            self._expire(watch, timed_out=True)
            for watch in self._open_watches()
            if now >= watch.deadline
        ]

    def cancel_all(self) -> list[OrderOutcome]:
        """Cancel every watched order now (priority 1), whatever its deadline; re-read each.

        Returns:
            Their outcomes, in the order they were watched.
        """
        return [self._expire(watch, timed_out=False) for watch in self._open_watches()]

    # -- callers that can wait -------------------------------------------------------------

    def monitor_order(
        self,
        order_id: str,
        exchange: str = "paper",
        timeout_seconds: float = 30.0,
        *,
        symbol: str | None = None,
    ) -> OrderOutcome:
        """Poll the order until it ends or its deadline passes; then cancel the rest.

        Args:
            order_id: The exchange's order id.
            exchange: The exchange's name in ``exchanges``.
            timeout_seconds: How long it may take to fill, on the injected clock.
            symbol: The pair, for exchanges that need it to find an order.

        Returns:
            The outcome: truthy only when the order filled in full.

        Raises:
            ConfigError: an unknown exchange, a non-positive timeout, or no ``sleep`` for a
                clock other than the system clock.
        """
        self._require_sleep()
        return self._run_until_settled(self._watch(order_id, exchange, timeout_seconds, symbol))

    def monitor_order_async(
        self,
        order_id: str,
        exchange: str = "paper",
        timeout_seconds: float = 30.0,
        *,
        symbol: str | None = None,
        callback: Callable[[OrderOutcome], None] | None = None,
    ) -> Future[OrderOutcome]:
        """:meth:`monitor_order` on a worker thread; ``callback`` gets the outcome.

        The order is watched before this returns (so :meth:`cancel_all` sees it). An
        exception in ``callback`` is logged and does not change the future's result.
        """
        self._require_sleep()
        watch = self._watch(order_id, exchange, timeout_seconds, symbol)
        return self._executor_to_use().submit(self._run_with_callback, watch, callback)

    # -- statistics and lifetime -----------------------------------------------------------

    def statistics(self) -> TimeoutStatistics:
        """Counts so far (see :class:`TimeoutStatistics`)."""
        with self._lock:
            counts = self._counts
            average = counts.fill_seconds_sum / counts.filled if counts.filled else None
            return TimeoutStatistics(
                monitored=counts.monitored,
                filled=counts.filled,
                timed_out=counts.timed_out,
                cancelled=counts.cancelled,
                ended_otherwise=counts.ended_otherwise,
                pending=len(self._watches),
                cancel_failures=counts.cancel_failures,
                average_fill_seconds=average,
            )

    def close(self) -> None:
        """Shut down the handler's own worker threads, after the monitors running on them."""
        if self._owns_executor and self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
            self._owns_executor = False

    def __enter__(self) -> OrderTimeoutHandler:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------------

    def _watch(
        self, order_id: str, exchange: str, timeout_seconds: float, symbol: str | None
    ) -> _Watch:
        if exchange not in self.exchanges:
            known = ", ".join(sorted(self.exchanges))
            raise ConfigError(f"unknown exchange {exchange!r}; the handler has: {known}")
        _require_positive("timeout_seconds", timeout_seconds)
        now = self.clock.now()
        with self._lock:
            existing = self._watches.get((exchange, order_id))
            if existing is not None:
                return existing
            watch = _Watch(
                order_id=order_id,
                exchange=exchange,
                symbol=symbol,
                started_at=now,
                deadline=now + timedelta(seconds=timeout_seconds),
            )
            self._watches[(exchange, order_id)] = watch
            self._counts.monitored += 1
            return watch

    def _open_watches(self) -> list[_Watch]:
        with self._lock:
            return list(self._watches.values())

    def _run_until_settled(self, watch: _Watch) -> OrderOutcome:
        sleep = self._sleep
        if sleep is None:  # _require_sleep ran first; this keeps the type checker informed
            raise ConfigError("monitor_order needs a `sleep`")
        while True:
            if watch.outcome is not None:
                return watch.outcome  # settled elsewhere: cancel_all, poll, another monitor
            order = self._refresh(watch, PRIORITY_NORMAL)
            if watch.not_found or (order is not None and order.status.is_terminal):
                return self._settle(watch)
            now = self.clock.now()
            if now >= watch.deadline:
                return self._expire(watch, timed_out=True)
            left_seconds = (watch.deadline - now).total_seconds()
            sleep(min(self.poll_interval_seconds, left_seconds))

    def _run_with_callback(
        self, watch: _Watch, callback: Callable[[OrderOutcome], None] | None
    ) -> OrderOutcome:
        outcome = self._run_until_settled(watch)
        if callback is not None:
            try:
                callback(outcome)
            except Exception:
                _LOG.exception("order %s on %s: the outcome callback failed", *_key(watch))
        return outcome

    def _refresh(self, watch: _Watch, priority: int) -> Order | None:
        """Fetch the order; on an exchange error, remember it and return None."""
        exchange = self.exchanges[watch.exchange]
        try:
            order = exchange.fetch_order(watch.order_id, watch.symbol, priority=priority)
        except OrderNotFoundError as exc:
            with self._lock:
                watch.not_found, watch.error = True, str(exc)
            return None
        except MarketbotError as exc:
            _LOG.warning("order %s on %s: status unknown: %s", *_key(watch), exc)
            with self._lock:
                watch.error = str(exc)
            return None
        with self._lock:
            watch.order = order
        return order

    def _expire(self, watch: _Watch, *, timed_out: bool) -> OrderOutcome:
        """Cancel the rest at priority 1, re-read the order, and settle it."""
        with self._lock:
            if watch.outcome is not None:
                return watch.outcome
            if timed_out and not watch.timed_out:
                watch.timed_out = True
                self._counts.timed_out += 1
            watch.cancel_requested = True
        exchange = self.exchanges[watch.exchange]
        cancel_error = ""
        try:
            answer = exchange.cancel_order(
                watch.order_id, watch.symbol, priority=PRIORITY_EMERGENCY
            )
        except OrderNotFoundError as exc:
            cancel_error = str(exc)
        except MarketbotError as exc:
            _LOG.warning("order %s on %s: cancel failed: %s", *_key(watch), exc)
            cancel_error = str(exc)
        else:
            with self._lock:
                watch.order = answer
        # Whatever the cancel answered, the order may have filled just before it landed.
        self._refresh(watch, PRIORITY_EMERGENCY)
        if cancel_error:
            with self._lock:
                watch.error = cancel_error
        return self._settle(watch)

    def _settle(self, watch: _Watch) -> OrderOutcome:
        """The outcome as things stand; final (and counted) once the order can do no more."""
        with self._lock:
            if watch.outcome is not None:
                return watch.outcome
            order = watch.order
            final = watch.not_found or (order is not None and order.status.is_terminal)
            outcome = OrderOutcome(
                order_id=watch.order_id,
                exchange=watch.exchange,
                order=order,
                started_at=watch.started_at,
                ended_at=self.clock.now(),
                timed_out=watch.timed_out,
                cancel_requested=watch.cancel_requested,
                final=final,
                error=watch.error,
            )
            if not final:
                self._counts.cancel_failures += 1
                return outcome
            self._count(outcome)
            watch.outcome = outcome
            del self._watches[(watch.exchange, watch.order_id)]
            return outcome

    def _count(self, outcome: OrderOutcome) -> None:
        counts = self._counts
        if outcome:
            counts.filled += 1
            counts.fill_seconds_sum += outcome.fill_seconds or 0.0  # never None when filled
        elif outcome.cancel_requested and outcome.status is OrderStatus.CANCELED:
            counts.cancelled += 1
        else:
            counts.ended_otherwise += 1

    def _require_sleep(self) -> None:
        if self._sleep is None:
            raise ConfigError(
                "monitor_order waits between polls: pass `sleep=` to OrderTimeoutHandler, one "
                "that advances your clock (only the system clock defaults to time.sleep)"
            )

    def _executor_to_use(self) -> Executor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=_ASYNC_WORKERS, thread_name_prefix="marketbot-order-timeout"
                )
                self._owns_executor = True
            return self._executor


def _key(watch: _Watch) -> tuple[str, str]:
    return watch.order_id, watch.exchange


def _require_positive(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError(f"`{name}` must be a positive number of seconds, got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(f"`{name}` must be finite, got {value!r}")
