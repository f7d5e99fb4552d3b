/* oauth.mjs - mock OAuth token endpoints for the providers whose credential
 * is a token (tests/mock/native.mjs serves them beside the providers):
 *
 * Google (POST /token): RFC 7523's jwt-bearer grant as Google's endpoint
 *   takes it.  The assertion's RS256 signature is verified (OpenSSL through
 *   node's crypto) with the public key of the account named by `iss`, and
 *   its claims checked (kid, aud = this endpoint, cloud-platform scope,
 *   a one-hour lifetime around now).  Google's own 400 bodies otherwise
 *   ("invalid_grant", "Invalid JWT Signature.").  A granted token is
 *   "ya29.mock-<n>", valid expires_in seconds (per account).
 * Azure Entra ID (POST /<tenant>/oauth2/v2.0/token, client credentials)
 *   and the instance metadata service (GET /metadata/identity/oauth2/token,
 *   with the Metadata: true header): Entra's AADSTS error bodies; tokens
 *   "eyJ.mock-azure-<n>" with expires_in a number (Entra) or a string
 *   (IMDS, as Azure sends it).
 * Every issued token is kept with its expiry, so a provider mock can
 * refuse an unknown or expired one (tokenValid).
 */
import crypto from 'node:crypto';

export const GCP_EMAIL = 'sluice-test@mock-project.iam.gserviceaccount.com';
export const GCP_SHORT_EMAIL = 'short-lived@mock-project.iam.gserviceaccount.com';
export const AZ = { tenant: 'mock-tenant-0001', clientId: 'mock-client-id-0001', clientSecret: 'mock~client~secret~0123456789', miClientId: 'mock-user-assigned-0002' };

/* One RSA key per account; a third key that no account owns signs the
 * "forged" service account (its client_email is a registered one). */
function keyPair() {
    return crypto.generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
}

