"""EvoLink's public price rules: ``GET /v1/catalog/pricing-rules`` (``docs/evolink.md`` §18).

Anonymous: no API key is sent, whatever the environment holds. One try, bounded by
`TIMEOUT`; every failure is a `PricesUnavailable` saying what happened in plain words (the
caller adds that nothing changed). The answer is returned as parsed JSON for
`runner.grid.price_rules.to_table`.
"""

from __future__ import annotations

from typing import Any, Final

import httpx

from .. import USER_AGENT
from ..errors import PricesUnavailable
from .evolink_wire import error_text, excerpt

RULES_PATH: Final = "/v1/catalog/pricing-rules"
TIMEOUT: Final = httpx.Timeout(30.0, connect=10.0)


def rules_url(base_url: str) -> str:
    return base_url.rstrip("/") + RULES_PATH


async def fetch_rules(base_url: str, transport: httpx.AsyncBaseTransport | None = None) -> Any:
    """The parsed answer of ``GET {base_url}/v1/catalog/pricing-rules?view=full``."""
    url = rules_url(base_url)
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    async with httpx.AsyncClient(
        transport=transport, timeout=TIMEOUT, headers=headers, follow_redirects=False
    ) as http:
        try:
            response = await http.get(url, params={"view": "full"})
        except httpx.TimeoutException:
            raise PricesUnavailable(f"{url} did not answer in time") from None
        except httpx.TransportError as exc:
            why = str(exc) or exc.__class__.__name__
            raise PricesUnavailable(
                f"could not reach {url} ({why}); check the internet connection and --base-url"
            ) from None
    if response.status_code == 404:
        raise PricesUnavailable(f"there are no price rules at {url} (HTTP 404)")
    if response.status_code != 200:
        raise PricesUnavailable(
            f"{url} answered HTTP {response.status_code} ({error_text(response)}); try again later"
        )
    try:
        return response.json()
    except ValueError:
        raise PricesUnavailable(
            f"the answer of {url} is not JSON ({excerpt(response)!r})"
        ) from None
