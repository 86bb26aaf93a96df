"""Application errors: each carries an HTTP status and a stable machine-readable code."""


class ApplicationError(Exception):
    status_code = 400
    code = "error"
    title = "Request failed"
    default_detail = "The request could not be completed."

    def __init__(self, detail: str | None = None, *, errors: dict | None = None):
        self.detail = detail or self.default_detail
        self.errors = errors or {}
        super().__init__(self.detail)


class ValidationFailed(ApplicationError):
    status_code = 400
    code = "validation_error"
    title = "Invalid input"
    default_detail = "Some fields are invalid."


class NotFound(ApplicationError):
    status_code = 404
    code = "not_found"
    title = "Not found"
    default_detail = "No such object."


class Conflict(ApplicationError):
    status_code = 409
    code = "conflict"
    title = "Conflict"
