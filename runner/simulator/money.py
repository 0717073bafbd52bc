"""Money on the simulated gateway: what a create may spend, what a task read says it cost.

Sources (``docs/simulator.md``; [INF]: the simulator's own choice):

- [EVO] §19: a task read carries ``usage.credits_reserved`` while unfinished and when failed or
  cancelled; a completed one ``usage.credits_used`` and ``usage.cost`` (``credits``, ``usd`` =
  credits / 68). A failed or cancelled task carries ``billing``, which alone proves a refund
  (``charge_status`` released, ``refund_status`` completed, scope ``account_balance``,
  ``refunded_at`` set, refunded = reserved). [INF] the final charge equals the reservation.
- [INF] refunds (``SimConfig.refunds``): ``immediate`` when the task ends, ``late``
  ``refund_delay`` simulated seconds later (``refund_status`` pending until then), ``never``
  (``none``). `Refunds` keeps the late ones in time order; the simulator pays them lazily,
  whenever state is read, at their own simulated time.
- [EVO] §7.3: key and balance rejections are 402s with flat ``error.*`` figures, checked in
  this order [INF]: the key's models (``key_model_not_allowed``), its total limit
  (``key_quota_exhausted``), its daily limit (``key_daily_quota_exhausted``), the account's
  balance (``insufficient_quota``). Nothing is created or charged.
- [INF] a key's use (``used_credits``) is what its creates debited net of refunds, in-flight
  reservations included. Its daily use counts the creates made since the last midnight in its
  ``reset_timezone`` (simulated time), net of the refunds those tasks got; it starts again at
  the next midnight (``reset_at``, ISO 8601 with the zone's offset).
"""

from __future__ import annotations

import heapq
from datetime import datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from .tasks import UNITS_PER_CREDIT, Account, Task, key_label
from .wire import CREDITS_PER_USD, ApiError, Billing, FinalUsage, ReservedUsage, TokenCredits

REFUND_SCOPE: Final = "account_balance"


def credits(units: int) -> float:
    """Credits from units of 1e-4 (what the wire shows)."""
    return units / UNITS_PER_CREDIT


# --- days -------------------------------------------------------------------------------------


def day_bounds(now: float, zone: str) -> tuple[float, datetime]:
    """The last midnight at or before ``now`` (unix seconds) and the next one (an aware
    datetime), both in ``zone``."""
    tz = ZoneInfo(zone)
    today = datetime.fromtimestamp(now, tz).date()
    start = datetime.combine(today, time(0), tzinfo=tz)
    return start.timestamp(), datetime.combine(today + timedelta(days=1), time(0), tzinfo=tz)


def daily_used(acct: Account, now: float) -> int:
    """Units the key's creates debited since its last midnight, net of their refunds."""
    start, _ = day_bounds(now, acct.reset_timezone)
    used = 0
    for task in reversed(acct.tasks):  # creation order: the day's tasks are at the end
        if task.created < start:
            break
        if task.refunded_at is None:
            used += task.credits
    return used


# --- what a create may spend -----------------------------------------------------------------


def check_model(acct: Account, model: str, denial: str) -> None:
    """402 ``key_model_not_allowed`` (or the older 403 ``model_access_denied``)."""
    if acct.models is None or model in acct.models:
        return
    if denial == "model_access_denied":
        raise ApiError("model_access_denied")
    raise ApiError(
        "key_model_not_allowed",
        f"This API key may not use the model {model}",
        fields={"allowed_models": sorted(acct.models), "key_name": key_label(acct.key)},
    )


