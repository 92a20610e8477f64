"""Settings every server a test starts gets unless the test says otherwise.

Passwords are hashed at a tiny cost, and the per-address auth limits are out of reach: every
test signs in from 127.0.0.1, hundreds of times per run. Tests of those limits set their own.
"""

from __future__ import annotations

TEST_SERVER_ENV = {
    "NEXYSYNC_PASSWORD_HASH_MEMORY_KIB": "64",
    "NEXYSYNC_PASSWORD_HASH_ITERATIONS": "1",
    "NEXYSYNC_AUTH_REQUESTS_PER_IP_PER_MINUTE": "1000000",
    "NEXYSYNC_REGISTRATIONS_PER_IP_PER_HOUR": "1000000",
    "NEXYSYNC_LOGIN_FAILURES_PER_ACCOUNT_IP": "1000000",
    "NEXYSYNC_LOGIN_FAILURES_PER_ACCOUNT": "1000000",
    "NEXYSYNC_HUMAN_RATE_LIMIT_PER_MINUTE": "1000000",
    "NEXYSYNC_QUOTA_PROJECTS_PER_USER": "1000",
}
