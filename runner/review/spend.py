"""``runner spend``: credits and dollars across the runs of a workspace, by run, tag, month or
tier; promotions and retries included (they are runs, and attempts of runs).

Credits are as charged: each created task's final charge (else the provider's reservation),
less the refunds the provider's billing proved; the same figure as `Store.money` (charged
minus refunded) for a run. Estimates held for creates whose outcome is not known yet are
shown apart (``held``), never in the total. A month is the month (local time) an attempt was
sent, so a run that spans the night of a month's end is split where its money went. Dollars
at the price table's ``credits_per_usd`` (`runner.grid.pricing`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError
from ..grid.pricing import PriceTable
from ..run.ledger import Store

BY = ("run", "tag", "month", "tier")
UNTAGGED = "(untagged)"

# per run, tier and month: credits as charged (created tasks, less proven refunds), the
# estimates held for creates of unknown outcome, and the attempts that cost or may cost
_QUERY = """
SELECT j.run_id, j.tier,
    strftime('%Y-%m', a.started_at, 'unixepoch', 'localtime') AS month,
    COALESCE(SUM(CASE WHEN a.outcome = 'created'
        THEN COALESCE(a.charged, a.reserved, a.est_credits) ELSE 0 END), 0)
        - COALESCE(SUM(a.refunded), 0),
    COALESCE(SUM(CASE WHEN a.outcome IN ('in_flight', 'unknown') THEN a.est_credits END), 0),
    COUNT(CASE WHEN a.outcome IN ('created', 'in_flight', 'unknown') THEN 1 END)
FROM attempts a JOIN jobs j USING (job_id)
WHERE a.started_at >= ?
GROUP BY j.run_id, j.tier, month
"""


@dataclass
class Group:
    name: str  # "client=acme", "2026-11", "fast", a run id, or "(untagged)"
    credits: float = 0.0
    held: float = 0.0
    attempts: int = 0
    runs: set[str] = field(default_factory=set)

    def add(self, run_id: str, credits: float, held: float, attempts: int) -> None:
        self.credits += credits
        self.held += held
        self.attempts += attempts
        self.runs.add(run_id)

    def data(self, prices: PriceTable) -> dict[str, Any]:
        return {
            "group": self.name,
            "credits": round(self.credits, 4),
            "usd": round(prices.usd(self.credits), 4),
            "held": round(self.held, 4),
            "runs": len(self.runs),
            "attempts": self.attempts,
        }


@dataclass(frozen=True)
class Spend:
    by: str
    sections: list[tuple[str | None, list[Group]]]  # (tag key or None, its groups)
    total: Group
    prices: PriceTable
    since: dt.date | None
    only: Sequence[tuple[str, str]]

    def data(self) -> dict[str, Any]:
        return {
            "by": self.by,
            "since": self.since.isoformat() if self.since else None,
            "tags": dict(self.only),
            "credits_per_usd": float(self.prices.credits_per_usd),
            "groups": [
                {**({"key": key} if key else {}), **g.data(self.prices)}
                for key, groups in self.sections
                for g in groups
            ],
            "total": self.total.data(self.prices),
        }

    def lines(self) -> list[str]:
        rate = format(self.prices.credits_per_usd.normalize(), "f")
        head = "Spend"
        if self.only:
            head += " of runs tagged " + ", ".join(f"{k}={v}" for k, v in self.only)
        if self.since:
            head += f" since {self.since.isoformat()}"
        out = [f"{head} (credits as charged, refunds taken off; USD at {rate} credits per USD):"]
        width = max([len(g.name) for _, groups in self.sections for g in groups] + [len("Total")])
        for key, groups in self.sections:
            if key is not None:
                out.append(f"By {key}:")
            for g in groups:
                out.append("  " + _line(g, width, self.prices))
        if not any(groups for _, groups in self.sections):
            out.append("  nothing spent")
        out.append(_line(self.total, width + 2, self.prices, "Total"))
        if self.total.held:
            out.append(
                f"Besides: {self.total.held:,.2f} credits held for creates whose outcome is not "
                "known yet (`runner resolve RUN` settles them)."
            )
        return out


def _line(g: Group, width: int, prices: PriceTable, name: str | None = None) -> str:
    runs = f"{len(g.runs)} run{'s' if len(g.runs) != 1 else ''}"
    return (
        f"{name or g.name:<{width}}  {g.credits:>12,.2f} credits  ${prices.usd(g.credits):>10,.2f}"
        f"  {runs}, {g.attempts} paid attempt{'s' if g.attempts != 1 else ''}"
    )


def parse_since(text: str | None) -> dt.date | None:
    """``--since 2026-11-01`` (or ``2026-11``: the month's first day)."""
    if text is None:
        return None
    for fmt in ("%Y-%m-%d", "%Y-%m"):
        try:
            return dt.datetime.strptime(text.strip(), fmt).date()
        except ValueError:
            continue
    raise InputError(f"--since {text!r}: write a date as YYYY-MM-DD (or YYYY-MM), e.g. 2026-11-01")


def spend(
    store: Store,
    prices: PriceTable,
    by: str = "run",
    only: Iterable[tuple[str, str]] = (),
    since: dt.date | None = None,
) -> Spend:
    """Credits by ``by`` over the runs carrying every tag of ``only``, sent on or after
    ``since`` (local midnight)."""
    if by not in BY:
        raise InputError(f"--by {by!r}: one of {', '.join(BY)}")
    only = list(only)
    tags: dict[str, dict[str, str]] = {}
    for run_id, key, value in store.conn.execute("SELECT run_id, key, value FROM run_tags"):
        tags.setdefault(run_id, {})[key] = value
    start = dt.datetime.combine(since, dt.time()).timestamp() if since else float("-inf")
    keys = sorted({k for t in tags.values() for k in t})
    sections: dict[str | None, dict[str, Group]] = {
        key: {} for key in (keys if by == "tag" and keys else [None])
    }
    total = Group("Total")
    for run_id, tier, month, credits, held, attempts in store.conn.execute(_QUERY, (start,)):
        mine = tags.get(run_id, {})
        if any(mine.get(k) != v for k, v in only):
            continue
        total.add(run_id, credits, held, attempts)
        for key, groups in sections.items():
            if by == "tag":
                name = f"{key}={mine[key]}" if key is not None and key in mine else UNTAGGED
            else:
                name = {"run": run_id, "month": month, "tier": tier}[by]
            groups.setdefault(name, Group(name)).add(run_id, credits, held, attempts)
    ordered = [
        (key, sorted(groups.values(), key=lambda g: (g.name == UNTAGGED, g.name)))
        for key, groups in sections.items()
    ]
    return Spend(by, ordered, total, prices, since, only)
