// A better-auth server, as a team running better-auth would deploy it: email and password,
// the bearer plugin, a PostgreSQL database. The import test uses it to make a real
// better-auth database; `make bench` runs it as the peer sv_sdk is measured against.
//
//   DATABASE_URL=postgres://... PORT=3100 node server.mjs
//
// Environment:
//   DATABASE_URL         the better-auth database (its tables are created at start)
//   PORT                 where to listen (default 3100); the line "listening <port>" is printed
//   BETTER_AUTH_SECRET   the signing secret (a fixed test value by default)
//   RATE_LIMIT           "on" keeps better-auth's rate limits (off by default, as in the bench)
//   VERIFICATION_LOG     a file that receives one JSON line per verification or password-reset
//                        email it would send: {kind, email, url, token}
import http from "node:http";
import fs from "node:fs";
import pg from "pg";
import { betterAuth } from "better-auth";
import { bearer } from "better-auth/plugins";
import { toNodeHandler } from "better-auth/node";
import { getMigrations } from "better-auth/db/migration";

const port = Number(process.env.PORT || 3100);
const baseURL = `http://127.0.0.1:${port}`;
const verificationLog = process.env.VERIFICATION_LOG;
const logEmail = (kind, { user, url, token }) => {
  if (verificationLog) {
    fs.appendFileSync(verificationLog, JSON.stringify({ kind, email: user.email, url, token }) + "\n");
  }
};

const options = {
  baseURL,
  secret: process.env.BETTER_AUTH_SECRET || "peer-secret-for-tests-and-benchmarks-only-0123456789",
  database: new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 }),
  emailAndPassword: {
    enabled: true,
    sendResetPassword: async (data) => logEmail("reset-password", data),
  },
  emailVerification: {
    sendVerificationEmail: async (data) => logEmail("verify-email", data),
  },
  plugins: [bearer()],
  rateLimit: { enabled: process.env.RATE_LIMIT === "on" },
  trustedOrigins: [baseURL],
  telemetry: { enabled: false },
};

const { runMigrations } = await getMigrations(options);
await runMigrations();

const auth = betterAuth(options);
const handler = toNodeHandler(auth);
const server = http.createServer((req, res) => {
  if (req.url.startsWith("/api/auth")) return handler(req, res);
  res.statusCode = 404;
  res.end();
});
server.keepAliveTimeout = 65_000;
server.listen(port, "127.0.0.1", () => console.log(`listening ${port}`));
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => server.close(() => process.exit(0)));
