"""The simulator's wire shapes (as `TypedDict`s) and the texts of its errors.

Sources are ``docs/simulator.md`` sections; each shape says where it comes from:

- [DOC] create response §4, task detail per status §5.1, create errors §7.1, query errors §5.5,
  task error codes §7.2, credits response (docs.evolink.ai ``get-credits``: ``data.token`` /
  ``data.user`` with ``remaining_credits``/``used_credits``, ``message``, ``success``).
- [3P]/[EVO] 502 ``upstream_error``, 503 ``service_unavailable_error``, 413
  ``request_too_large_error`` (S2A); the integer-``code`` variant with ``param`` and
  ``fallback_suggestion`` (S2A, MCP; §7.1, "two error shapes").
- [INF] ``idempotency_conflict``'s HTTP status (409) and message, 504's body, the multi-line
  texts of task failures (modelled on the docs' example), the expired-link body of result files
  (a CDN-style XML ``AccessDenied``).
"""

from __future__ import annotations

from typing import Final, Literal, NotRequired, TypedDict

Endpoint = Literal["create", "task", "credits", "file"]
ENDPOINTS: Final[tuple[Endpoint, ...]] = ("create", "task", "credits", "file")
TASK_ID_PREFIX: Final = "task-unified-"


class ErrorDetail(TypedDict):
    code: str | int
    message: str
    type: str
    param: NotRequired[str | None]
    fallback_suggestion: NotRequired[str]


class ErrorBody(TypedDict):
    error: ErrorDetail


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


class TaskResponse(TypedDict):
    """§5.1 (``GET /v1/tasks/{id}``): ``results`` only when completed, ``error`` when failed."""

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


class CreditsBucket(TypedDict):
    remaining_credits: float
    used_credits: float
    unlimited_credits: NotRequired[bool]


class CreditsData(TypedDict):
    token: CreditsBucket
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

# What `GET /v1/tasks/{id}` says instead (§5.5).
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
        409: "idempotency_conflict",
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
) -> ErrorBody:
    """The documented error JSON for ``code`` as ``endpoint`` words it.

    With ``int_code`` the body takes the integer variant: ``code`` is the HTTP status and the
    keys ``param`` and ``fallback_suggestion`` are always present.
    """
    spec = ERRORS.get(code)
    err_type = spec["type"] if spec else "api_error"
    text = spec["message"] if spec else "Request failed"
    if endpoint == "task" and code in TASK_ERROR_OVERRIDES:
        err_type, text = TASK_ERROR_OVERRIDES[code]
    http_status = status if status is not None else spec["status"] if spec else 500
    detail: ErrorDetail = {
        "code": http_status if int_code else code,
        "message": message if message is not None else text,
        "type": err_type,
    }
    if int_code:
        detail["param"] = param
        detail["fallback_suggestion"] = spec["suggestion"] if spec else "retry later"
    elif param is not None:
        detail["param"] = param
    return {"error": detail}


def code_for_status(endpoint: Endpoint, status: int) -> str:
    """The error code a fault with only a ``status`` answers with on ``endpoint``."""
    found = _CODE_FOR_STATUS[endpoint].get(status) or _SERVER_CODES.get(status)
    return found if found is not None else f"http_{status}"


def status_of(code: str) -> int:
    spec = ERRORS.get(code)
    return spec["status"] if spec else 500


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
