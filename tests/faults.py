"""A connection hook that makes one SQL statement fail, for fault-injection tests."""

import re

from django.db import OperationalError


class InjectedFault(OperationalError):
    """What the failing statement raises: the database refused it."""


class FailAt:
    """execute_wrapper that fails the statement matching `pattern`, or the Nth one.

    Without either it only counts, which tells how many statements a flow runs.
    """

    def __init__(self, *, pattern: str | None = None, nth: int | None = None):
        self.pattern = re.compile(pattern) if pattern else None
        self.nth = nth
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        if (self.pattern and self.pattern.search(sql)) or self.count == self.nth:
            raise InjectedFault(f"injected failure at statement {self.count}")
        return execute(sql, params, many, context)
