// better-auth's official client (createAuthClient from better-auth/client) against a live
// sv_sdk, in both of its modes: a browser's cookie (with the front end's Origin) and a
// bearer token taken from set-auth-token. tests/better_auth/test_client.py starts the
// server and runs this with `node --test`.
//
// Environment:
//   SV_URL      the server's base URL (the client appends /api/auth)
//   SV_ORIGIN   a trusted front-end origin (SV_TRUSTED_ORIGINS), sent by the cookie mode
//   SV_CASES    JSON: per mode, a user waiting for verification and one with a reset
//               link, with the tokens their emails carry ({cookie: {...}, bearer: {...}}),
//               and the logins of two users at the OpenID Provider (`social`, `linked`)
//   SV_PROVIDER_PASSWORD  their password at the provider (tests/oidc, provider id `test`)
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, test } from "node:test";
import { createAuthClient } from "better-auth/client";
import { twoFactorClient } from "better-auth/client/plugins";

const baseURL = process.env.SV_URL;
const origin = process.env.SV_ORIGIN;
const cases = JSON.parse(process.env.SV_CASES);
const PASSWORD = "a long and memorable passphrase";

// Keep a response's cookies in `jar` (a Map), as a browser would.
function keepCookies(jar, response) {
  for (const line of response.headers.getSetCookie()) {
    const [pair, ...attributes] = line.split(";");
    const name = pair.slice(0, pair.indexOf("=")).trim();
    const value = pair.slice(pair.indexOf("=") + 1).trim();
    const gone = attributes.some((a) => a.trim().toLowerCase() === "max-age=0");
    if (gone || value === "" || value === '""') jar.delete(name);
    else jar.set(name, value);
  }
}

// fetch with a cookie jar, following no redirect.
async function jarFetch(jar, input, init = {}, extra = {}) {
  const headers = new Headers(init.headers ?? (input instanceof Request ? input.headers : {}));
  for (const [name, value] of Object.entries(extra)) headers.set(name, value);
  if (jar.size) headers.set("cookie", [...jar].map(([k, v]) => `${k}=${v}`).join("; "));
  const response = await fetch(input, { redirect: "manual", ...init, headers });
  keepCookies(jar, response);
  return response;
}

// A browser's cookie jar for Node's fetch, which keeps none, and the page's Origin.
function browserFetch() {
  const jar = new Map();
  const impl = (input, init = {}) => jarFetch(jar, input, init, { origin });
  return { impl, jar };
}

// One signed-in front end: a client in `mode` and what it holds. `browser` is the cookie jar
// of the browser tab that visits the provider (in the bearer mode, the app hands it the
// sign-in's binding cookie, as the tab that opens the provider's URL must carry it).
function frontEnd(mode, options = {}) {
  const plugins = [twoFactorClient(options)];
  if (mode === "cookie") {
    const browser = browserFetch();
    const client = createAuthClient({
      baseURL,
      plugins,
      fetchOptions: { customFetchImpl: browser.impl },
    });
    return { client, browser: browser.jar, holds: () => browser.jar.get("better-auth.session_token") };
  }
  let token;
  const browser = new Map();
  const client = createAuthClient({
    baseURL,
    plugins,
    fetchOptions: {
      auth: { type: "Bearer", token: () => token },
      onSuccess(context) {
        const value = context.response.headers.get("set-auth-token");
        if (value) token = value;
        keepCookies(browser, context.response);
      },
    },
  });
  return {
    client,
    browser,
    holds: () => token,
    forget: () => (token = undefined),
    adopt: (value) => (token = value),
  };
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

// The provider's side: its login and consent pages, as the user's browser tab goes through
// them; returns the address it sends the browser back to (on the front end's origin).
async function providerLogin(url, login) {
  const provider = new Map();
  let response = await jarFetch(provider, url);
  for (let i = 0; i < 12; i++) {
    if (response.status >= 300 && response.status < 400) {
      url = new URL(response.headers.get("location"), url).toString();
      if (url.startsWith(origin)) return url;
      response = await jarFetch(provider, url);
      continue;
    }
    const page = await response.text();
    assert.equal(response.status, 200, page);
    const form = page.includes('id="login"')
      ? { path: "login", body: new URLSearchParams({ login, password: process.env.SV_PROVIDER_PASSWORD }) }
      : { path: "confirm", body: new URLSearchParams() };
    response = await jarFetch(provider, `${url}/${form.path}`, { method: "POST", body: form.body });
  }
  throw new Error("the provider never sent the browser back");
}

// The browser tab at the provider's callback (SV_PUBLIC_URL is the front end's origin, which
// forwards /api to sv_sdk: here, the test server).
async function providerCallback(me, url, login) {
  const back = await providerLogin(url, login);
  return jarFetch(me.browser, back.replace(origin, baseURL), {}, { origin });
}

// RFC 6238 codes from the totpURI, as an authenticator app makes them: each step used once.
const usedSteps = new Map();
function base32(text) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of text.replace(/=+$/, "").toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, "0");
  return Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
}
function codeAt(secret, step) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac("sha1", base32(secret)).update(counter).digest();
  const offset = mac[mac.length - 1] & 0xf;
  return String((mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000).padStart(6, "0");
}
async function totpCode(totpURI) {
  const secret = new URL(totpURI).searchParams.get("secret");
  const now = () => Math.floor(Date.now() / 30_000);
  const step = Math.max(now(), (usedSteps.get(secret) ?? 0) + 1);
  while (step > now() + 1) await sleep(1000);
  usedSteps.set(secret, step);
  return codeAt(secret, step);
}
function wrongCode(code) {
  return String((Number(code) + 500_000) % 1_000_000).padStart(6, "0");
}

