"""What runner knows of the audience: ad-platform figures attached to videos by job key.

A video's job key (``<variant key>-<tier>-<sample>``, runner/models.py) rides in the ad's name
(`runner export --for-ads`), comes back in the platform's report, and ties each report row to
the video (`runner metrics import`). See docs/ad-platforms.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from ..models import KEY_HEX_CHARS
from ..rules import TIERS

# A job key inside an ad name: 16 hex characters, the tier, the sample. Platforms and people
# may change case or turn '-' into '_' or a space; the key is read back in its own spelling.
_KEY = re.compile(
    rf"(?<![0-9a-f])([0-9a-f]{{{KEY_HEX_CHARS}}})[-_ ]({'|'.join(TIERS)})[-_ ](\d{{1,4}})(?!\d)",
    re.IGNORECASE,
)


def key_in_name(text: str) -> str | None:
    """The job key an ad name (or video title, or file name) carries, or None. When several
    appear, the last one wins (a name is usually prefixed with readable words)."""
    found = _KEY.findall(text or "")
    if not found:
        return None
    hexes, tier, sample = found[-1]
    return f"{hexes.lower()}-{tier.lower()}-{int(sample)}"


# What a variant is judged by (runner/metrics/stats.py; `metrics show --metric`, `promote
# --metric`): click-through rate, completion rate, cost per result (lower is better).
Metric = Literal["ctr", "completion", "cost_per_result"]
METRICS: tuple[Metric, ...] = ("ctr", "completion", "cost_per_result")


@dataclass(frozen=True)
class AdTotals:
    """A video's figures summed over every import (days, platforms). ``None``: no import
    reported that figure (e.g. Google Ads has no completions column in some reports)."""

    impressions: int
    clicks: int
    completions: int | None = None
    spend: float | None = None
    results: int | None = None
    currency: str | None = None  # one currency, or None when imports disagree or say none
    # The bases of the rates, when only some imports had the figure (a report without a
    # completions or results column says nothing of them, not zero): the impressions of the
    # rows that report completions, and the spend and results of the rows that report both.
    # None: the same as impressions, spend, results.
    completion_impressions: int | None = None
    cost_spend: float | None = None
    cost_results: int | None = None

    def completion_basis(self) -> int:
        return (
            self.impressions if self.completion_impressions is None else self.completion_impressions
        )

    def cost_basis(self) -> tuple[float | None, int | None]:
        """(spend, results) to divide: of the rows that report both."""
        if self.cost_spend is None and self.cost_results is None:
            return self.spend, self.results
        return self.cost_spend, self.cost_results


@dataclass(frozen=True)
class ImportInfo:
    """One `runner metrics import` as kept in the ledger."""

    import_id: int
    file: str
    platform: str
    imported_at: float
    split_test: bool
    rows: int
    matched: int
