// A real OpenID Provider (oidc-provider) for the OAuth tests: started once per test session.
//
// It listens on a free 127.0.0.1 port and prints one JSON line, {"issuer": ...}, when ready.
// Clients register themselves (dynamic registration). Besides the provider's own endpoints it
// serves, for tests only:
//   GET/POST /interaction/:uid[/login|/confirm|/abort]  the login and consent pages
//   POST /test/accounts  {sub, email, email_verified, name, password}  add or replace a user
//   POST /test/tamper    {mode}  change the next token response's ID token, re-signed with the
//                        provider's own key: expired, audience, issuer, nonce; "signature" breaks
//                        the signature; "" turns it off
//   POST /test/delay     {ms}    answer every later request that much later (0 turns it off)
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

import * as jose from 'jose';
import Provider from 'oidc-provider';

const accounts = new Map();
let tamper = '';
let delayMs = 0;

const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
const signingKey = { ...(await jose.exportJWK(privateKey)), kid: 'test-key', alg: 'RS256', use: 'sig' };

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  jwks: { keys: [signingKey] },
  cookies: { keys: ['test-cookie-key-not-secret'] },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  conformIdTokenClaims: false,
  features: {
    devInteractions: { enabled: false },
    registration: { enabled: true },
    revocation: { enabled: true },
  },
  pkce: { required: () => true },
  rotateRefreshToken: true,
  ttl: {
    AccessToken: 3600,
    AuthorizationCode: 60,
    IdToken: 3600,
    Interaction: 600,
    Grant: 86400,
    RefreshToken: 86400,
    Session: 3600,
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(_ctx, sub) {
    const account = accounts.get(sub);
    if (!account) return undefined;
    return {
      accountId: sub,
      async claims() {
        return { sub, email: account.email, email_verified: account.email_verified, name: account.name };
      },
    };
  },
});

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString();
  if ((req.headers['content-type'] || '').includes('json')) return JSON.parse(text || '{}');
  return Object.fromEntries(new URLSearchParams(text));
}

const escape = (value) => String(value).replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title, body) {
  return `<!doctype html><html><head><title>${escape(title)}</title></head><body><h1>${escape(title)}</h1>${body}</body></html>`;
}

async function tamperIdToken(idToken) {
  if (tamper === 'signature') {
    const last = idToken.at(-2) === 'A' ? 'B' : 'A';
    return `${idToken.slice(0, -2)}${last}${idToken.at(-1)}`;
  }
  const claims = jose.decodeJwt(idToken);
  const now = Math.floor(Date.now() / 1000);
  if (tamper === 'expired') Object.assign(claims, { iat: now - 7200, exp: now - 3600 });
  if (tamper === 'audience') claims.aud = 'someone-else';
  if (tamper === 'issuer') claims.iss = 'http://127.0.0.1:1/not-this-provider';
  if (tamper === 'nonce') claims.nonce = 'a-nonce-nobody-sent';
  return new jose.SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'test-key' }).sign(privateKey);
}

async function interaction(ctx, uid, action) {
  const { req, res } = ctx;
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) ctx.throw(400, 'interaction mismatch');
  const { prompt, params, session } = details;
  if (ctx.method === 'GET') {
    ctx.type = 'html';
    if (prompt.name === 'login') {
      ctx.body = page(
        'Sign in to the test provider',
        `<form method="post" action="/interaction/${uid}/login">
          <label>Login <input name="login" id="login" autofocus></label>
          <label>Password <input name="password" id="password" type="password"></label>
          <button type="submit" id="sign-in">Sign in</button></form>`,
      );
    } else {
      ctx.body = page(
        `Allow ${params.client_id} to see ${params.scope}?`,
        `<form method="post" action="/interaction/${uid}/confirm"><button type="submit" id="allow">Allow</button></form>
         <form method="post" action="/interaction/${uid}/abort"><button type="submit" id="deny">Deny</button></form>`,
      );
    }
    return;
  }
  let result;
  if (action === 'login') {
    const form = await readBody(req);
    const account = accounts.get(form.login);
    if (!account || account.password !== form.password) {
      ctx.status = 401;
      ctx.type = 'html';
      ctx.body = page('Wrong login or password', '');
      return;
    }
    result = { login: { accountId: form.login } };
  } else if (action === 'confirm') {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const missing = prompt.details;
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes || {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    result = { consent: { grantId: await grant.save() } };
  } else {
    result = { error: 'access_denied', error_description: 'The user said no.' };
  }
  ctx.redirect(await provider.interactionResult(req, res, result, { mergeWithLastSubmission: false }));
}

provider.use(async (ctx, next) => {
  if (ctx.path.startsWith('/test/') && ctx.method === 'POST') {
    const body = await readBody(ctx.req);
    if (ctx.path === '/test/accounts') accounts.set(body.sub, body);
    else if (ctx.path === '/test/tamper') tamper = body.mode || '';
    else if (ctx.path === '/test/delay') delayMs = Number(body.ms) || 0;
    else ctx.throw(404);
    ctx.status = 204;
    return;
  }
  if (delayMs) await sleep(delayMs);
  const match = ctx.path.match(/^\/interaction\/([^/]+)(?:\/(login|confirm|abort))?$/);
  if (match) {
    await interaction(ctx, match[1], match[2]);
    return;
  }
  await next();
  if (ctx.path === '/token' && tamper && ctx.body && ctx.body.id_token) {
    ctx.body = { ...ctx.body, id_token: await tamperIdToken(ctx.body.id_token) };
    tamper = '';
  }
});

server.on('request', provider.callback());
process.stdout.write(`${JSON.stringify({ issuer })}\n`);
