// A real OpenID provider for jwtgate's end-to-end tests (panva/oidc-provider, its
// development interactions for the login and consent pages). Configured from the
// environment; prints "listening on <issuer>" once it accepts connections.
//   PORT            the port on 127.0.0.1
//   REDIRECT_URIS   the client's redirect URIs, comma-separated
//   BACKCHANNEL_URI the client's back-channel logout URI
//   TOKEN_TTL       lifetime of ID and access tokens in seconds (default 3600); refresh
//                   tokens are issued at every sign-in and rotate at every use
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const redirectUris = process.env.REDIRECT_URIS.split(',');
const tokenTtl = Number(process.env.TOKEN_TTL || 3600);

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'web',
    client_secret: 'web-secret-web-secret-web-secret',
    redirect_uris: redirectUris,
    post_logout_redirect_uris: redirectUris.map((u) => new URL('/', u).href),
    backchannel_logout_uri: process.env.BACKCHANNEL_URI,
    backchannel_logout_session_required: true,
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  features: {
    devInteractions: { enabled: true },
    backchannelLogout: { enabled: true },
    revocation: { enabled: true },
  },
  ttl: { AccessToken: tokenTtl, IdToken: tokenTtl, RefreshToken: 86400, Grant: 86400, Session: 86400 },
  // A refresh token at every sign-in (not only for offline_access), spent at every use.
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  rotateRefreshToken: () => true,
  claims: { openid: ['sub'], email: ['email', 'email_verified'] },
  findAccount: async (ctx, id) => ({
    accountId: id,
    claims: async () => ({ sub: id, email: `${id}@example.com`, email_verified: true }),
  }),
  cookies: { keys: ['jwtgate-test-cookie-key'] },
  // The provider refuses to call special-use addresses (SSRF protection); the app under test
  // is on 127.0.0.1 by design, so its back-channel calls go through plain fetch.
  fetch: (url, options) => {
    const { dispatcher, ...rest } = options;
    return globalThis.fetch(url, rest);
  },
});
// Plain HTTP on 127.0.0.1 is what the tests use.
provider.proxy = false;
provider.on('backchannel.error', (ctx, err, client) => {
  console.error(`backchannel.error ${client.clientId}: ${err.message} ${err.cause ? err.cause.message || err.cause : ""}`);
});
provider.on('server_error', (ctx, err) => console.error(`server_error: ${err.stack}`));

provider.listen(port, '127.0.0.1', () => {
  console.log(`listening on ${issuer}`);
});
