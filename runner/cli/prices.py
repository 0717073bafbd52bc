"""Commands about prices: ``prices update`` fetches the public price rules into the
workspace's cache, ``prices show`` prints the table quotes use and where it comes from."""

from __future__ import annotations

from pathlib import Path

import anyio
import click
import httpx

from ..errors import ExperimentError, PricesUnavailable
from ..grid import pricing
from ..grid.price_rules import to_table, write_cache
from ..grid.pricing import CACHE_FILE, USER_FILE, PriceTable, model_name
from ..providers.evolink_prices import fetch_rules, rules_url
from ..rules import MODES, TIERS
from ..run.backend import EVOLINK_URL, SIM_ORIGIN, api_key_from_env
from .base import CONTEXT, main, prices_from, workspace_option


@main.group(context_settings=CONTEXT)
def prices() -> None:
    """Where quotes get their prices: fetch EvoLink's current price rules, or show the table
    in force.

    \b
    Quotes use, highest first: --prices FILE or WORKSPACE/prices.toml (your own file),
    then the rules `runner prices update` fetched, then the built-in table of 2026-10-10.
    """


@prices.command(context_settings=CONTEXT)
@click.option(
    "--backend",
    type=click.Choice(["sim", "evolink"]),
    help="Whose rules to fetch (default: evolink when EVOLINK_API_KEY is set, else the "
    "built-in simulator's). EvoLink's are public: no key is needed or sent.",
)
@click.option(
    "--base-url",
    help="API address, e.g. a `runner simulate` server at http://127.0.0.1:8787.",
)
@workspace_option
def update(backend: str | None, base_url: str | None, workspace: Path) -> None:
    """Fetch the public price rules into WORKSPACE/prices-cache.json, with today's date;
    plans and runs quote with them from then on (your own prices.toml still comes first).
    Exit code 4 when they cannot be fetched or read: nothing changes then.

    \b
    Examples:
      runner prices update --backend evolink     # EvoLink's current prices (free, no key)
      runner prices update                       # without EVOLINK_API_KEY: the simulator's
      runner prices update --base-url http://127.0.0.1:8787
    """
    keyless = api_key_from_env() is None
    name = backend or ("sim" if keyless else "evolink")
    transport: httpx.AsyncBaseTransport | None = None
    if name == "evolink":
        url = (base_url or EVOLINK_URL).rstrip("/")
        click.echo(f"Fetching EvoLink's public price rules from {rules_url(url)} (no key needed).")
    elif base_url:
        url = base_url.rstrip("/")
        click.echo(f"Fetching the price rules of the simulator at {url} (not EvoLink's prices).")
    else:
        from ..simulator.app import SimConfig, create_app

        url = SIM_ORIGIN
        transport = httpx.ASGITransport(app=create_app(SimConfig()))
        why = "EVOLINK_API_KEY is not set" if keyless and backend is None else "--backend sim"
        click.echo(
            f"Backend: built-in simulator ({why}): fetching the simulator's price rules, not "
            "EvoLink's. For EvoLink's current prices (free, no key needed): "
            "runner prices update --backend evolink"
        )
    before = _source_or_none(workspace)
    try:
        converted = to_table(anyio.run(fetch_rules, url, transport))
    except PricesUnavailable as exc:
        kept = f"quotes keep using the {before}" if before else "quotes keep their prices"
        raise PricesUnavailable(f"{exc}. Nothing changed: {kept}.") from None
    path = workspace / CACHE_FILE
    write_cache(path, converted, pricing.now(), rules_url(url), name)
    click.echo(f"Saved the prices of {len(converted.models)} model(s) to {path}.")
    for note in converted.notes:
        click.echo(f"Note: {note}")
    click.echo(
        "The rules leave out the 1.1x EvoLink charges when content_filter is false: "
        "quotes keep adding it."
    )
    try:
        table = prices_from(None, workspace)
    except ExperimentError as exc:
        click.echo(f"Warning: your {workspace / USER_FILE} cannot be read: {exc}")
        return
    click.echo(f"Quotes now say: Prices: {table.source}.")
    if (workspace / USER_FILE).is_file():
        click.echo(f"Note: {workspace / USER_FILE} comes first for the prices it sets.")
    _settled_later(table)


@prices.command(context_settings=CONTEXT)
@click.option(
    "--prices",
    "file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Price table TOML to show instead of WORKSPACE/prices.toml.",
)
@workspace_option
def show(file: Path | None, workspace: Path) -> None:
    """Print the prices quotes use now, where they come from and how old they are.
    Spends nothing and needs no network.

    \b
    Examples:
      runner prices show
      runner prices show --workspace my-reports
    """
    table = prices_from(file, workspace)
    click.echo(f"Prices: {table.source} ({table.credits_per_usd} credits = 1 USD).")
    for warning in table.warnings():
        click.echo(f"Warning: {warning}")
    click.echo("")
    click.echo(f"  {'model':<26}{'credits per second of video':<44}{'minimum':>10}")
    for tier in TIERS:
        for mode in MODES:
            price = table.price_of(tier, mode)
            rate = price.credits_per_second_720p
            per_second = "  ".join(
                f"{q} {rate * f:.4f}" for q, f in sorted(price.quality_factor.items(), key=_q)
            )
            later = "  final charge may differ" if price.final_charge_may_differ else ""
            click.echo(
                f"  {model_name(tier, mode):<26}{per_second:<44}"
                f"{price.minimum_credits:>10.4f}{later}"
            )
            if mode == "reference":
                with_video = "  ".join(
                    f"{q} {rate * f:.4f}"
                    for q, f in sorted(price.video_input_factor.items(), key=_q)
                )
                click.echo(f"  {'  with input videos':<26}{with_video}  (input + output seconds)")
    click.echo("")
    click.echo(
        f"content_filter false: x{table.content_filter_off_multiplier} (EvoLink's rules leave "
        f"this out). Web search: {table.web_search_credits_per_search} credits per search, "
        f"{table.web_search_searches_per_job} assumed per job. Input videos: "
        f"{table.assumed_input_video_seconds} s assumed. Audio: free."
    )


def _q(item: tuple[str, object]) -> int:
    return int(item[0].rstrip("p")) if item[0].rstrip("p").isdigit() else 0


def _source_or_none(workspace: Path) -> str | None:
    try:
        return prices_from(None, workspace).source
    except ExperimentError:
        return None


def _settled_later(table: PriceTable) -> None:
    later = [
        model_name(t, m)
        for t in TIERS
        for m in MODES
        if table.price_of(t, m).final_charge_may_differ
    ]
    if later:
        click.echo(
            f"Billed on the request, then settled on actual use (the final charge may differ "
            f"from the quote): {', '.join(later)}."
        )