def check_funds(acct: Account, price: int, now: float) -> None:
    """Raise the 402 a create of ``price`` units meets at ``now``, if any (settle first)."""
    estimated = credits(price)
    name = key_label(acct.key)
    if acct.total_limit is not None:
        used = acct.charged - acct.refunded
        if used + price > acct.total_limit:
            raise ApiError(
                "key_quota_exhausted",
                f"This API key's credit limit is used up: {credits(used)} of "
                f"{credits(acct.total_limit)} credits used, {estimated} needed",
                fields={
                    "key_name": name,
                    "total_limit_credits": credits(acct.total_limit),
                    "used_credits": credits(used),
                    "remaining_credits": credits(max(0, acct.total_limit - used)),
                    "estimated_credits": estimated,
                },
            )
    if acct.daily_limit is not None:
        today = daily_used(acct, now)
        if today + price > acct.daily_limit:
            _, reset = day_bounds(now, acct.reset_timezone)
            raise ApiError(
                "key_daily_quota_exhausted",
                f"This API key's daily credit limit is used up: {credits(today)} of "
                f"{credits(acct.daily_limit)} credits used today, {estimated} needed; "
                f"it resets at {reset.isoformat()}",
                fields={
                    "key_name": name,
                    "daily_limit_credits": credits(acct.daily_limit),
                    "daily_used_credits": credits(today),
                    "estimated_credits": estimated,
                    "reset_timezone": acct.reset_timezone,
                    "reset_at": reset.isoformat(),
                },
            )
    if acct.available < price:
        raise ApiError(
            "insufficient_quota",
            fields={
                "estimated_credits": estimated,
                "account_balance_credits": credits(acct.available),
            },
        )


def token_credits(acct: Account, now: float) -> TokenCredits:
    """``data.token`` of ``GET /v1/credits``: None where the key has no such limit."""
    used = acct.charged - acct.refunded
    limited = acct.daily_limit is not None
    return {
        "remaining_credits": None
        if acct.total_limit is None
        else credits(max(0, acct.total_limit - used)),
        "unlimited_credits": acct.total_limit is None,
        "used_credits": credits(used),
        "daily_limit_credits": credits(acct.daily_limit) if acct.daily_limit is not None else None,
        "daily_used_credits": credits(daily_used(acct, now)) if limited else None,
        "reset_timezone": acct.reset_timezone if limited else None,
    }


# --- what a task read says it cost -----------------------------------------------------------


def usage_of(task: Task) -> ReservedUsage | FinalUsage:
    """``usage`` as a read shows it (§19): the final charge once completed."""
    if task.status == "completed":
        used = credits(task.credits)
        return {
            "credits_used": used,
            "cost": {"credits": used, "usd": round(used / CREDITS_PER_USD, 8)},
        }
    return {"credits_reserved": credits(task.credits)}


def billing_of(task: Task) -> Billing:
    """``billing`` of a failed or cancelled task: proof of a refund, or why there is none."""
    reserved = credits(task.credits)
    if task.refunded_at is not None:
        return {
            "reserved_credits": reserved,
            "charge_status": "released",
            "refund_status": "completed",
            "refund_scope": REFUND_SCOPE,
            "refunded_credits": reserved,
            "refunded_at": int(task.refunded_at),
        }
    return {
        "reserved_credits": reserved,
        "charge_status": "held",
        "refund_status": "pending" if task.refund_at is not None else "none",
        "refund_scope": REFUND_SCOPE,
        "refunded_credits": 0,
        "refunded_at": None,
    }


# --- refunds ---------------------------------------------------------------------------------


class Refunds:
    """Refunds not yet paid, in time order (not thread-safe: used under the simulator's lock)."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, Task]] = []
        self._seq = 0

    def __len__(self) -> int:
        return len(self._due)

    def schedule(self, task: Task, at: float) -> None:
        task.refund_at = at
        self._seq += 1
        heapq.heappush(self._due, (at, self._seq, task))

    def due(self, now: float) -> list[Task]:
        """The tasks whose refund is due by ``now``, earliest first (taken off the queue)."""
        out: list[Task] = []
        while self._due and self._due[0][0] <= now:
            out.append(heapq.heappop(self._due)[2])
        return out


def refund(acct: Account, task: Task, at: float) -> None:
    """Give a failed or cancelled task's reservation back to its account at ``at``."""
    task.refunded_at = at
    task.settled = "refunded"
    acct.held -= task.credits
    acct.available += task.credits
    acct.refunded += task.credits
