// A real, certified OpenID provider (npm oidc-provider) for the console's single
// sign-on tests, on 127.0.0.1 with a random port, named http://localhost:PORT so
// that it is another site than the console (http://127.0.0.1:...).
//
//   node oidc_idp.js --client-id ID --client-secret SECRET --redirect URI --post-logout URI
//
// Prints one JSON line {"issuer": "http://localhost:PORT"} once it listens, then
// serves until killed. Accounts (any password; the provider's own development
// login and consent pages): hana (groups [otp-helpdesk]), omid ([otp-admins]),
// nima ([marketing]); `name` in the profile scope, `groups` in the groups scope.
//
// In front of the provider sits a small proxy that the tests can tell, by
// `POST /__tamper?mode=MODE`, to change the next ID tokens the token endpoint
// answers with, signed again with the provider's own key: `aud` (another
// audience), `exp` (expired an hour ago), `sig` (one signature byte flipped),
// `rotate` (signed with a second key, `k2`, which the JWKS then also lists: a key
// rotation), `rotate3` (signed with a third key, `k3`, listed too: a second
// rotation within the minute), or `none`. `GET /__jwks_fetches` answers how often
// the JWKS was fetched.

'use strict';

const http = require('http');
const crypto = require('crypto');

function args() {
  const out = {};
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) out[argv[i].replace(/^--/, '')] = argv[i + 1];
  for (const k of ['client-id', 'client-secret', 'redirect', 'post-logout']) {
    if (!out[k]) throw new Error(`--${k} is required`);
  }
  return out;
}

const ACCOUNTS = {
  hana: { name: 'Hana Karimi', groups: ['otp-helpdesk'] },
  omid: { name: 'Omid Rahimi', groups: ['otp-admins'] },
  nima: { name: 'Nima Jafari', groups: ['marketing'] },
};

function key(kid) {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
  return { privateKey, jwk };
}

function publicJwk(jwk) {
  const { kty, n, e, kid, alg, use } = jwk;
  return { kty, n, e, kid, alg, use };
}

const b64 = (buf) => Buffer.from(buf).toString('base64url');

/// The ID token with `change` applied to its claims, signed again with `signer`.
function resign(idToken, change, signer) {
  const [h, p] = idToken.split('.');
  const header = { ...JSON.parse(Buffer.from(h, 'base64url')), kid: signer.jwk.kid };
  const claims = JSON.parse(Buffer.from(p, 'base64url'));
  change(claims);
  const input = `${b64(JSON.stringify(header))}.${b64(JSON.stringify(claims))}`;
  return `${input}.${b64(crypto.sign('sha256', Buffer.from(input), signer.privateKey))}`;
}

function flipSignature(idToken) {
  const parts = idToken.split('.');
  const sig = Buffer.from(parts[2], 'base64url');
  sig[10] ^= 0x01;
  parts[2] = b64(sig);
  return parts.join('.');
}

function listen(server, port) {
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server.address().port)));
}

async function main() {
  const opt = args();
  const { default: Provider } = await import('oidc-provider');
  const k1 = key('k1');
  const k2 = key('k2');
  const k3 = key('k3');
  let mode = 'none';
  let jwksFetches = 0;

  const front = http.createServer();
  const port = await listen(front, 0);
  const issuer = `http://localhost:${port}`;

  const provider = new Provider(issuer, {
    clients: [{
      client_id: opt['client-id'],
      client_secret: opt['client-secret'],
      redirect_uris: [opt.redirect],
      post_logout_redirect_uris: [opt['post-logout']],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    jwks: { keys: [k1.jwk] },
    claims: { openid: ['sub'], profile: ['name', 'preferred_username'], groups: ['groups'] },
    scopes: ['openid', 'profile', 'groups'],
    pkce: { required: () => true },
    cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
    features: {
      devInteractions: { enabled: true },
      rpInitiatedLogout: { enabled: true },
    },
    async findAccount(ctx, id) {
      const account = ACCOUNTS[id];
      if (!account) return undefined;
      return {
        accountId: id,
        async claims() {
          return { sub: id, name: account.name, preferred_username: id, groups: account.groups };
        },
      };
    },
  });
  provider.on('server_error', (ctx, err) => process.stderr.write(`idp server_error: ${err}\n`));
  const inner = http.createServer(provider.callback());
  const innerPort = await listen(inner, 0);

  front.on('request', (req, res) => {
    const url = new URL(req.url, issuer);
    if (url.pathname === '/__jwks_fetches') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ fetches: jwksFetches }));
      return;
    }
    if (url.pathname === '/jwks') jwksFetches += 1;
    if (url.pathname === '/__tamper' && req.method === 'POST') {
      mode = url.searchParams.get('mode') || 'none';
      res.writeHead(204);
      res.end();
      return;
    }
    const upstream = http.request({
      host: '127.0.0.1', port: innerPort, method: req.method, path: req.url, headers: req.headers,
    }, (up) => {
      const isToken = url.pathname === '/token' && up.statusCode === 200;
      const isJwks = url.pathname === '/jwks' && up.statusCode === 200;
      const rotated = mode === 'rotate' || mode === 'rotate3';
      if (!(isToken && mode !== 'none') && !(isJwks && rotated)) {
        res.writeHead(up.statusCode, up.headers);
        up.pipe(res);
        return;
      }
      const chunks = [];
      up.on('data', (c) => chunks.push(c));
      up.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString());
        if (isJwks) {
          body.keys.push(publicJwk(k2.jwk));
          if (mode === 'rotate3') body.keys.push(publicJwk(k3.jwk));
        } else if (body.id_token) {
          const now = Math.floor(Date.now() / 1000);
          body.id_token = {
            aud: () => resign(body.id_token, (c) => { c.aud = 'someone-else'; }, k1),
            exp: () => resign(body.id_token, (c) => { c.iat = now - 7200; c.exp = now - 3600; }, k1),
            sig: () => flipSignature(body.id_token),
            rotate: () => resign(body.id_token, () => {}, k2),
            rotate3: () => resign(body.id_token, () => {}, k3),
          }[mode]();
        }
        const text = JSON.stringify(body);
        const headers = { ...up.headers, 'content-length': Buffer.byteLength(text) };
        delete headers['transfer-encoding'];
        delete headers.etag;
        res.writeHead(up.statusCode, headers);
        res.end(text);
      });
    });
    upstream.on('error', (e) => { res.writeHead(502); res.end(String(e)); });
    req.pipe(upstream);
  });

  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
  // The test reads that one line and closes the pipe: anything else goes to stderr.
  process.stdout.on('error', () => {});
  console.log = console.error;
  console.info = console.error;
}

main().catch((e) => { process.stderr.write(`${e.stack || e}\n`); process.exit(1); });
