"""The simulator's ground truth: accounts, tasks, simulated time, limits and fates.

Everything here is synchronous and guarded by one lock, so the ASGI handlers (and tests in
another thread, e.g. next to a uvicorn server) see consistent counts under any concurrency.

Behaviour and its sources (tags and § numbers as in ``docs/simulator.md``; [INF]: ours):

- [DOC] validation by the simulator's own `rules.problems` (§3) → 400 ``invalid_request``;
  401, 402, 403 and their bodies; task ids ``task-unified-<unix s>-<8 [a-z0-9]>``; statuses
  pending → processing → completed | failed ([EVO] | cancelled); results valid 24 h; §7.2
  failure codes. [EVO] batch reads, the task list, the models list (`reads`, §15-§18).
- [EVO] ``Idempotency-Key`` (16-96 chars ``[A-Za-z0-9._-]``, replay header
  ``idempotency-replayed: true``, ``idempotency_conflict``; §17): remembered for
  ``idempotency_ttl`` simulated seconds (None: ignored, every create is new and paid); a create
  whose key's first request is still being processed is a 409 ``paid_outcome_unknown`` (the app
  holds the claim, `claim_idempotency_key`). ``X-Evo-Run-Id`` is recorded per task.
- [INF] credits: debited at create from the simulator's own `prices` (§10), the final charge
  when the task completes, given back to failed and cancelled tasks as ``refunds`` says
  (`money`); the key's models and limits and the account's balance are checked first (402s).
- [INF] simulated time ``start + (monotonic - t0) * speed + advanced``, evaluated lazily when
  anything is read (no background tasks). Generation takes about 110 s (fast), 105 s (mini) or
  155 s (standard) for 4 s at 480p (observed live, §5.6), longer for longer or sharper videos,
  ± ``jitter``; the first ``pending_seconds`` of a task's slot show as ``pending``.
- [INF] with a journal (`runner.simulator.journal`) simulated time goes on across processes
  and passes while none runs, as EvoLink's does: the first line anchors it to the wall clock
  (``wall``, ``sim``), and a process opening the journal starts at ``start = sim + (wall_now -
  wall) * speed`` (plus the advances it replays, and never before the last event it replays).
  Within a process only the monotonic ``clock`` moves time: the injected ``clock`` and
  ``wall`` are read together once, at start (or reset), to join the two; a test controls the
  time between "processes" through ``wall`` and the time within one through ``clock``.
- [INF] per key, at most ``concurrency`` tasks hold a generation slot; later ones stay
  ``pending`` in creation order. ``estimated_time`` counts the wait for a slot.
- [INF] a task's fate (outcome, jitter, id suffix) comes from a hash of (seed, body hash, n-th
  creation of that body), never from a shared random sequence, so the order in which
  concurrent clients create tasks does not change outcomes. Prompts containing a trigger word
  (default ``celebrity``) fail with its code (default ``content_policy_violation``).
- [INF] rate limits are GCRA buckets per key on the wall clock (``create_rate`` /
  ``create_burst``, ``query_rate`` / ``query_burst``; off by default), answered with 429 and a
  ``Retry-After`` in whole seconds (or an HTTP date).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from email.utils import formatdate
from typing import TYPE_CHECKING, Any, Final, Literal

from . import rules
from .config import DEFAULT_KEY, KeyConfig, SimConfig, key_problems
from .faults import Fault, FaultPlan
from .journal import (
    Journal,
    alias,
    key_digest,
    key_ref,
    limits_of,
    task_from_record,
    task_record,
)
from .money import Refunds, check_funds, check_model, daily_used, refund, token_credits
from .prices import DEFAULT_PRICES
from .reads import ListQuery, batch_ids, list_item, render
from .tasks import (
    FAIL_AT,
    UNITS_PER_CREDIT,
    Account,
    Slots,
    Task,
    fate_rng,
    generation_seconds,
    key_label,
    peak,
    units,
)
from .tasks import body_hash as hash_body
from .uploads import FileError, FileStore, StoredFile, parse_form
from .wire import (
    TASK_ID_PREFIX,
    ApiError,
    BatchResponse,
    CreateResponse,
    CreditsResponse,
    Endpoint,
    ListResponse,
    ModelsResponse,
    TaskResponse,
)

if TYPE_CHECKING:
    from .video import VideoCache

__all__ = ["DEFAULT_KEY", "ApiError", "Gcra", "KeyConfig", "SimConfig", "Simulator", "key_label"]

IDEMPOTENCY_KEY_RE: Final = re.compile(r"[A-Za-z0-9._-]{16,96}")
_ID_ALPHABET: Final = "abcdefghijklmnopqrstuvwxyz0123456789"
# settings a journal's replay depends on, with their value in journals written before them
_REPLAYED_SETTINGS: Final[dict[str, object]] = {
    "speed": None,
    "concurrency": None,
    "pending_seconds": None,
    "refunds": "immediate",
    "refund_delay": 600.0,
}
Limits = tuple[float | None, float | None, str]  # total_limit, daily_limit, reset_timezone
_KEEP: Final = "keep"


class Gcra:
    """Generic cell rate algorithm: ``rate`` per second with bursts of ``burst``."""

    def __init__(self, rate: float, burst: int) -> None:
        self.interval = 1.0 / rate
        self.tolerance = (burst - 1) * self.interval
        self.tat = -math.inf

    def acquire(self, now: float) -> float:
        """0 when allowed (and counted); otherwise the seconds to wait."""
        tat = max(self.tat, now)
        wait = tat - self.tolerance - now
        if wait > 0:
            return wait
        self.tat = tat + self.interval
        return 0.0


class Simulator:
    """The state behind the app (``app.state.sim``); safe to call from any thread."""

    def __init__(
        self,
        config: SimConfig | None = None,
        *,
        clock: Callable[[], float] | None = None,
        wall: Callable[[], float] | None = None,
    ) -> None:
        """``clock`` is monotonic (default `time.monotonic`) and moves simulated time;
        ``wall`` (default `time.time`) anchors it in a journal and dates ``Retry-After``.

        With ``config.journal`` the state in that file is replayed first; raises ValueError
        when the journal is damaged or was written with other timing settings.
        """
        self.config = config if config is not None else SimConfig()
        self.clock: Callable[[], float] = clock if clock is not None else time.monotonic
        self.unix_time: Callable[[], float] = wall if wall is not None else time.time
        self.prices = self.config.prices if self.config.prices is not None else DEFAULT_PRICES
        self._lock = threading.RLock()
        self._videos: VideoCache | None = None
        self._journal: Journal | None = None
        records: list[dict[str, Any]] = []
        if self.config.journal is not None:
            self._journal, records = Journal.open(self.config.journal)
        with self._lock:
            self._clear()
            if records:
                try:
                    self._restore(records)
                except BaseException:
                    assert self._journal is not None
                    self._journal.close()
                    raise
            elif self._journal is not None:
                self._journal.restart(self._start_record())

    def __repr__(self) -> str:
        return (
            f"<Simulator speed={self.config.speed} tasks={len(self.tasks)} "
            f"sim_time={self.now():.0f}>"
        )

    # --- time and administration -------------------------------------------------------------

    def close(self) -> None:
        """Close the journal file, if any (changes made afterwards fail with 500)."""
        if self._journal is not None:
            self._journal.close()

    @property
    def journaled(self) -> bool:
        """Whether changes are written to a journal (and wait for its fsync)."""
        return self._journal is not None

    def reset(self) -> None:
        """Forget every task, count and charge; restore balances and the configured faults.

        A journal is cut back to a new start line: the state and clock start afresh."""
        with self._lock:
            self._clear()
            if self._journal is not None:
                self._journal.restart(self._start_record())

    def _clear(self) -> None:
        cfg = self.config
        with self._lock:
            self._t0 = self.clock()
            self._wall0 = self.unix_time()
            self._epoch = cfg.start_time if cfg.start_time is not None else self._wall0
            self._advanced = 0.0
            self._aliases: dict[str, str] = {}  # key digest -> alias, for keys not seen since
            self.tasks: dict[str, Task] = {}
            self.accounts: dict[str, Account] = {
                k: _account_of(k, kc) for k, kc in cfg.keys.items()
            }
            self.slots = Slots(cfg.concurrency, cfg.pending_seconds, self._finish)
            self.refunds = Refunds()
            # (key, Idempotency-Key) -> (body hash, created at, the create's answer)
            self._idem: dict[tuple[str, str], tuple[str, float, CreateResponse]] = {}
            self._in_flight: set[tuple[str, str]] = set()  # creates being processed
            self.creates_by_body: Counter[str] = Counter()
            self.creates_by_idempotency_key: Counter[str] = Counter()
            self.replays_by_idempotency_key: Counter[str] = Counter()
            self.outcome_unknown_by_idempotency_key: Counter[str] = Counter()
            # Idempotency-Key -> SHA-256 of each create body that came with it, as sent
            self.raw_bodies_by_idempotency_key: dict[str, list[str]] = {}
            self.requests: dict[str, Counter[str]] = {}
            self.user_agents: dict[str, set[str]] = {}
            self.file_requests_with_authorization = 0
            self.create_arrivals: list[dict[str, Any]] = []
            self._calls: Counter[str] = Counter()
            self.faults_fired: list[dict[str, Any]] = []
            self._create_limits: dict[str, Gcra] = {}
            self._query_limits: dict[str, Gcra] = {}
            self.plan = FaultPlan(cfg.faults, seed=cfg.seed)
            journal = cfg.journal
            self.files = FileStore(
                quota=cfg.upload_quota,
                max_bytes=cfg.upload_max_bytes,
                ttl=cfg.upload_ttl,
                types=cfg.upload_types,
                directory=None if journal is None else journal.parent / f"{journal.stem}-uploads",
            )

    def now(self) -> float:
        """Simulated unix time."""
        return self._epoch + (self.clock() - self._t0) * self.config.speed + self._advanced

    def advance(self, seconds: float) -> float:
        """Jump simulated time forward; returns the new simulated time."""
        if not seconds >= 0:
            raise ValueError(f"can only advance by seconds >= 0, got {seconds!r}")
        with self._lock:
            self._log({"type": "advance", "sim": self.now() + seconds, "seconds": seconds})
            self._advanced += seconds
            now = self.now()
        self._sync()
        return now

    def set_faults(self, faults: Sequence[Fault], *, append: bool = False) -> None:
        with self._lock:
            self.plan.install(faults, append=append)

    def set_key(
        self,
        key: str,
        *,
        balance: float | None = None,
        models: frozenset[str] | Literal["keep"] | None = "keep",
        total_limit: float | Literal["keep"] | None = "keep",
        daily_limit: float | Literal["keep"] | None = "keep",
        reset_timezone: str = "keep",
    ) -> None:
        """Add a key or change its balance (available credits), allowed models and limits
        (as in `KeyConfig`; ``"keep"``: unchanged).

        Refunds due by now are settled first: the balance set is the balance from now on.
        Raises ValueError for limits `KeyConfig` refuses."""
        with self._lock:
            self._adopt(key)
            acct = self._account(key)
            limits: Limits | Literal["keep"] = "keep"
            if (total_limit, daily_limit, reset_timezone) != (_KEEP, _KEEP, _KEEP):
                limits = (
                    _credits_of(acct.total_limit) if total_limit == _KEEP else total_limit,
                    _credits_of(acct.daily_limit) if daily_limit == _KEEP else daily_limit,
                    acct.reset_timezone if reset_timezone == _KEEP else reset_timezone,
                )
                problems = key_problems(*limits)
                if problems:
                    raise ValueError("; ".join(problems))
            now = self.now()
            self._log(
                {
                    "type": "balance",
                    "sim": now,
                    **key_ref(key),
                    "balance": balance,
                    "models": models if models in ("keep", None) else sorted(models or ()),
                    "limits": limits if limits == _KEEP else list(limits),
                }
            )
            self._set_account(key, now, balance, models, limits)
        self._sync()

    def _set_account(
        self,
        key: str,
        now: float,
        balance: float | None,
        models: frozenset[str] | Literal["keep"] | None,
        limits: Limits | Literal["keep"] = "keep",
    ) -> None:
        self._settle(now)
        acct = self._account(key)
        if balance is not None:
            acct.available = units(balance)
        if models != "keep":
            acct.models = models
        if limits != "keep":
            total, daily, zone = limits
            acct.total_limit = None if total is None else units(total)
            acct.daily_limit = None if daily is None else units(daily)
            acct.reset_timezone = zone

    def _settle(self, now: float, key: str | None = None) -> None:
        """Play state forward to ``now``: finished slots (of ``key``, or of every key), then
        the refunds due by then."""
        if key is None:
            self.slots.settle_all(now)
        else:
            self.slots.settle(key, now)
        for task in self.refunds.due(now):
            assert task.refund_at is not None
            refund(self.accounts[task.key], task, task.refund_at)

    def _account(self, key: str) -> Account:
        acct = self.accounts.get(key)
        if acct is None:
            acct = self.accounts[key] = _account_of(
                key, KeyConfig(balance=self.config.default_balance)
            )
        return acct

    # --- the journal -------------------------------------------------------------------------

    def _start_record(self) -> dict[str, Any]:
        cfg = self.config
        return {
            "type": "start",
            "v": 1,
            "wall": self._wall0,
            "sim": self._epoch,
            **{name: getattr(cfg, name) for name in _REPLAYED_SETTINGS},
        }

    def _log(self, record: dict[str, Any]) -> None:
        """Append a change to the journal, before it is applied (call under the lock)."""
        if self._journal is None:
            return
        wall = self._wall0 + (self.clock() - self._t0)  # the wall clock as this process sees it
        try:
            self._journal.append({"type": record["type"], "wall": wall, **record})
        except OSError as exc:
            raise ApiError(
                "internal_error",
                f"the simulator could not write its journal {self._journal.path}: {exc}",
            ) from None

    def _sync(self) -> None:
        """Make the journal durable (call outside the lock: concurrent changes share it)."""
        if self._journal is None:
            return
        try:
            self._journal.sync()
        except OSError as exc:
            raise ApiError(
                "internal_error",
                f"the simulator could not write its journal {self._journal.path}: {exc}",
            ) from None

    def _restore(self, records: list[dict[str, Any]]) -> None:
        """Replay what a previous process journaled, then continue its clock."""
        cfg = self.config
        path = cfg.journal
        start = records[0]
        if start.get("type") != "start" or start.get("v") != 1:
            raise ValueError(
                f"{path}:1: not a simulator journal (no start line of version 1); "
                "give the simulator another journal path"
            )
        changed = [
            f"{name}={start.get(name, old)!r}"
            for name, old in _REPLAYED_SETTINGS.items()
            if start.get(name, old) != getattr(cfg, name)
        ]
        if changed:
            raise ValueError(
                f"the journal {path} was written with {', '.join(changed)}: start "
                "the simulator with those settings, or with a new journal"
            )
        keys = {key_digest(k): k for k in self.accounts}
        latest = float(start["sim"])
        for number, record in enumerate(records[1:], 2):
            try:
                latest = max(latest, self._replay(record, keys))
            except (KeyError, TypeError, ValueError, ApiError) as exc:
                raise ValueError(
                    f"{path}:{number}: cannot replay this {record.get('type')!r} "
                    f"line ({exc!r}); move the journal away to start afresh"
                ) from None
        gap = (self._wall0 - float(start["wall"])) * cfg.speed
        self._epoch = max(float(start["sim"]) + gap, latest - self._advanced)

    def _replay(self, record: dict[str, Any], keys: dict[str, str]) -> float:
        """Apply one journaled change; returns its simulated time."""
        kind, now = record["type"], float(record["sim"])
        if kind == "create":
            wall = self._t0 + (float(record["wall"]) - self._wall0)  # on this process's clock
            self._book(task_from_record(record, self._known(record, keys), wall))
        elif kind == "cancel":
            task = self.tasks[record["id"]]
            self._settle(now, task.key)
            if task.finished_at is not None:
                raise ValueError(f"{task.id} had already finished")
            self._end(task, now)
        elif kind == "advance":
            self._advanced += float(record["seconds"])
        elif kind == "upload":
            key = self._known(record, keys)
            stored = StoredFile.from_record(record["file"], key)
            self.files.add(stored)
            if record.get("upload_id"):
                self.files.remember(key, str(record["upload_id"]), stored)
        elif kind == "delete_file":
            self.files.forget(str(record["file_id"]))
        elif kind == "balance":
            balance, models = record["balance"], record["models"]
            self._set_account(
                self._known(record, keys),
                now,
                None if balance is None else float(balance),
                models if models in ("keep", None) else frozenset(map(str, models)),
                limits_of(record),
            )
        else:
            raise ValueError(f"unknown line type {kind!r}")
        return now

    def _known(self, record: dict[str, Any], keys: dict[str, str]) -> str:
        """The key a journal line names: a configured one, or an alias until it shows up."""
        digest = str(record["key_sha256"])
        key = keys.get(digest)
        if key is None:
            key = keys[digest] = self._aliases[digest] = alias(str(record["key"]), digest)
        return key

    def _adopt(self, key: str) -> None:
        """A key the journal knew only by its digest takes back its account and tasks."""
        if not self._aliases or key in self.accounts:
            return
        stand_in = self._aliases.pop(key_digest(key), None)
        if stand_in is None:
            return
        acct = self.accounts.pop(stand_in, None)
        if acct is not None:
            acct.key = key
            self.accounts[key] = acct
        for task in self.tasks.values():
            if task.key == stand_in:
                task.key = key
        self._idem = {(key if k == stand_in else k, i): v for (k, i), v in self._idem.items()}
        self.slots.rekey(stand_in, key)

    # --- calls as the app sees them -----------------------------------------------------------

    def begin_call(
        self,
        endpoint: Endpoint,
        task_id: str | None,
        *,
        user_agent: str | None = None,
        authorization: bool = False,
    ) -> tuple[int, Fault | None]:
        """Count an arriving request; returns its sequence number and the fault to apply."""
        with self._lock:
            self.seen(endpoint, user_agent, authorization)
            self._calls[endpoint] += 1
            seq = self._calls[endpoint]
            index, fault = self.plan.next_call(endpoint, task_id)
            if endpoint == "create":
                self.create_arrivals.append(
                    {"seq": seq, "sim": self.now(), "wall": self.clock(), "status": None}
                )
            if fault is not None:
                self.faults_fired.append(
                    {"endpoint": endpoint, "call": index, "seq": seq, "kind": fault.kind}
                )
            return seq, fault

    def end_call(self, endpoint: Endpoint, seq: int, outcome: str) -> None:
        """Record how a request ended: its HTTP status, or reset/drop/hang/disconnect.

        ``seq`` 0: a request answered before it reached the simulator (the file host's
        1010 block), seen with `seen`."""
        with self._lock:
            self.requests.setdefault(endpoint, Counter())[outcome] += 1
            if endpoint == "create" and 0 < seq <= len(self.create_arrivals):
                self.create_arrivals[seq - 1]["status"] = outcome

    def seen(self, endpoint: Endpoint, user_agent: str | None, authorization: bool) -> None:
        """Note a request's User-Agent ("" when it sent none) and, for files, Authorization."""
        with self._lock:
            self.user_agents.setdefault(endpoint, set()).add(user_agent or "")
            if endpoint == "file" and authorization:
                self.file_requests_with_authorization += 1

    def claim_idempotency_key(self, authorization: str | None, idempotency_key: str | None) -> bool:
        """Mark a create as being processed under its Idempotency-Key; False when another
        create with that key (and credentials) still is (→ 409 ``paid_outcome_unknown``).

        The app calls it before the create is processed and `release_idempotency_key` once
        its answer has gone, so a ``delay`` fault after processing keeps the claim."""
        if (
            self.config.idempotency_ttl is None
            or idempotency_key is None
            or not IDEMPOTENCY_KEY_RE.fullmatch(idempotency_key)
        ):
            return True
        claim = ((authorization or "").strip(), idempotency_key)
        with self._lock:
            if claim in self._in_flight:
                self.outcome_unknown_by_idempotency_key[idempotency_key] += 1
                return False
            self._in_flight.add(claim)
            return True

    def release_idempotency_key(self, authorization: str | None, idempotency_key: str) -> None:
        with self._lock:
            self._in_flight.discard(((authorization or "").strip(), idempotency_key))

    def authenticate(self, authorization: str | None) -> str:
        scheme, _, token = (authorization or "").strip().partition(" ")
        key = token.strip()
        with self._lock:
            if scheme.lower() != "bearer" or not key:
                raise ApiError("unauthorized")
            self._adopt(key)
            if key not in self.accounts:
                if not self.config.accept_any_key:
                    raise ApiError("unauthorized")
                self._account(key)
            return key

    def _limit(self, limits: dict[str, Gcra], rate: float | None, burst: int, key: str) -> None:
        if rate is None:
            return
        bucket = limits.setdefault(key, Gcra(rate, burst))
        wait = bucket.acquire(self.clock())
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            fmt = self.config.retry_after_format
            headers = (
                {}
                if fmt == "none"
                else {
                    "Retry-After": str(seconds)
                    if fmt == "seconds"
                    else formatdate(self.unix_time() + seconds, usegmt=True)
                }
            )
            raise ApiError("rate_limit_exceeded", headers=headers)

    # --- create ------------------------------------------------------------------------------

    def create(
        self, key: str, raw: bytes, idempotency_key: str | None, run_id: str | None = None
    ) -> tuple[CreateResponse, bool]:
        """Handle ``POST /v1/videos/generations``; returns (response, replayed).

        ``run_id`` is the request's ``X-Evo-Run-Id``, kept with the task as ground truth.
        With a journal this waits for its fsync: call it from a worker thread."""
        answer = self._create(key, raw, idempotency_key, run_id)
        self._sync()  # the task (a replayed one too) is on disk before its id leaves
        return answer

    def _create(
        self, key: str, raw: bytes, idempotency_key: str | None, run_id: str | None
    ) -> tuple[CreateResponse, bool]:
        cfg = self.config
        remember = cfg.idempotency_ttl is not None
        with self._lock:
            self._limit(self._create_limits, cfg.create_rate, cfg.create_burst, key)
            if (
                remember
                and idempotency_key is not None
                and not IDEMPOTENCY_KEY_RE.fullmatch(idempotency_key)
            ):
                raise ApiError(
                    "invalid_request",
                    "Idempotency-Key must be 16-96 characters of A-Z, a-z, 0-9, '.', '_' or '-'",
                    param="Idempotency-Key",
                )
            if idempotency_key is not None:
                sent = hashlib.sha256(raw).hexdigest()
                self.raw_bodies_by_idempotency_key.setdefault(idempotency_key, []).append(sent)
            body = _parse_body(raw)
            body_hash = hash_body(body)
            now = self.now()
            if remember and idempotency_key is not None:
                replay = self._replay_of(key, idempotency_key, body_hash, now)
                if replay is not None:
                    return replay, True
            violations = rules.problems(body)
            if violations:
                text = "; ".join(f"{field}: {message}" for field, message in violations)
                raise ApiError(
                    "invalid_request", f"Invalid request parameters: {text}", param=violations[0][0]
                )
            acct = self.accounts[key]
            model = str(body["model"])
            check_model(acct, model, cfg.model_denial)
            self._settle(now, key)  # refunds due by now count towards the balance
            task = self._new_task(key, model, body, body_hash, idempotency_key, now)
            task.run_id = run_id
            task.mark = self._mark(body, now)
            check_funds(acct, task.credits, now)
            self._log(task_record(task))
            return self._book(task), False

    def _mark(self, body: Mapping[str, Any], now: float) -> tuple[int, int, int] | None:
        """The mark of the first uploaded image the body cites (§24): the model sees it."""
        images = body.get("image_urls")
        for url in images if isinstance(images, list) else ():
            stored = self.files.find(str(url), now) if isinstance(url, str) else None
            if stored is not None and stored.mark is not None:
                return stored.mark
        return None

    def _replay_of(
        self, key: str, idempotency_key: str, body_hash: str, now: float
    ) -> CreateResponse | None:
        """The original answer for a key still remembered (409 for another body)."""
        seen = self._idem.get((key, idempotency_key))
        ttl = self.config.idempotency_ttl
        if seen is None or ttl is None or now > seen[1] + ttl:
            return None  # never seen, or forgotten: a new task
        if seen[0] != body_hash:
            raise ApiError("idempotency_conflict")
        self.replays_by_idempotency_key[idempotency_key] += 1
        return seen[2]

    def _book(self, task: Task) -> CreateResponse:
        """Debit a new task's credits, count it and give it a slot (or a place in line)."""
        acct = self._account(task.key)
        self._settle(task.created, task.key)
        acct.available -= task.credits
        acct.reserved += task.credits
        acct.charged += task.credits
        acct.tasks.append(task)
        self.creates_by_body[task.body_hash] += 1
        if task.idempotency_key is not None:
            self.creates_by_idempotency_key[task.idempotency_key] += 1
        self.tasks[task.id] = task
        estimate = self.slots.admit(task, task.created)
        response: CreateResponse = {
            "created": int(task.created),
            "id": task.id,
            "model": task.model,
            "object": "video.generation.task",
            "progress": 0,
            "status": "pending",
            "task_info": {
                "can_cancel": True,
                "estimated_time": estimate,
                "video_duration": int(task.body.get("duration", 5)),
            },
            "type": "video",
            "usage": {
                "billing_rule": "per_second",
                "credits_reserved": task.credits / UNITS_PER_CREDIT,
                "user_group": "default",
            },
        }
        if task.idempotency_key is not None and self.config.idempotency_ttl is not None:
            self._idem[(task.key, task.idempotency_key)] = (task.body_hash, task.created, response)
        return response

    def _new_task(
        self,
        key: str,
        model: str,
        body: dict[str, Any],
        body_hash: str,
        idempotency_key: str | None,
        now: float,
    ) -> Task:
        cfg = self.config
        n = self.creates_by_body[body_hash] + 1
        rng = fate_rng(cfg.seed, body_hash, n)
        u_fail, u_jitter, u_when = rng.random(), rng.random(), rng.random()
        suffix = "".join(rng.choice(_ID_ALPHABET) for _ in range(8))
        tier, _family = rules.MODEL_TABLE[model]
        duration = int(body.get("duration", 5))
        quality = str(body.get("quality", "720p"))
        params = body.get("model_params")
        web_search = isinstance(params, dict) and params.get("web_search") is True
        video_input = bool(body.get("video_urls"))
        base = generation_seconds(
            tier, quality, duration, web_search=web_search, video_input=video_input
        )
        gen = base * (1 + cfg.jitter * (2 * u_jitter - 1))
        outcome = self._fate(str(body.get("prompt", "")), u_fail)
        run = gen
        if outcome is not None:
            lo, hi = FAIL_AT.get(outcome, (0.2, 0.9))
            run = gen * (lo + (hi - lo) * u_when)
        credits = int(self.prices.charge_for(tier, body) * UNITS_PER_CREDIT)  # exact: 1e-4
        return Task(
            id=self._task_id(int(now), suffix),
            key=key,
            model=model,
            tier=tier,
            body=body,
            body_hash=body_hash,
            n=n,
            idempotency_key=idempotency_key,
            created=now,
            created_wall=self.clock(),
            credits=credits,
            base_seconds=base,
            gen_seconds=gen,
            run_seconds=run,
            outcome=outcome,
            estimated_end=0.0,
        )

    def _fate(self, prompt: str, u: float) -> str | None:
        low = prompt.lower()
        for word, code in sorted(self.config.trigger_words.items()):
            if word.lower() in low:
                return code
        total = 0.0
        for code, p in sorted(self.config.fail_rates.items()):
            total += p
            if u < total:
                return code
        return None

    def _task_id(self, created: int, suffix: str) -> str:
        task_id = f"{TASK_ID_PREFIX}{created}-{suffix}"
        extra = random.Random(task_id)
        while task_id in self.tasks:  # practically never: 36^8 suffixes per second
            suffix = "".join(extra.choice(_ID_ALPHABET) for _ in range(8))
            task_id = f"{TASK_ID_PREFIX}{created}-{suffix}"
        return task_id

    # --- the generation slots ----------------------------------------------------------------

    def _finish(self, task: Task, at: float) -> None:
        """A task's slot time is over: its charge stands (completed), or it is held until the
        refund the ``refunds`` setting gives (failed, or cancelled: ``request_cancelled``)."""
        task.finished_at = at
        acct = self.accounts[task.key]
        acct.reserved -= task.credits
        if task.outcome is None:
            task.status, task.settled = "completed", "charged"
            return
        task.status = "cancelled" if task.outcome == "request_cancelled" else "failed"
        task.settled = "held"
        acct.held += task.credits
        mode = self.config.refunds
        if mode == "immediate":
            task.refund_at = at
            refund(acct, task, at)
        elif mode == "late":
            self.refunds.schedule(task, at + self.config.refund_delay)

    def cancel(self, task_id: str) -> TaskResponse:
        """Test hook: end a task now as ``cancelled`` (``request_cancelled``; refunded as the
        ``refunds`` setting says)."""
        with self._lock:
            task = self.tasks.get(task_id)
            if task is None:
                raise ApiError("task_not_found")
            now = self.now()
            self._settle(now, task.key)
            if task.finished_at is not None:
                raise ApiError("invalid_request", f"task {task_id} already {task.status}")
            self._log({"type": "cancel", "sim": now, "id": task.id})
            self._end(task, now)
            self._settle(now)  # an immediate refund is due now
            view = self._render(task, now, "")
        self._sync()
        return view

    def _end(self, task: Task, now: float) -> None:
        self.slots.remove(task, now)
        task.outcome = "request_cancelled"
        self._finish(task, now)

    # --- reads -------------------------------------------------------------------------------

    def task_view(self, key: str, task_id: str, base_url: str) -> TaskResponse:
        """Handle ``GET /v1/tasks/{task_id}`` for ``key``."""
        cfg = self.config
        with self._lock:
            self._limit(self._query_limits, cfg.query_rate, cfg.query_burst, key)
            if not task_id.startswith(TASK_ID_PREFIX):
                raise ApiError("invalid_task_id", param="task_id")
            task = self.tasks.get(task_id)
            if task is None:
                raise ApiError("task_not_found")
            if task.key != key:
                raise ApiError("permission_denied")
            now = self.now()
            self._settle(now, task.key)
            return self._render(task, now, base_url)

    def batch_view(self, key: str, body: object, base_url: str) -> BatchResponse:
        """Handle ``POST /v1/tasks/batch`` for ``key`` (one query against the rate limit)."""
        cfg = self.config
        with self._lock:
            self._limit(self._query_limits, cfg.query_rate, cfg.query_burst, key)
            ids = batch_ids(body)
            now = self.now()
            self._settle(now, key)
            found = [self.tasks.get(task_id) for task_id in ids]
            return {
                "data": [
                    self._render(task, now, base_url)
                    for task in found
                    if task is not None and task.key == key
                ]
            }

    def list_view(self, key: str, params: Mapping[str, str]) -> ListResponse:
        """Handle ``GET /v1/tasks`` for ``key`` (one query against the rate limit)."""
        cfg = self.config
        with self._lock:
            self._limit(self._query_limits, cfg.query_rate, cfg.query_burst, key)
            query = ListQuery.parse(params)
            now = self.now()
            self._settle(now, key)
            listed = []
            for task in reversed(self.accounts[key].tasks):  # newest first
                view = self._render(task, now, "")
                if query.matches(task, view["status"]):
                    listed.append((task, view))
            return {
                "data": [list_item(task, view) for task, view in query.page_of(listed)],
                "total": len(listed),
                "page": query.page,
                "page_size": query.page_size,
            }

    def models_view(self, key: str) -> ModelsResponse:
        """Handle ``GET /v1/models``: the models this key may use."""
        with self._lock:
            allowed = self.accounts[key].models
        ids = sorted(rules.MODEL_TABLE if allowed is None else allowed)
        return {"object": "list", "data": [{"id": model} for model in ids]}

    def _render(self, task: Task, now: float, base_url: str) -> TaskResponse:
        cfg = self.config
        base = cfg.file_origin or cfg.public_base_url or base_url
        return render(task, now, pending_seconds=cfg.pending_seconds, result_base=base)

    def credits_view(self, key: str) -> CreditsResponse:
        """Handle ``GET /v1/credits``: the key is its own account; ``token`` adds the key's
        limits (`money.token_credits`)."""
        with self._lock:
            now = self.now()
            self._settle(now, key)
            acct = self.accounts[key]
            used = (acct.charged - acct.refunded) / UNITS_PER_CREDIT
            return {
                "data": {
                    "token": token_credits(acct, now),
                    "user": {
                        "remaining_credits": acct.available / UNITS_PER_CREDIT,
                        "used_credits": used,
                    },
                },
                "message": "",
                "success": True,
            }

    def result_task(self, task_id: str) -> tuple[Task, bool]:
        """The completed task behind a result URL and whether the URL has expired.

        Raises KeyError when there is no completed task of that id.
        """
        with self._lock:
            task = self.tasks[task_id]
            now = self.now()
            self._settle(now, task.key)
            if task.status != "completed" or task.finished_at is None:
                raise KeyError(task_id)
            return task, now > task.finished_at + self.config.result_ttl

    def video_bytes(self, task: Task) -> bytes:
        """The MP4 of a task (blocking: call it from a worker thread)."""
        body = task.body
        kwargs: dict[str, Any] = {
            "prompt": str(body.get("prompt", "")),
            "duration": int(body.get("duration", 5)),
            "aspect_ratio": str(body.get("aspect_ratio", "16:9")),
            "tier": task.tier,
            "generate_audio": body.get("generate_audio", True) is not False,
            "seed": task.n - 1,
        }
        if task.mark is not None:
            kwargs["mark"] = task.mark
        if self.config.video_source is not None:
            return self.config.video_source(**kwargs)
        with self._lock:
            if self._videos is None:
                from .video import VideoCache  # lazy: the renderer pulls in PyAV and Pillow

                self._videos = VideoCache(self.config.video_cache_dir)
            videos = self._videos
        return videos.get(**kwargs)

    # --- the file service (§24) ----------------------------------------------------------------

    def upload(
        self,
        key: str,
        content_type: str | None,
        raw: bytes,
        base_url: str,
        upload_id: str | None = None,
    ) -> dict[str, Any]:
        """Handle ``POST /api/v1/files/upload/stream``; raises `FileError`. With a journal
        this waits for its fsync: call it from a worker thread."""
        form = parse_form(content_type, raw)
        with self._lock:
            now = self.now()
            data, mime, name, path = self.files.check(key, form, now)
            base = (self.config.upload_origin or base_url).rstrip("/")
            stored = self.files.make(key, data, mime, name, path, now, base, form["file"][0])
            self._log(
                {
                    "type": "upload",
                    "sim": now,
                    **key_ref(key),
                    "file": stored.record(),
                    "upload_id": upload_id,
                }
            )
            self.files.add(stored)
            if upload_id:
                self.files.remember(key, upload_id, stored)
            answer = {"success": True, "code": 200, "msg": "File uploaded successfully"}
            answer["data"] = stored.view()
        self._sync()
        return answer

    def delete_file(self, key: str, file_id: str) -> dict[str, Any]:
        """Handle ``DELETE /api/v1/files/{file_id}``; raises `FileError` (404)."""
        with self._lock:
            now = self.now()
            self.files.purge(now)
            stored = self.files.files.get(file_id)
            if stored is None or stored.key != key:
                raise FileError(404, f"File not found: {file_id}")
            self._log({"type": "delete_file", "sim": now, **key_ref(key), "file_id": file_id})
            self.files.delete(key, file_id, now)
        self._sync()
        return {"success": True, "code": 200, "msg": "File deleted", "data": {"file_id": file_id}}

    def files_quota(self, key: str) -> dict[str, Any]:
        with self._lock:
            return self.files.quota_view(key, self.now())

    def files_list(self, key: str, params: Mapping[str, str]) -> dict[str, Any]:
        try:
            page = int(params.get("page", "1"))
            page_size = int(params.get("page_size", params.get("pageSize", "20")))
        except ValueError:
            raise FileError(400, "page and page_size must be whole numbers") from None
        if page < 1 or not 1 <= page_size <= 100:
            raise FileError(400, "page must be >= 1 and page_size 1-100")
        with self._lock:
            return self.files.list_view(key, self.now(), page, page_size)

    def upload_receipt(self, key: str, upload_id: str) -> dict[str, Any]:
        with self._lock:
            return self.files.receipt_view(key, upload_id)

    def uploaded_content(self, file_id: str) -> tuple[StoredFile, bytes] | None:
        """A live uploaded file and its bytes (its links need no key)."""
        with self._lock:
            return self.files.content(file_id, self.now())

    # --- ground truth ------------------------------------------------------------------------

    def creates_for(self, body: Mapping[str, Any]) -> int:
        """How many tasks were created for this exact request body (model included)."""
        with self._lock:
            return self.creates_by_body[hash_body(dict(body))]

    def account(self, key: str) -> Account:
        """A copy of the key's account, settled up to now."""
        with self._lock:
            self._settle(self.now())
            return dataclasses.replace(self.accounts[key], tasks=[])

    def task(self, task_id: str) -> Task:
        with self._lock:
            self._settle(self.now())
            return self.tasks[task_id]

    def peak_generating(self, key: str | None = None) -> int:
        """Most tasks holding a generation slot at once (of ``key``, or of all keys)."""
        with self._lock:
            now = self.now()
            self._settle(now)
            return peak([t for t in self.tasks.values() if key is None or t.key == key], now)

    def snapshot(self) -> dict[str, Any]:
        """Everything ``GET /_sim/state`` shows, as plain JSON values."""
        with self._lock:
            now = self.now()
            self._settle(now)
            tasks = list(self.tasks.values())
            by_key: dict[str, list[Task]] = {}
            for task in tasks:
                by_key.setdefault(task.key, []).append(task)
            snapshot: dict[str, Any] = json.loads(
                json.dumps(
                    {
                        "sim_time": now,
                        "wall": self.clock(),
                        "speed": self.config.speed,
                        "advanced": self._advanced,
                        "journal": None if self._journal is None else str(self._journal.path),
                        "tasks": [
                            t.to_json() | {"status": self._render(t, now, "")["status"]}
                            for t in tasks
                        ],
                        "creates_by_body": dict(self.creates_by_body),
                        "creates_by_idempotency_key": dict(self.creates_by_idempotency_key),
                        "replays_by_idempotency_key": dict(self.replays_by_idempotency_key),
                        "outcome_unknown_by_idempotency_key": dict(
                            self.outcome_unknown_by_idempotency_key
                        ),
                        "raw_bodies_by_idempotency_key": self.raw_bodies_by_idempotency_key,
                        "accounts": {
                            key_label(k): {
                                **a.to_json(),
                                "tasks": len(by_key.get(k, [])),
                                "daily_used": daily_used(a, now) / UNITS_PER_CREDIT
                                if a.daily_limit is not None
                                else None,
                            }
                            for k, a in self.accounts.items()
                        },
                        "requests": {e: dict(c) for e, c in self.requests.items()},
                        "user_agents": {e: sorted(u) for e, u in self.user_agents.items()},
                        "file_requests_with_authorization": self.file_requests_with_authorization,
                        "refunds_due": len(self.refunds),
                        "peak_generating": peak(tasks, now),
                        "peak_generating_by_key": {
                            key_label(k): peak(ts, now) for k, ts in by_key.items()
                        },
                        "generating_now": self.slots.generating(),
                        "create_arrivals": self.create_arrivals,
                        "faults": self.plan.describe(),
                        "faults_fired": self.faults_fired,
                        "files": self.files.snapshot(now),
                    }
                )
            )
            return snapshot


def _credits_of(value: int | None) -> float | None:
    return None if value is None else value / UNITS_PER_CREDIT


def _account_of(key: str, kc: KeyConfig) -> Account:
    return Account(
        key,
        units(kc.balance),
        kc.models,
        total_limit=None if kc.total_limit is None else units(kc.total_limit),
        daily_limit=None if kc.daily_limit is None else units(kc.daily_limit),
        reset_timezone=kc.reset_timezone,
    )


def _parse_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError("invalid_request", f"The request body is not valid JSON ({exc})") from None
    if not isinstance(body, dict):
        raise ApiError("invalid_request", "The request body must be a JSON object")
    return body
