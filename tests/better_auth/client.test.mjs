// better-auth's official client (createAuthClient from better-auth/client) against a live
// sv_sdk, in both of its modes: a browser's cookie (with the front end's Origin) and a
// bearer token taken from set-auth-token. tests/better_auth/test_client.py starts the
// server and runs this with `node --test`.
//
// Environment:
//   SV_URL      the server's base URL (the client appends /api/auth)
//   SV_ORIGIN   a trusted front-end origin (SV_TRUSTED_ORIGINS), sent by the cookie mode
//   SV_CASES    JSON: per mode, a user waiting for verification and one with a reset
//               link, with the tokens their emails carry ({cookie: {...}, bearer: {...}})
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createAuthClient } from "better-auth/client";

const baseURL = process.env.SV_URL;
const origin = process.env.SV_ORIGIN;
const cases = JSON.parse(process.env.SV_CASES);
const PASSWORD = "a long and memorable passphrase";

// A browser's cookie jar for Node's fetch, which keeps none, and the page's Origin.
function browserFetch() {
  const jar = new Map();
  const impl = async (input, init = {}) => {
    const headers = new Headers(init.headers ?? (input instanceof Request ? input.headers : {}));
    headers.set("origin", origin);
    if (jar.size) headers.set("cookie", [...jar].map(([k, v]) => `${k}=${v}`).join("; "));
    const response = await fetch(input, { ...init, headers });
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(";");
      const name = pair.slice(0, pair.indexOf("=")).trim();
      const value = pair.slice(pair.indexOf("=") + 1).trim();
      const gone = attributes.some((a) => a.trim().toLowerCase() === "max-age=0");
      if (gone || value === "" || value === '""') jar.delete(name);
      else jar.set(name, value);
    }
    return response;
  };
  return { impl, jar };
}

// One signed-in front end: a client in `mode` and what it holds.
function frontEnd(mode) {
  if (mode === "cookie") {
    const browser = browserFetch();
    const client = createAuthClient({ baseURL, fetchOptions: { customFetchImpl: browser.impl } });
    return { client, holds: () => browser.jar.get("better-auth.session_token") };
  }
  let token;
  const client = createAuthClient({
    baseURL,
    fetchOptions: {
      auth: { type: "Bearer", token: () => token },
      onSuccess(context) {
        const value = context.response.headers.get("set-auth-token");
        if (value) token = value;
      },
    },
  });
  return { client, holds: () => token, forget: () => (token = undefined) };
}

function ok(result) {
  assert.equal(result.error, null, JSON.stringify(result.error));
  return result.data;
}

function failed(result, status, code) {
  assert.equal(result.data, null);
  assert.equal(result.error.status, status, JSON.stringify(result.error));
  assert.equal(result.error.code, code);
}

