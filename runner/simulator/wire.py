"""The simulator's wire shapes (as `TypedDict`s) and the texts of its errors.

Sources are ``docs/simulator.md`` sections; each shape says where it comes from:

- [DOC] create response §4, task detail per status §5.1, create errors §7.1, query errors §5.5,
  task error codes §7.2, credits response (docs.evolink.ai ``get-credits``: ``data.token`` /
  ``data.user`` with ``remaining_credits``/``used_credits``, ``message``, ``success``).
- [3P]/[EVO] 502 ``upstream_error``, 503 ``service_unavailable_error``, 413
  ``request_too_large_error`` (S2A); the integer-``code`` variant with ``param`` and
  ``fallback_suggestion`` (S2A, MCP; §7.1, "two error shapes").
- [EVO] the gateway's surface (§15-§18): batch reads, the task list and its items, the models
  list, task money (``usage`` and ``billing``), 402s with flat ``error.*`` figures
  (``key_model_not_allowed``, ``key_quota_exhausted``, ``key_daily_quota_exhausted``),
  ``paid_outcome_unknown``; the token part of the credits answer; the public price rules
  (§23, built in `pricing_rules`).
- [INF] ``idempotency_conflict``'s and ``paid_outcome_unknown``'s HTTP status (409) and
  messages, every ``type`` of the gateway's codes, 504's body, the multi-line texts of task
  failures (modelled on the docs' example), the expired-link body of result files (a CDN-style
  XML ``AccessDenied``) and the file host's ``error code: 1010`` page.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal, NotRequired, TypedDict

Endpoint = Literal[
    "create",
    "task",
    "credits",
    "file",
    "batch",
    "list",
    "models",
    "pricing",
    "upload",
    "upload_quota",
    "upload_list",
    "upload_delete",
    "upload_receipt",
    "upload_file",
]
ENDPOINTS: Final[tuple[Endpoint, ...]] = (
    "create",
    "task",
    "credits",
    "file",
    "batch",
    "list",
    "models",
    "pricing",
    "upload",
    "upload_quota",
    "upload_list",
    "upload_delete",
    "upload_receipt",
    "upload_file",
)
# the file service's endpoints (§24): their errors are {"success": false, "code": <int>, "msg"}
UPLOAD_ENDPOINTS: Final = frozenset(e for e in ENDPOINTS if e.startswith("upload"))
TASK_ID_PREFIX: Final = "task-unified-"
CREDITS_PER_USD: Final = 68  # §10
BLOCKED_BODY: Final = "error code: 1010"  # the file host refusing a client's signature (§5.2)


class ApiError(Exception):
    """An EvoLink error answer: the app renders it with `error_body`.

    ``fields`` are extra flat ``error.*`` members (a 402's figures, §7.3)."""

    def __init__(
        self,
        code: str,
        message: str | None = None,
        *,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
        fields: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(code if message is None else f"{code}: {message}")
        self.code = code
        self.message = message
        self.param = param
        self.headers = dict(headers or {})
        self.fields = dict(fields or {})


class ErrorBody(TypedDict):
    error: dict[str, Any]  # code, message, type; param, fallback_suggestion, flat figures


class TaskInfo(TypedDict):
    can_cancel: bool
    estimated_time: NotRequired[int]
    video_duration: NotRequired[int]


class Usage(TypedDict):
    billing_rule: str
    credits_reserved: float
    user_group: str


class CreateResponse(TypedDict):
    """§4 (HTTP 200 of ``POST /v1/videos/generations``)."""

    created: int
    id: str
    model: str
    object: str
    progress: int
    status: str
    task_info: TaskInfo
    type: str
    usage: Usage


class TaskError(TypedDict):
    code: str
    message: str
    type: str


class ReservedUsage(TypedDict):
    """``usage`` of a task read while unfinished, failed or cancelled (§19)."""

    credits_reserved: float


class Cost(TypedDict):
    credits: float
    usd: float


class FinalUsage(TypedDict):
    """``usage`` of a completed task: the final charge (§19)."""

    credits_used: float
    cost: Cost


class Billing(TypedDict):
    """``billing`` of a failed or cancelled task: whether its reservation came back (§19)."""

    reserved_credits: float
    charge_status: Literal["released", "held"]
    refund_status: Literal["completed", "pending", "none"]
    refund_scope: str
    refunded_credits: float
    refunded_at: int | None


class TaskResponse(TypedDict):
    """§5.1 (``GET /v1/tasks/{id}``): ``results`` only when completed, ``error`` when failed
    or cancelled; ``usage`` always, ``billing`` when failed or cancelled (§19)."""

    created: int
    id: str
    model: str
    object: str
    progress: int
    status: str
    task_info: TaskInfo
    type: str
    results: NotRequired[list[str]]
    error: NotRequired[TaskError]
    usage: NotRequired[ReservedUsage | FinalUsage]
    billing: NotRequired[Billing]


class BatchResponse(TypedDict):
    """``POST /v1/tasks/batch`` (§15): the tasks found, each as ``GET /v1/tasks/{id}``."""

    data: list[TaskResponse]


class ListItem(TypedDict):
    """One task of ``GET /v1/tasks`` (§16): no links, no error code, no prompt."""

    id: str
    status: str
    model: str
    type: str
    progress: int
    created_at: int
    has_results: bool
    credits_used: float | None
    has_error: bool


class ListResponse(TypedDict):
    data: list[ListItem]
    total: int
    page: int
    page_size: int


class ModelItem(TypedDict):
    id: str


class ModelsResponse(TypedDict):
    """``GET /v1/models`` (§18): the models this key may use."""

    object: str
    data: list[ModelItem]


class CreditsBucket(TypedDict):
    remaining_credits: float
    used_credits: float


class TokenCredits(TypedDict):
    """The key's own figures (§18): None where the key has no such limit."""

    remaining_credits: float | None
    unlimited_credits: bool
    used_credits: float
    daily_limit_credits: float | None
    daily_used_credits: float | None
    reset_timezone: str | None


class CreditsData(TypedDict):
    token: TokenCredits
    user: CreditsBucket


class CreditsResponse(TypedDict):
    """``GET /v1/credits`` (docs.evolink.ai get-credits example)."""

    data: CreditsData
    message: str
    success: bool


class ErrorSpec(TypedDict):
    status: int
    type: str
    message: str
    suggestion: str


# code -> documented HTTP status, type and message; `suggestion` fills `fallback_suggestion`.
ERRORS: Final[dict[str, ErrorSpec]] = {
    "invalid_request": {
        "status": 400,
        "type": "invalid_request_error",
        "message": "Invalid request parameters",
        "suggestion": "fix the named parameter and send the request again",
    },
    "invalid_task_id": {
        "status": 400,
        "type": "invalid_request_error",
        "message": "Invalid task ID format, must start with 'task-unified-'",
        "suggestion": "use the task id returned by the create call",
    },
    "unauthorized": {
        "status": 401,
        "type": "authentication_error",
        "message": "Invalid or expired token",
        "suggestion": "check the API key in the Authorization header",
    },
    "insufficient_quota": {
        "status": 402,
        "type": "insufficient_quota",
        "message": "Insufficient quota. Please top up your account.",
        "suggestion": "top up your account",
    },
    "quota_exceeded": {
        "status": 402,
        "type": "insufficient_quota",
        "message": "Insufficient quota. Please top up your account.",
        "suggestion": "top up your account",
    },
    "key_model_not_allowed": {
        "status": 402,
        "type": "permission_error",
        "message": "This API key may not use the requested model",
        "suggestion": "use one of allowed_models, or allow this model for the key",
    },
    "key_quota_exhausted": {
        "status": 402,
        "type": "insufficient_quota",
        "message": "This API key's credit limit is used up",
        "suggestion": "raise the key's credit limit",
    },
    "key_daily_quota_exhausted": {
        "status": 402,
        "type": "insufficient_quota",
        "message": "This API key's daily credit limit is used up; it resets at midnight",
        "suggestion": "wait until reset_at, or raise the key's daily limit",
    },
    "model_access_denied": {
        "status": 403,
        "type": "invalid_request_error",
        "message": "Token does not have access to the specified model",
        "suggestion": "allow this model for the API key, or use another model",
    },
    "permission_denied": {
        "status": 403,
        "type": "invalid_request_error",
        "message": "You don't have permission to access this task",
        "suggestion": "query the task with the API key that created it",
    },
    "task_not_found": {
        "status": 404,
        "type": "invalid_request_error",
        "message": "The requested task could not be found",
        "suggestion": "check the task id",
    },
    "not_found": {
        "status": 404,
        "type": "not_found_error",
        "message": "Not found",
        "suggestion": "check the URL",
    },
    "idempotency_conflict": {
        "status": 409,
        "type": "invalid_request_error",
        "message": "This Idempotency-Key was already used with a different request body; "
        "use a new key for a new request",
        "suggestion": "use a new Idempotency-Key",
    },
    "paid_outcome_unknown": {
        "status": 409,
        "type": "invalid_request_error",
        "message": "The earlier submission with this Idempotency-Key is still being processed; "
        "wait a minute and retry with the same key",
        "suggestion": "wait a minute and retry with the same Idempotency-Key",
    },
    "request_too_large": {
        "status": 413,
        "type": "request_too_large_error",
        "message": "Request body too large (limit 64 MB)",
        "suggestion": "send media as URLs, not inline data",
    },
    "rate_limit_exceeded": {
        "status": 429,
        "type": "rate_limit_error",
        "message": "Too many requests, please try again later",
        "suggestion": "retry after the time given in Retry-After",
    },
    "internal_error": {
        "status": 500,
        "type": "api_error",
        "message": "Internal server error",
        "suggestion": "retry later",
    },
    "upstream_error": {
        "status": 502,
        "type": "upstream_error",
        "message": "Upstream AI service unavailable",
        "suggestion": "retry later",
    },
    "service_unavailable": {
        "status": 503,
        "type": "service_unavailable_error",
        "message": "Service temporarily unavailable, please retry after 30 seconds",
        "suggestion": "retry after 30 seconds",
    },
    "gateway_timeout": {
        "status": 504,
        "type": "api_error",
        "message": "Gateway timeout",
        "suggestion": "retry later",
    },
}

# What `GET /v1/tasks/{id}` says instead (§5.5); the other task reads (batch, list) too [INF].
TASK_ERROR_OVERRIDES: Final[dict[str, tuple[str, str]]] = {
    "unauthorized": ("authentication_error", "Authentication required"),
    "rate_limit_exceeded": ("evo_api_error", "Rate limit exceeded"),
    "internal_error": ("api_error", "Failed to retrieve task status"),
}

_CODE_FOR_STATUS: Final[dict[Endpoint, dict[int, str]]] = {
    "create": {
        400: "invalid_request",
        401: "unauthorized",
        402: "insufficient_quota",
        403: "model_access_denied",
        404: "not_found",
        409: "idempotency_conflict",  # paid_outcome_unknown: give it as json_body
        413: "request_too_large",
        429: "rate_limit_exceeded",
    },
    "task": {
        400: "invalid_task_id",
        401: "unauthorized",
        402: "quota_exceeded",
        403: "permission_denied",
        404: "task_not_found",
        429: "rate_limit_exceeded",
    },
    "credits": {401: "unauthorized", 429: "rate_limit_exceeded"},
    "file": {},
    "batch": {400: "invalid_request", 401: "unauthorized", 429: "rate_limit_exceeded"},
    "list": {400: "invalid_request", 401: "unauthorized", 429: "rate_limit_exceeded"},
    "models": {401: "unauthorized", 429: "rate_limit_exceeded"},
    "pricing": {400: "invalid_request", 404: "not_found", 429: "rate_limit_exceeded"},
    **{e: {} for e in UPLOAD_ENDPOINTS},  # their error bodies are the file service's own
}
_SERVER_CODES: Final[dict[int, str]] = {
    500: "internal_error",
    502: "upstream_error",
    503: "service_unavailable",
    504: "gateway_timeout",
}


def error_body(
    code: str,
    endpoint: Endpoint = "create",
    *,
    message: str | None = None,
    param: str | None = None,
    status: int | None = None,
    int_code: bool = False,
    fields: Mapping[str, Any] | None = None,
) -> ErrorBody:
    """The documented error JSON for ``code`` as ``endpoint`` words it.

    With ``int_code`` the body takes the integer variant: ``code`` is the HTTP status and the
    keys ``param`` and ``fallback_suggestion`` are always present. ``fields`` are added as
    flat members of ``error`` (never nested under ``details``, §7.3).
    """
    spec = ERRORS.get(code)
    err_type = spec["type"] if spec else "api_error"
    text = spec["message"] if spec else "Request failed"
    if endpoint in ("task", "batch", "list") and code in TASK_ERROR_OVERRIDES:
        err_type, text = TASK_ERROR_OVERRIDES[code]
    http_status = status if status is not None else spec["status"] if spec else 500
    detail: dict[str, Any] = {
        "code": http_status if int_code else code,
        "message": message if message is not None else text,
        "type": err_type,
    }
    if int_code:
        detail["param"] = param
        detail["fallback_suggestion"] = spec["suggestion"] if spec else "retry later"
    elif param is not None:
        detail["param"] = param
    detail.update(fields or {})
    return {"error": detail}


def code_for_status(endpoint: Endpoint, status: int) -> str:
    """The error code a fault with only a ``status`` answers with on ``endpoint``."""
    found = _CODE_FOR_STATUS[endpoint].get(status) or _SERVER_CODES.get(status)
    return found if found is not None else f"http_{status}"


def status_of(code: str) -> int:
    spec = ERRORS.get(code)
    return spec["status"] if spec else 500


NO_SUCH_KEY_BODY: Final = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code>'
    "<Message>The specified key does not exist.</Message></Error>\n"
)
EXPIRED_LINK_BODY: Final = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    "<Message>Request has expired</Message></Error>\n"
)

