"""A writer process of the audit insert benchmark; imports Django only once started.

Nothing Django-related may be imported at module level: a spawned child imports
this module before django.setup(), and a model import there raises
AppRegistryNotReady before the child can report anything.
"""

import os
import time
import traceback

# How long a writer waits for the others at the start line before giving up.
BARRIER_TIMEOUT = 120


def insert_one(evidence: bool, i: int) -> None:
    from audit_app.models import AuditLog
    from audit_app.services import audit_record

    fields = {
        "event_type": "user.updated",
        "actor_id": "bench-actor",
        "user_id": f"bench-user-{i % 500}",
        "target_type": "user",
        "target_id": f"bench-user-{i % 500}",
        "metadata": {"fields": ["name"]},
        "ip_address": "192.0.2.1",
        "user_agent": "bench/1.0",
        "request_id": f"bench-{i}",
    }
    if evidence:
        audit_record(**fields)
    else:
        # The plain insert audit_record did before tamper evidence: no id first, no MAC.
        AuditLog.objects.create(**fields)


def writer(evidence: bool, count: int, barrier, results) -> None:
    """Process entry point: warm up, wait for the others, insert `count` rows, report the span.

    Puts ("ok", start, end) on `results`, or ("error", traceback) when anything
    fails, and breaks the barrier so the other writers stop waiting too.
    """
    try:
        os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
        import django

        django.setup()
        from django.db import connections

        for i in range(20):  # warm the connection and the code paths
            insert_one(evidence, i)
        barrier.wait(timeout=BARRIER_TIMEOUT)
        started = time.monotonic()
        for i in range(count):
            insert_one(evidence, i)  # each in its own committed transaction
        connections.close_all()
        results.put(("ok", started, time.monotonic()))
    except BaseException:
        barrier.abort()
        results.put(("error", traceback.format_exc()))
