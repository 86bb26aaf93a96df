"""A realistic mix for the soak run: sessions, profiles, sign-ins, admin lists, grants, audit.

Run by reliability/soak.py, which passes --admin-token and --role-id.
"""

import itertools

from locust import HttpUser, constant_throughput, events, task

_numbers = itertools.count()
PASSWORD = "correct horse battery staple"


@events.init_command_line_parser.add_listener
def _arguments(parser):
    parser.add_argument("--admin-token", default="", help="Bearer token of a superuser")
    parser.add_argument("--role-id", default="", help="Role granted and revoked by the mix")


class Member(HttpUser):
    """A signed-in user of the application, one request a second."""

    wait_time = constant_throughput(1)
    weight = 4

    def on_start(self):
        n = next(_numbers)
        self.email = f"soak-{n}@example.com"
        response = self.client.post(
            "/api/v1/auth/sign-up",
            json={"email": self.email, "password": PASSWORD},
            name="auth/sign-up",
        )
        self.token = response.json()["session"]["token"] if response.ok else ""
        self.headers = {"Authorization": f"Bearer {self.token}"}
        self.user_id = response.json()["user"]["id"] if response.ok else ""

    @task(10)
    def session(self):
        self.client.get("/api/v1/auth/session", headers=self.headers, name="auth/session")

    @task(3)
    def profile(self):
        self.client.patch(
            "/api/v1/auth/me",
            json={"name": f"member {next(_numbers)}"},
            headers=self.headers,
            name="auth/me PATCH",
        )

    @task(1)
    def sign_in(self):
        self.client.post(
            "/api/v1/auth/sign-in",
            json={"email": self.email, "password": PASSWORD},
            name="auth/sign-in",
        )


class Operator(HttpUser):
    """An admin tool: user lists, role grants and audit queries, one request a second."""

    wait_time = constant_throughput(1)
    weight = 1

    def on_start(self):
        options = self.environment.parsed_options
        self.headers = {"Authorization": f"Bearer {options.admin_token}"}
        self.role_id = options.role_id

    @task(4)
    def users(self):
        self.client.get("/api/v1/users?limit=50", headers=self.headers, name="users")

    @task(3)
    def audit(self):
        self.client.get(
            "/api/v1/audit-logs?event_type=auth.sign_in", headers=self.headers, name="audit-logs"
        )

    @task(2)
    def grant_and_revoke(self):
        page = self.client.get("/api/v1/users?limit=1", headers=self.headers, name="users").json()
        results = page.get("results", page) if isinstance(page, dict) else page
        if not results:
            return
        user_id = results[0]["id"]
        self.client.post(
            f"/api/v1/users/{user_id}/roles",
            json={"role": self.role_id},
            headers=self.headers,
            name="users/{id}/roles POST",
        )
        with self.client.delete(
            f"/api/v1/users/{user_id}/roles/{self.role_id}",
            headers=self.headers,
            name="users/{id}/roles/{role_id} DELETE",
            catch_response=True,
        ) as response:
            # Operators race on the same user: the assignment may be gone already.
            if response.status_code in (204, 404):
                response.success()