# §7.2 business codes of failed tasks, with multi-line messages like the docs' example [INF].
TASK_FAILURES: Final[dict[str, str]] = {
    "content_policy_violation": (
        "Content policy violation.\n"
        "Your request was blocked by the content safety system: real human faces, celebrities, "
        "copyrighted characters or trademarks, NSFW content, violence or minors.\n"
        "What to do:\n"
        "1. Remove names of real people, brands and characters from the prompt.\n"
        "2. Describe original characters in generic terms.\n"
        "3. Submit the revised request."
    ),
    "invalid_parameters": (
        "Invalid parameters.\nOne of the request parameters could not be used for generation.\n"
        "Check the parameters against the model's documentation."
    ),
    "image_processing_error": (
        "Image processing failed.\nAn input image could not be downloaded or decoded.\n"
        "Use a publicly reachable JPEG, PNG or WebP image."
    ),
    "image_dimension_mismatch": (
        "Image dimension mismatch.\nThe input image size does not match the request.\n"
        "Resize the image (300-6000 px per side, aspect ratio 0.4-2.5)."
    ),
    "request_cancelled": "Request cancelled.\nThe task was cancelled before it finished.",
    "generation_failed_no_content": (
        "Generation failed: the model produced no output.\nTry rephrasing the prompt."
    ),
    "service_error": "Service error.\nAn internal error occurred.\nRetry later.",
    "generation_timeout": "Generation timed out.\nThe task took too long.\nRetry later.",
    "resource_exhausted": (
        "Resources exhausted.\nUpstream capacity is used up for now.\nRetry later."
    ),
    "quota_exceeded": "Quota exceeded.\nRate limit or quota exceeded.\nSlow down and retry.",
    "service_unavailable": "Service unavailable.\nThe service is temporarily unavailable.",
    "resource_not_found": "Resource not found.\nThe task ID is invalid or expired.",
    "unknown_error": "Unknown error.\nAn unclassified error occurred.\nContact support.",
}
