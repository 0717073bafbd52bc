"""Which column of an ad platform's report holds which figure: one table per platform.

Each platform lists, per field, the column names its exports use, most wanted first (Meta's
link clicks before its clicks of every kind). Names are compared normalised (`normal`): case,
spacing and a currency suffix such as ``(USD)`` do not matter. The source of every name is
in docs/ad-platforms.md; what no source confirmed is accepted anyway (made tolerant).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

# The figures a report row gives runner. ``completion_rate`` is Google's "Video played to
# 100%": a percentage of impressions, turned into a count of completions on import.
FIELDS = (
    "ad_name",
    "impressions",
    "clicks",
    "completions",
    "completion_rate",
    "spend",
    "results",
    "currency",
    "day",
    "start",
    "end",
)


@dataclass(frozen=True)
class Platform:
    name: str  # as given to --platform and kept in the ledger
    label: str  # as marketers call it
    columns: dict[str, tuple[str, ...]]  # field -> column names, most wanted first
    signature: tuple[str, ...] = ()  # columns only this platform writes (for --platform auto)
    ad_name_hint: str = "Ad name"  # the column to add when none names the ad
    where: str = "the ads table"  # where the user adds a column
    extra: dict[str, str] = field(default_factory=dict)


def normal(header: str) -> str:
    """A column name as compared: NFC, BOM and spaces trimmed, lower case, inner spaces
    collapsed, a trailing currency ``(USD)`` / ``(€)`` taken off (see `currency_suffix`)."""
    text = unicodedata.normalize("NFC", header).replace("\ufeff", "").strip()
    text = _CURRENCY_SUFFIX.sub("", text)
    return " ".join(text.lower().split())


_CURRENCY_SUFFIX = re.compile(r"\s*\((?:[A-Z]{3}|[$€£¥₹])\)\s*$")
_SYMBOLS = {"€": "EUR", "£": "GBP", "₹": "INR", "¥": "JPY"}


def currency_suffix(header: str) -> str | None:
    """``Amount spent (USD)`` -> ``USD``; ``Cost (€)`` -> ``EUR``; otherwise None."""
    found = _CURRENCY_SUFFIX.search(header.strip())
    if not found:
        return None
    code = found.group(0).strip()[1:-1]
    return _SYMBOLS.get(code, code if len(code) == 3 else None)


META = Platform(
    "meta",
    "Meta Ads Manager",
    {
        "ad_name": ("ad name",),
        "impressions": ("impressions",),
        "clicks": ("link clicks", "clicks (all)", "clicks"),
        "completions": ("thruplays", "video plays at 100%", "video watches at 100%"),
        "spend": ("amount spent",),
        "results": ("results",),
        "currency": ("currency",),
        "day": ("day",),
        "start": ("reporting starts",),
        "end": ("reporting ends",),
    },
    signature=(
        "amount spent",
        "reporting starts",
        "link clicks",
        "thruplays",
        "ad set name",
        "result indicator",
        "cost per result",
        "cost per results",
        "video plays at 100%",
    ),
    where="Ads Manager (Columns → Customise columns)",
)

TIKTOK = Platform(
    "tiktok",
    "TikTok Ads Manager",
    {
        "ad_name": ("ad name",),
        "impressions": ("impressions",),
        "clicks": ("clicks (destination)", "clicks (all)", "clicks"),
        "completions": ("video views at 100%",),
        "spend": ("cost",),
        "results": ("conversions", "results"),
        "currency": ("currency",),
        "day": ("date", "day", "stat time day"),
    },
    signature=(
        "clicks (destination)",
        "ctr (destination)",
        "cpc (destination)",
        "ad group name",
        "video views at 100%",
        "6-second video views",
        "2-second video views",
        "average play time per video view",
        "cost per conversion",
    ),
    where="TikTok Ads Manager (Custom reports → edit the report's metrics and dimensions)",
)

GOOGLE = Platform(
    "google",
    "Google Ads",
    {
        "ad_name": ("ad name", "ad", "video", "video title", "title"),
        "impressions": ("impr.", "impressions"),
        "clicks": ("clicks",),
        "completion_rate": ("video played to 100%",),
        "spend": ("cost",),
        "results": ("conversions", "conv."),
        "currency": ("currency code", "currency"),
        "day": ("day", "date"),
    },
    signature=(
        "impr.",
        "currency code",
        "video played to 100%",
        "video played to 75%",
        "avg. cpv",
        "view rate",
        "conv.",
        "conv. value",
        "ad group",
        "video id",
    ),
    ad_name_hint="Video",
    where="Google Ads (Columns → Modify columns; for video titles add the 'Video' column)",
)

LINKEDIN = Platform(
    "linkedin",
    "LinkedIn Campaign Manager",
    {
        # English ad-level names are not confirmed (docs/ad-platforms.md): several accepted
        "ad_name": (
            "ad name",
            "creative name",
            "nome do anúncio",
            "nome do criativo",
            "nombre del anuncio",
        ),
        "impressions": ("impressions", "impressões", "impresiones"),
        "clicks": ("clicks", "cliques", "clics"),
        "completions": ("completions", "conclusões", "reproducciones completas"),
        "spend": ("total spent", "amount spent", "spent", "total investido", "importe gastado"),
        "results": ("key results", "conversions", "resultados-chave", "conversões"),
        "currency": ("currency", "moeda", "moneda"),
        "start": ("start date (in utc)", "data de início (em utc)", "fecha de inicio (en utc)"),
        "end": ("end date (in utc)", "data de término (em utc)", "fecha de fin (en utc)"),
    },
    signature=(
        "key results",
        "total spent",
        "start date (in utc)",
        "campaign group name",
        "data de início (em utc)",
        "total investido",
        "impressões",
        "cliques",
        "nome do grupo de campanhas",
    ),
    where="Campaign Manager (Export → ad / creative performance)",
)

SNAPCHAT = Platform(
    "snapchat",
    "Snapchat Ads Manager",
    {
        "ad_name": ("ad", "ad name"),
        "impressions": ("paid impressions", "total impressions", "impressions"),
        "clicks": ("swipes", "swipe ups"),
        "completions": ("video completions",),
        "spend": ("amount spent", "spend"),
        "results": ("conversions", "results"),
        "currency": ("currency",),
        "day": ("day", "date"),
        "start": ("start time", "starts"),
        "end": ("end time", "ends"),
    },
    signature=(
        "swipes",
        "swipe ups",
        "total impressions",
        "paid impressions",
        "video completions",
        "total video views",
        "screen time",
    ),
    where="Snapchat Ads Manager (Customize Columns)",
)

PLATFORMS: dict[str, Platform] = {p.name: p for p in (META, TIKTOK, GOOGLE, LINKEDIN, SNAPCHAT)}
CHOICES = (*PLATFORMS, "auto")
OTHER = Platform("other", "ad report", {}, where="the report")


def guess(headers: Iterable[str]) -> Platform:
    """The platform whose own columns the header shows most of; `OTHER` when none shows."""
    names = {normal(h) for h in headers}
    scores = {p.name: len(names & set(p.signature)) for p in PLATFORMS.values()}
    best = max(scores, key=lambda n: scores[n])
    return PLATFORMS[best] if scores[best] else OTHER


def resolve(headers: list[str], platform: Platform, mapped: dict[str, str]) -> dict[str, int]:
    """Field -> column index. ``mapped`` (normalised column -> field, from --map) comes
    first, then the platform's names in its order of preference, then every other
    platform's (a report may mix: an agency template, a renamed column)."""
    names = [normal(h) for h in headers]
    found: dict[str, int] = {}
    for column, name in mapped.items():
        if column in names:
            found[name] = names.index(column)
    order = [platform, *(p for p in PLATFORMS.values() if p is not platform)]
    for fld in FIELDS:
        if fld in found:
            continue
        if fld == "completion_rate" and "completions" in found:
            continue
        for p in order:
            hit = next((names.index(c) for c in p.columns.get(fld, ()) if c in names), None)
            if hit is not None and hit not in found.values():
                found[fld] = hit
                break
    if "completions" in found and "completion_rate" in found:
        del found["completion_rate"]
    return found
