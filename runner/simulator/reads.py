"""Task reads: one task (§5.1), a batch of them (§15) and the list of a key's tasks (§16).

- [DOC] §5.1: a task as it stands in simulated time: ``pending`` (with ``estimated_time``),
  ``processing`` (progress 1-99), ``completed`` (progress 100, ``results``), ``failed``;
  [EVO] ``cancelled`` is terminal too, with the error code ``request_cancelled``; every read
  carries ``usage`` and a failed or cancelled one ``billing`` (`money`, §19).
- [EVO] §15 ``POST /v1/tasks/batch`` ``{"task_ids": [...]}``: 1-50 ids; the answer is
  ``{"data": [task, ...]}``, each item exactly what ``GET /v1/tasks/{id}`` answers; unknown,
  foreign and malformed ids are silently absent. [INF] duplicates are answered once, in the
  order first asked; more than 50 ids (counted before removing duplicates), or a body that is
  not that object, is a 400 ``invalid_request`` with ``param: "task_ids"``.
- [EVO] §16 ``GET /v1/tasks``: ``status`` (processing, which includes pending, completed,
  failed, cancelled), ``type`` (image, video, audio), ``model``, ``page`` (from 1, default 1),
  ``page_size`` (1-50, default 20); ``{"data", "total", "page", "page_size"}``, newest first,
  the key's own tasks only. Items carry no link, error code, prompt, body or key. [INF] a bad
  value is a 400 ``invalid_request`` naming the parameter; ``credits_used`` is the final charge
  of a completed task and null otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from .money import billing_of, credits, usage_of
from .tasks import Task
from .wire import TASK_FAILURES, ApiError, ListItem, TaskInfo, TaskResponse

MAX_BATCH: Final = 50
MAX_PAGE_SIZE: Final = 50
LIST_STATUSES: Final = ("processing", "completed", "failed", "cancelled")
TASK_TYPES: Final = ("image", "video", "audio")


def render(task: Task, now: float, *, pending_seconds: float, result_base: str) -> TaskResponse:
    """``GET /v1/tasks/{id}`` of ``task`` at simulated time ``now`` (settled up to it).

    ``result_base`` is the origin result URLs start with (``…/files/<id>.mp4``)."""
    out: TaskResponse = {
        "created": int(task.created),
        "id": task.id,
        "model": task.model,
        "object": "video.generation.task",
        "progress": 0,
        "status": "pending",
        "task_info": {"can_cancel": True},
        "type": "video",
    }
    if task.finished_at is not None:
        out["status"] = task.status
        out["task_info"] = {"can_cancel": False}
        if task.outcome is None:
            out["progress"] = 100
            out["results"] = [f"{result_base.rstrip('/')}/files/{task.id}.mp4"]
        else:
            out["error"] = {
                "code": task.outcome,
                "message": TASK_FAILURES[task.outcome],
                "type": "task_error",
            }
    elif task.started_at is not None and now >= task.started_at + pending_seconds:
        done = (now - task.started_at - pending_seconds) / task.gen_seconds
        out["status"] = "processing"
        out["progress"] = min(99, max(1, int(100 * done)))
    else:
        info: TaskInfo = {
            "can_cancel": True,
            "estimated_time": max(1, round(task.estimated_end - now)),
            "video_duration": int(task.body.get("duration", 5)),
        }
        out["task_info"] = info
    out["usage"] = usage_of(task)
    if task.status in ("failed", "cancelled"):
        out["billing"] = billing_of(task)
    return out


def batch_ids(body: object) -> list[str]:
    """The distinct ids of a batch body, in the order first asked; 400 when malformed."""
    ids = body.get("task_ids") if isinstance(body, Mapping) else None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ApiError(
            "invalid_request",
            'send {"task_ids": ["task-unified-…", …]}: a list of 1-50 task ids',
            param="task_ids",
        )
    if not 1 <= len(ids) <= MAX_BATCH:
        raise ApiError(
            "invalid_request",
            f"task_ids must hold 1-{MAX_BATCH} task ids, got {len(ids)}",
            param="task_ids",
        )
    return list(dict.fromkeys(ids))


@dataclass(frozen=True)
class ListQuery:
    """The parameters of ``GET /v1/tasks``."""

    status: str | None = None
    type: str | None = None
    model: str | None = None
    page: int = 1
    page_size: int = 20

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> ListQuery:
        """The query of a request; 400 ``invalid_request`` naming the first bad parameter."""
        status = params.get("status") or None
        if status is not None and status not in LIST_STATUSES:
            raise ApiError(
                "invalid_request",
                f"status must be one of {', '.join(LIST_STATUSES)}",
                param="status",
            )
        kind = params.get("type") or None
        if kind is not None and kind not in TASK_TYPES:
            raise ApiError(
                "invalid_request", f"type must be one of {', '.join(TASK_TYPES)}", param="type"
            )
        page = _whole(params, "page", 1, 1, None)
        page_size = _whole(params, "page_size", 20, 1, MAX_PAGE_SIZE)
        return cls(status, kind, params.get("model") or None, page, page_size)

    def matches(self, task: Task, status: str) -> bool:
        """Whether ``task``, whose status now is ``status``, is listed."""
        if self.status is not None:
            if status in ("pending", "processing"):
                status = "processing"  # "processing includes queued tasks"
            if status != self.status:
                return False
        if self.type is not None and self.type != "video":
            return False
        return self.model is None or task.model == self.model

    def page_of(self, items: Sequence[Any]) -> list[Any]:
        start = (self.page - 1) * self.page_size
        return list(items[start : start + self.page_size])


def _whole(params: Mapping[str, str], name: str, default: int, least: int, most: int | None) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    bounds = f"from {least}" if most is None else f"{least}-{most}"
    value = int(raw) if re.fullmatch(r"[0-9]{1,9}", raw) else least - 1
    if value < least or (most is not None and value > most):
        raise ApiError(
            "invalid_request", f"{name} must be a whole number {bounds}, got {raw!r}", param=name
        )
    return value


def list_item(task: Task, view: TaskResponse) -> ListItem:
    """A task of the list (§16), from its full read."""
    return {
        "id": view["id"],
        "status": view["status"],
        "model": view["model"],
        "type": view["type"],
        "progress": view["progress"],
        "created_at": view["created"],
        "has_results": bool(view.get("results")),
        "credits_used": credits(task.credits) if view["status"] == "completed" else None,
        "has_error": "error" in view,
    }