for (const mode of ["cookie", "bearer"]) {
  describe(`the official client, ${mode} mode`, () => {
    const email = `${mode}-user@example.com`;
    const me = frontEnd(mode);
    const client = me.client;
    let password = PASSWORD;

    test("getSession is null before anyone signs in", async () => {
      assert.equal(ok(await client.getSession()), null);
    });

    test("signUp.email creates the user and signs them in", async () => {
      const data = ok(await client.signUp.email({ email, password, name: "Ada" }));
      assert.equal(data.user.email, email);
      assert.equal(data.user.emailVerified, false);
      assert.equal(data.user.image, null);
      // The client turns ISO 8601 dates into Dates (the wire format: test_better_auth.py).
      assert.ok(data.user.createdAt instanceof Date && !Number.isNaN(data.user.createdAt.getTime()));
      assert.ok(data.token);
      assert.ok(me.holds().includes(data.token.slice(0, 20)));
      const session = ok(await client.getSession());
      assert.equal(session.user.email, email);
      assert.equal(session.user.name, "Ada");
    });

    test("signUp.email with a taken address is USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL", async () => {
      const other = frontEnd(mode);
      failed(
        await other.client.signUp.email({ email, password, name: "Again" }),
        422,
        "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL",
      );
    });

    test("signIn.email with a wrong password is INVALID_EMAIL_OR_PASSWORD", async () => {
      const other = frontEnd(mode);
      failed(
        await other.client.signIn.email({ email, password: "not the passphrase" }),
        401,
        "INVALID_EMAIL_OR_PASSWORD",
      );
    });

    test("listSessions, revokeSession and revokeOtherSessions", async () => {
      const second = frontEnd(mode);
      const signedIn = ok(await second.client.signIn.email({ email, password }));
      assert.equal(signedIn.user.email, email);
      const third = frontEnd(mode);
      ok(await third.client.signIn.email({ email, password }));

      const listed = ok(await client.listSessions());
      assert.equal(listed.length, 3);
      const mine = ok(await client.getSession()).session;
      const seconds = ok(await second.client.getSession()).session;
      assert.ok(listed.some((s) => s.token === mine.token));

      assert.deepEqual(ok(await client.revokeSession({ token: seconds.token })), { status: true });
      assert.equal(ok(await second.client.getSession()), null);
      assert.equal(ok(await client.listSessions()).length, 2);

      assert.deepEqual(ok(await client.revokeOtherSessions()), { status: true });
      assert.equal(ok(await third.client.getSession()), null);
      assert.deepEqual(
        ok(await client.listSessions()).map((s) => s.token),
        [mine.token],
      );
    });

    test("updateUser changes the profile, not the address", async () => {
      assert.deepEqual(
        ok(await client.updateUser({ name: "Ada Lovelace", image: "https://img.example/a.png" })),
        { status: true },
      );
      const { user } = ok(await client.getSession());
      assert.equal(user.name, "Ada Lovelace");
      assert.equal(user.image, "https://img.example/a.png");
    });

    test("changePassword checks the current password, and the new one signs in", async () => {
      failed(
        await client.changePassword({ currentPassword: "wrong passphrase!", newPassword: "x".repeat(20) }),
        400,
        "INVALID_PASSWORD",
      );
      const newPassword = "an even longer memorable passphrase";
      const data = ok(await client.changePassword({ currentPassword: password, newPassword }));
      assert.equal(data.user.email, email);
      password = newPassword;
      const other = frontEnd(mode);
      ok(await other.client.signIn.email({ email, password }));
      assert.ok(ok(await client.getSession()), "the session that changed it goes on");
    });

    test("listAccounts shows the password as the credential account", async () => {
      const accounts = ok(await client.listAccounts());
      assert.deepEqual(accounts.map((a) => a.providerId), ["credential"]);
    });

    test("sendVerificationEmail and requestPasswordReset answer the same for anyone", async () => {
      for (const address of [email, `nobody-${mode}@example.com`]) {
        assert.deepEqual(
          ok(await client.sendVerificationEmail({ email: address, callbackURL: "/verified" })),
          { status: true },
        );
        const reset = ok(await client.requestPasswordReset({ email: address, redirectTo: "/reset" }));
        assert.equal(reset.status, true);
      }
    });

    test("verifyEmail verifies, and answers the same when opened again", async () => {
      const { verifyToken } = cases[mode];
      const anyone = frontEnd(mode).client;
      for (let i = 0; i < 2; i++) {
        assert.deepEqual(ok(await anyone.verifyEmail({ query: { token: verifyToken } })), {
          status: true,
          user: null,
        });
      }
      failed(await anyone.verifyEmail({ query: { token: "not-a-token" } }), 401, "INVALID_TOKEN");
    });

    test("the reset link redirects with its token, and resetPassword uses it once", async () => {
      const { resetEmail, resetToken } = cases[mode];
      const link = `${baseURL}/api/auth/reset-password/${resetToken}?callbackURL=${encodeURIComponent("/reset")}`;
      const redirect = await fetch(link, { redirect: "manual" });
      assert.equal(redirect.status, 302);
      assert.equal(redirect.headers.get("location"), `/reset?token=${resetToken}`);

      const anyone = frontEnd(mode).client;
      const newPassword = "the reset memorable passphrase";
      assert.deepEqual(ok(await anyone.resetPassword({ newPassword, token: resetToken })), {
        status: true,
      });
      failed(await anyone.resetPassword({ newPassword, token: resetToken }), 400, "INVALID_TOKEN");
      ok(await anyone.signIn.email({ email: resetEmail, password: newPassword }));
    });

    test("changeEmail moves the account to an unverified new address", async () => {
      const newEmail = `${mode}-moved@example.com`;
      assert.deepEqual(ok(await client.changeEmail({ newEmail, callbackURL: "/settings" })), {
        status: true,
      });
      const { user } = ok(await client.getSession());
      assert.equal(user.email, newEmail);
      assert.equal(user.emailVerified, false);
      failed(
        await client.changeEmail({ newEmail: cases[mode].resetEmail }),
        422,
        "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL",
      );
    });

    test("revokeSessions ends every session, the caller's too", async () => {
      ok(await client.revokeSessions());
      assert.equal(ok(await client.getSession()), null);
      if (me.forget) me.forget();
    });

    test("signOut ends the session", async () => {
      ok(await client.signIn.email({ email: `${mode}-moved@example.com`, password }));
      assert.ok(ok(await client.getSession()));
      assert.deepEqual(ok(await client.signOut()), { success: true });
      if (me.forget) {
        // A bearer client has no cookie to lose: the old token must simply stop working.
        failed(await client.listSessions(), 401, "UNAUTHORIZED");
        me.forget();
      }
      assert.equal(ok(await client.getSession()), null);
    });

    test("deleteUser with the password deletes the account", async () => {
      const moved = `${mode}-moved@example.com`;
      ok(await client.signIn.email({ email: moved, password }));
      failed(await client.deleteUser({ password: "wrong passphrase!" }), 400, "INVALID_PASSWORD");
      assert.deepEqual(ok(await client.deleteUser({ password })), {
        success: true,
        message: "User deleted",
      });
      if (me.forget) me.forget();
      assert.equal(ok(await client.getSession()), null);
      failed(await client.signIn.email({ email: moved, password }), 401, "INVALID_EMAIL_OR_PASSWORD");
    });
  });
}