export function createOAuth() {
    const o = {
        accounts: new Map(), /* email -> { publicKey, kid, ttl } */
        tokens: new Map(),   /* token -> expiry (ms) */
        grants: [],          /* every token request: { kind, claims?, header?, at } */
        failNext: 0,         /* answer this many token requests with 500 */
        hold: false,         /* keep Google token requests unanswered until release() */
        held: [],
        issued: 0,
    };
    o.serviceAccount = (email, { ttl = 3600, forged = false, tokenUri } = {}) => {
        /* one key per account; a forged one claims the account's key id */
        let acct = o.accounts.get(email);
        if (!acct) {
            const pair = keyPair();
            acct = { publicKey: pair.publicKey, privateKey: pair.privateKey, kid: crypto.randomBytes(20).toString('hex'), ttl };
            o.accounts.set(email, acct);
        }
        const k = forged ? keyPair() : acct;
        const kid = acct.kid;
        return JSON.stringify({
            type: 'service_account', project_id: 'mock-project', private_key_id: kid,
            private_key: k.privateKey, client_email: email, client_id: '1234567890',
            auth_uri: 'https://accounts.google.com/o/oauth2/auth', token_uri: tokenUri ?? `${o.base}/token`,
        });
    };
    o.tokenValid = (auth) => {
        const m = /^Bearer (\S+)$/.exec(auth ?? '');
        const exp = m && o.tokens.get(m[1]);
        return Boolean(exp) && exp > Date.now();
    };
    const issue = (res, prefix, ttl, asString) => {
        const token = `${prefix}${++o.issued}`;
        o.tokens.set(token, Date.now() + ttl * 1000);
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
        res.end(JSON.stringify({ access_token: token, expires_in: asString ? String(ttl) : ttl, token_type: 'Bearer' }));
    };
    const fail = (res, status, body) => {
        res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
        res.end(JSON.stringify(body));
    };

    /* Google's token endpoint */
    o.google = (req, res, raw) => {
        if (o.hold) return o.held.push(() => o.google(req, res, raw));
        const grant = { kind: 'google', at: Date.now() };
        o.grants.push(grant);
        if (o.failNext > 0) {
            o.failNext--;
            return fail(res, 500, { error: 'internal_failure', error_description: 'Backend Error' });
        }
        const form = new URLSearchParams(raw);
        if (req.headers['content-type'] !== 'application/x-www-form-urlencoded') return fail(res, 400, { error: 'invalid_request', error_description: 'Bad Request' });
        if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') return fail(res, 400, { error: 'unsupported_grant_type', error_description: 'Invalid grant_type: ' + form.get('grant_type') });
        const parts = (form.get('assertion') ?? '').split('.');
        if (parts.length !== 3) return fail(res, 400, { error: 'invalid_grant', error_description: 'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.' });
        let header, claims;
        try {
            header = JSON.parse(Buffer.from(parts[0], 'base64url').toString());
            claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString());
        } catch { return fail(res, 400, { error: 'invalid_grant', error_description: 'Invalid JWT.' }); }
        grant.header = header;
        grant.claims = claims;
        const acct = o.accounts.get(claims.iss);
        if (!acct) return fail(res, 400, { error: 'invalid_grant', error_description: 'Invalid grant: account not found' });
        if (header.alg !== 'RS256' || header.typ !== 'JWT' || header.kid !== acct.kid) return fail(res, 400, { error: 'invalid_grant', error_description: 'Invalid JWT header.' });
        /* base64url without padding only, as JWS requires */
        if (!parts.every((p) => /^[A-Za-z0-9_-]+$/.test(p))) return fail(res, 400, { error: 'invalid_grant', error_description: 'Invalid JWT encoding.' });
        const ok = crypto.verify('sha256', Buffer.from(`${parts[0]}.${parts[1]}`), acct.publicKey, Buffer.from(parts[2], 'base64url'));
        if (!ok) return fail(res, 400, { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' });
        const now = Date.now() / 1000;
        if (claims.aud !== `${o.base}/token` || claims.scope !== 'https://www.googleapis.com/auth/cloud-platform') return fail(res, 400, { error: 'invalid_scope', error_description: 'Invalid audience or scope.' });
        if (!(claims.iat <= now + 60 && claims.iat >= now - 300 && claims.exp - claims.iat === 3600)) return fail(res, 400, { error: 'invalid_grant', error_description: 'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.' });
        grant.granted = true;
        return issue(res, 'ya29.mock-', acct.ttl, false);
    };

    /* Entra ID's v2 token endpoint, client credentials */
    o.entra = (req, res, raw, tenant) => {
        const grant = { kind: 'entra', tenant, at: Date.now() };
        o.grants.push(grant);
        const form = new URLSearchParams(raw);
        grant.form = Object.fromEntries(form);
        if (tenant !== AZ.tenant) return fail(res, 400, { error: 'invalid_request', error_description: `AADSTS90002: Tenant '${tenant}' not found.`, error_codes: [90002] });
        if (form.get('grant_type') !== 'client_credentials' || form.get('scope') !== 'https://cognitiveservices.azure.com/.default') return fail(res, 400, { error: 'invalid_request', error_description: 'AADSTS900144: The request body must contain the following parameter: grant_type/scope.' });
        if (form.get('client_id') !== AZ.clientId) return fail(res, 400, { error: 'unauthorized_client', error_description: `AADSTS700016: Application with identifier '${form.get('client_id')}' was not found in the directory.`, error_codes: [700016] });
        if (form.get('client_secret') !== AZ.clientSecret) return fail(res, 401, { error: 'invalid_client', error_description: 'AADSTS7000215: Invalid client secret provided.', error_codes: [7000215] });
        grant.granted = true;
        return issue(res, 'eyJ.mock-azure-', 3599, false);
    };

    /* the instance metadata service's managed identity endpoint */
    o.imds = (req, res, url) => {
        const grant = { kind: 'imds', query: Object.fromEntries(url.searchParams), at: Date.now() };
        o.grants.push(grant);
        if (req.headers.metadata !== 'true') return fail(res, 400, { error: 'invalid_request', error_description: 'Required metadata header not specified' });
        if (url.searchParams.get('api-version') !== '2018-02-01' || url.searchParams.get('resource') !== 'https://cognitiveservices.azure.com') return fail(res, 400, { error: 'invalid_request', error_description: 'Invalid resource or api-version' });
        const cid = url.searchParams.get('client_id');
        if (cid !== null && cid !== AZ.miClientId) return fail(res, 400, { error: 'invalid_request', error_description: 'Identity not found' });
        grant.granted = true;
        return issue(res, 'eyJ.mock-azure-', 86399, true);
    };

    /* route a request to one of the endpoints; false when it is none */
    o.handle = (req, res, url, raw) => {
        if (req.method === 'POST' && url.pathname === '/token') return o.google(req, res, raw), true;
        const t = /^\/([^/]+)\/oauth2\/v2\.0\/token$/.exec(url.pathname);
        if (req.method === 'POST' && t) return o.entra(req, res, raw, decodeURIComponent(t[1])), true;
        if (req.method === 'GET' && url.pathname === '/metadata/identity/oauth2/token') return o.imds(req, res, url), true;
        return false;
    };
    o.release = () => { o.hold = false; for (const f of o.held.splice(0)) f(); };
    o.reset = () => { o.grants.length = 0; o.failNext = 0; o.release(); };
    return o;
}
