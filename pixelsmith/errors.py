"""Typed failures shared by every front end.

Each error carries a stable ``code`` and a human ``message``; the CLI prints the
message, and the HTTP adapters map the class to their own wire shapes
(Stability ``{id, name, errors[]}``, Bedrock ``x-amzn-ErrorType``).
"""

from __future__ import annotations

from dataclasses import dataclass, field


class PixelsmithError(Exception):
    """Base class. ``status`` is the HTTP status a front end should use."""

    code = "internal_error"
    status = 500

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    @property
    def details(self) -> list[str]:
        """One line per problem, as Stability's ``errors[]`` lists them."""
        return [self.message]


@dataclass
class FieldProblem:
    field: str
    message: str
    code: str = "invalid"

    def line(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class InvalidRequest(PixelsmithError):
    """One or more fields are missing, malformed or out of range."""

    code = "bad_request"
    status = 400

    def __init__(self, problems: list[FieldProblem], accepted_fields: list[str] | None = None):
        self.problems = problems
        self.accepted_fields = accepted_fields or []
        super().__init__("; ".join(p.line() for p in problems) or "invalid request")

    @property
    def details(self) -> list[str]:
        return [p.line() for p in self.problems]

    @classmethod
    def one(cls, field_name: str, message: str, code: str = "invalid") -> InvalidRequest:
        return cls([FieldProblem(field_name, message, code)])


class ImageTooLarge(InvalidRequest):
    """The image's declared size is over a limit (checked before decoding)."""

    code = "image_too_large"


class PayloadTooLarge(PixelsmithError):
    code = "payload_too_large"
    status = 413


class UnknownTool(PixelsmithError):
    code = "unknown_tool"
    status = 404


class NotFound(PixelsmithError):
    code = "not_found"
    status = 404


class UnknownModel(PixelsmithError):
    code = "unknown_model"
    status = 404


@dataclass
class Missing:
    """What one engine lacks to serve a tool: models and the command that installs them."""

    engine: str
    models: list[str] = field(default_factory=list)
    command: str = ""
    reason: str = ""

    def line(self) -> str:
        parts = [f"{self.engine} engine"]
        if self.models:
            parts.append("needs " + ", ".join(self.models))
        if self.reason:
            parts.append(self.reason)
        text = " ".join(parts)
        if self.command:
            text += f" (install: `{self.command}`)"
        return text


class ToolUnavailable(PixelsmithError):
    """No installed engine can serve this tool; says exactly what is missing."""

    code = "model_not_installed"
    status = 424

    def __init__(self, tool: str, missing: list[Missing]):
        self.tool = tool
        self.missing = missing
        lines = "; ".join(m.line() for m in missing) or "no engine implements it"
        super().__init__(f"{tool} cannot be served on this machine: {lines}")


class Unprocessable(PixelsmithError):
    """Well-formed, but the tool cannot do it (e.g. a phrase it cannot ground)."""

    code = "unprocessable"
    status = 422


class RateLimited(PixelsmithError):
    code = "rate_limit_exceeded"
    status = 429

    def __init__(self, message: str, retry_after: float = 1.0):
        super().__init__(message)
        self.retry_after = retry_after


class Busy(PixelsmithError):
    code = "service_unavailable"
    status = 503

    def __init__(self, message: str, retry_after: float = 5.0):
        super().__init__(message)
        self.retry_after = retry_after


class Unauthorized(PixelsmithError):
    code = "unauthorized"
    status = 401


class Forbidden(PixelsmithError):
    code = "forbidden"
    status = 403
