"""`runner simulate`: the simulator as a loopback server."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from pathlib import Path
from typing import Any

import click

from ..errors import InputError
from .base import (
    CONTEXT,
    main,
)


@main.command(context_settings=CONTEXT)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to serve on (loopback only by default).",
)
@click.option("--port", default=8787, show_default=True, type=int)
@click.option(
    "--file-port",
    type=click.IntRange(min=1, max=65535),
    help="Serve result files on this port of the same host, as a second origin "
    "(like EvoLink's file host); default: on the API's port.",
)
@click.option(
    "--strict-file-host",
    is_flag=True,
    help="The file host refuses library User-Agents and Authorization headers "
    "(403 'error code: 1010').",
)
@click.option(
    "--speed",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0.001),
    help="Simulated seconds per real second (100: a 2-minute render takes 1.2 s).",
)
@click.option(
    "--rate-limit", type=click.FloatRange(min=0.01), help="Creates per second per key before 429s."
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    help="Videos generating at once per key (the rest wait as pending).",
)
@click.option(
    "--fail-rate",
    "fail_rates",
    multiple=True,
    metavar="CODE=P",
    help="Fail this share of tasks with an error code, e.g. service_error=0.05.",
)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--key", "keys", multiple=True, help="API key to accept (repeatable; default: any key)."
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="JSON file of simulator settings (see runner/simulator/config.py).",
)
def simulate(
    host: str,
    port: int,
    file_port: int | None,
    strict_file_host: bool,
    speed: float,
    rate_limit: float | None,
    concurrency: int | None,
    fail_rates: tuple[str, ...],
    seed: int,
    keys: tuple[str, ...],
    config_file: Path | None,
) -> None:
    """Serve the local EvoLink simulator (no cost, no network beyond this machine).

    \b
    Examples:
      runner simulate --speed 100
      runner simulate --speed 100 --file-port 8788 --strict-file-host
      runner run experiments/demo.csv --base-url http://127.0.0.1:8787
    """
    import uvicorn

    from ..simulator.app import KeyConfig, SimConfig, create_app
    from ..simulator.testing import serve

    data: dict[str, Any] = json.loads(config_file.read_text()) if config_file else {}
    config = SimConfig.from_json(data) if data else SimConfig()
    rates: dict[str, float] = {}
    for item in fail_rates:
        code, _, p = item.partition("=")
        try:
            rates[code.strip()] = float(p)
        except ValueError:
            raise InputError(
                f"--fail-rate {item!r}: write CODE=P, e.g. service_error=0.05"
            ) from None
    changes: dict[str, Any] = {"speed": speed, "seed": seed}
    if rate_limit:
        changes["create_rate"] = rate_limit
    if concurrency:
        changes["concurrency"] = concurrency
    if rates:
        changes["fail_rates"] = rates
    if keys:
        changes["keys"] = {k: KeyConfig() for k in keys}
    else:
        changes["accept_any_key"] = True
    if file_port is not None:
        changes["file_origin"] = f"http://{host}:{file_port}"
    if strict_file_host:
        changes["strict_file_host"] = True
    try:
        config = dataclasses.replace(config, **changes)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    app = create_app(config)
    files = f"; files on http://{host}:{file_port}" if file_port is not None else ""
    click.echo(f"Simulator on http://{host}:{port}{files} (speed x{speed:g}); Ctrl-C to stop.")
    with contextlib.ExitStack() as stack:
        if file_port is not None:
            try:
                stack.enter_context(serve(app.files, host, file_port))
            except OSError as exc:
                raise InputError(f"--file-port {file_port}: {exc}") from None
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level="warning",
            http="h11",
            loop="asyncio",
            date_header=False,  # the simulator's Date is in simulated time
        )