for (const mode of ["cookie", "bearer"]) {
  describe(`the official client's two-factor plugin, ${mode} mode`, () => {
    const email = `${mode}-2fa@example.com`;
    const me = frontEnd(mode);
    const client = me.client;
    let totpURI;
    let backupCodes;

    // The second step of a sign-in rides on the plugin's two-factor cookie in both modes;
    // a bearer client then keeps the session from set-auth-token.
    function signingIn() {
      const redirects = [];
      const other = frontEnd("cookie", { onTwoFactorRedirect: (context) => redirects.push(context) });
      return { ...other, redirects };
    }

    test("enable with the password answers the totpURI and backup codes", async () => {
      ok(await client.signUp.email({ email, password: PASSWORD, name: "Two" }));
      failed(await client.twoFactor.enable({ password: "not the passphrase" }), 400, "INVALID_PASSWORD");
      const data = ok(await client.twoFactor.enable({ password: PASSWORD }));
      assert.match(data.totpURI, /^otpauth:\/\/totp\//);
      assert.equal(data.backupCodes.length, 10);
      ({ totpURI, backupCodes } = data);
      assert.equal(ok(await client.twoFactor.getTotpUri({ password: PASSWORD })).totpURI, totpURI);
    });

    test("verifyTotp with a first code turns it on", async () => {
      const code = await totpCode(totpURI);
      failed(await client.twoFactor.verifyTotp({ code: wrongCode(code) }), 401, "INVALID_CODE");
      const data = ok(await client.twoFactor.verifyTotp({ code }));
      assert.equal(data.user.email, email);
      failed(await client.twoFactor.enable({ password: PASSWORD }), 400, "TOTP_ALREADY_ENABLED");
    });

    test("signIn.email answers twoFactorRedirect, and verifyTotp opens the session", async () => {
      const other = signingIn();
      const step = ok(await other.client.signIn.email({ email, password: PASSWORD }));
      assert.deepEqual(step, { twoFactorRedirect: true, twoFactorMethods: ["totp"] });
      assert.deepEqual(other.redirects, [{ twoFactorMethods: ["totp"] }]);
      assert.equal(ok(await other.client.getSession()), null);
      const pending = other.browser.get("better-auth.two_factor");
      assert.ok(pending);

      const code = await totpCode(totpURI);
      failed(await other.client.twoFactor.verifyTotp({ code: wrongCode(code) }), 401, "INVALID_CODE");
      const data = ok(await other.client.twoFactor.verifyTotp({ code }));
      assert.equal(data.user.email, email);
      assert.ok(!other.browser.has("better-auth.two_factor"));
      if (mode === "bearer") {
        const app = frontEnd("bearer");
        app.adopt(data.token);
        assert.equal(ok(await app.client.getSession()).user.email, email);
      } else {
        assert.equal(ok(await other.client.getSession()).user.email, email);
      }
      // The pending sign-in is spent.
      const replay = frontEnd("cookie");
      replay.browser.set("better-auth.two_factor", pending);
      failed(await replay.client.twoFactor.verifyTotp({ code }), 401, "INVALID_TWO_FACTOR_COOKIE");
    });

    test("verifyBackupCode finishes a sign-in once per code", async () => {
      const other = signingIn();
      ok(await other.client.signIn.email({ email, password: PASSWORD }));
      failed(await other.client.twoFactor.verifyBackupCode({ code: "aaaaa-bbbbb" }), 401, "INVALID_BACKUP_CODE");
      assert.equal(ok(await other.client.twoFactor.verifyBackupCode({ code: backupCodes[0] })).user.email, email);
      const again = signingIn();
      ok(await again.client.signIn.email({ email, password: PASSWORD }));
      failed(await again.client.twoFactor.verifyBackupCode({ code: backupCodes[0] }), 401, "INVALID_BACKUP_CODE");
    });

    test("generateBackupCodes replaces the set", async () => {
      const data = ok(await client.twoFactor.generateBackupCodes({ password: PASSWORD }));
      assert.equal(data.status, true);
      assert.equal(data.backupCodes.length, 10);
      const other = signingIn();
      ok(await other.client.signIn.email({ email, password: PASSWORD }));
      failed(await other.client.twoFactor.verifyBackupCode({ code: backupCodes[1] }), 401, "INVALID_BACKUP_CODE");
      ok(await other.client.twoFactor.verifyBackupCode({ code: data.backupCodes[1] }));
    });

    test("sendOtp is refused: sv_sdk mails no second-factor codes", async () => {
      failed(await client.twoFactor.sendOtp(), 400, "OTP_NOT_CONFIGURED");
    });

    test("disable with the password turns it off", async () => {
      failed(await client.twoFactor.disable({ password: "not the passphrase" }), 400, "INVALID_PASSWORD");
      assert.deepEqual(ok(await client.twoFactor.disable({ password: PASSWORD })), { status: true });
      const other = frontEnd(mode);
      const data = ok(await other.client.signIn.email({ email, password: PASSWORD }));
      assert.equal(data.user.email, email);
    });
  });

  describe(`the official client's social sign-in, ${mode} mode`, () => {
    const { social, linked } = cases[mode];

    test("signIn.social answers the provider's URL, and its callback signs the user in", async () => {
      const me = frontEnd(mode);
      const data = ok(await me.client.signIn.social({ provider: "test", callbackURL: "/welcome" }));
      assert.equal(data.redirect, true);
      const response = await providerCallback(me, data.url, social.login);
      assert.equal(response.status, 302);
      assert.equal(response.headers.get("location"), `${origin}/welcome`);
      if (me.adopt) me.adopt(response.headers.get("set-auth-token"));
      const session = ok(await me.client.getSession());
      assert.equal(session.user.email, social.email);
      assert.equal(session.user.emailVerified, true);

      const accounts = ok(await me.client.listAccounts());
      assert.deepEqual(accounts.map((a) => a.providerId), ["test"]);
      failed(await me.client.unlinkAccount({ accountId: accounts[0].id }), 400, "FAILED_TO_UNLINK_LAST_ACCOUNT");
    });

    test("an untrusted callbackURL or an unknown provider is refused", async () => {
      const me = frontEnd(mode);
      failed(
        await me.client.signIn.social({ provider: "test", callbackURL: "https://evil.example/" }),
        403,
        "INVALID_CALLBACK_URL",
      );
      failed(await me.client.signIn.social({ provider: "nowhere" }), 404, "PROVIDER_NOT_FOUND");
    });

    test("linkSocial adds the provider to a signed-in user, and unlinkAccount removes it", async () => {
      const me = frontEnd(mode);
      ok(await me.client.signUp.email({ email: `${mode}-linker@example.com`, password: PASSWORD, name: "L" }));
      const data = ok(await me.client.linkSocial({ provider: "test", callbackURL: "/linked" }));
      assert.equal(data.redirect, true);
      const response = await providerCallback(me, data.url, linked.login);
      assert.equal(response.headers.get("location"), `${origin}/linked`);

      const accounts = ok(await me.client.listAccounts());
      assert.deepEqual(accounts.map((a) => a.providerId), ["credential", "test"]);
      assert.deepEqual(ok(await me.client.unlinkAccount({ accountId: accounts[1].id })), { status: true });
      assert.deepEqual(ok(await me.client.listAccounts()).map((a) => a.providerId), ["credential"]);
    });
  });
}
