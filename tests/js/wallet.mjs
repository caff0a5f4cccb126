// A standard wallet made of independent implementations (not eduledger's code): the
// @openid4vc/openid4vci client receives a credential, @openid4vc/openid4vp answers a
// verifier's request, @sd-jwt/sd-jwt-vc checks and presents the SD-JWT VC; node's crypto
// (Ed25519) signs. Driven by tests/test_openid4vc.py:
//
//   node wallet.mjs receive <offer-url>                -> {credential, privateJwk, publicJwk, ...}
//   node wallet.mjs check <sd-jwt> <issuer-jwk-json>    -> the SD-JWT VC verifier's verdict
//   node wallet.mjs present <request-url> <wallet.json> [tamper] -> what the verifier answered
//
// Every answer is one JSON object on stdout; a failure is {"error": ...} and exit code 1.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, verify }
  from 'node:crypto';
import { readFileSync } from 'node:fs';

import { Openid4vciClient, setGlobalConfig } from '@openid4vc/openid4vci';
import { clientAuthenticationAnonymous } from '@openid4vc/oauth2';
import { Openid4vpClient } from '@openid4vc/openid4vp';
import { SDJwtVcInstance } from '@sd-jwt/sd-jwt-vc';

setGlobalConfig({ allowInsecureUrls: true }); // the test node serves http on the loopback

const b64u = (buf) => Buffer.from(buf).toString('base64url');
const json = (x) => b64u(Buffer.from(JSON.stringify(x)));

function signEd25519(privateJwk, data) {
  return sign(null, Buffer.from(data), createPrivateKey({ key: privateJwk, format: 'jwk' }));
}

function signCompact(header, payload, privateJwk) {
  const input = `${json(header)}.${json(payload)}`;
  return `${input}.${b64u(signEd25519(privateJwk, input))}`;
}

function callbacks(privateJwk) {
  return {
    hash: (data, alg) => createHash(alg.replace('-', '').toLowerCase()).update(data).digest(),
    generateRandom: (n) => randomBytes(n),
    clientAuthentication: clientAuthenticationAnonymous(),
    signJwt: async (signer, { header, payload }) => {
      if (signer.method !== 'jwk') throw new Error(`signer method ${signer.method}`);
      return { jwt: signCompact(header, payload, privateJwk), signerJwk: signer.publicJwk };
    },
  };
}

async function receive(offerUrl) {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const privateJwk = privateKey.export({ format: 'jwk' });
  const publicJwk = publicKey.export({ format: 'jwk' });
  const client = new Openid4vciClient({ callbacks: callbacks(privateJwk) });
  const offer = await client.resolveCredentialOffer(offerUrl);
  const issuerMetadata = await client.resolveIssuerMetadata(offer.credential_issuer);
  const { accessTokenResponse } = await client.retrievePreAuthorizedCodeAccessTokenFromOffer({
    credentialOffer: offer, issuerMetadata });
  const { c_nonce } = await client.requestNonce({ issuerMetadata });
  const configurationId = offer.credential_configuration_ids[0];
  const { jwt } = await client.createCredentialRequestJwtProof({
    issuerMetadata, credentialConfigurationId: configurationId, nonce: c_nonce,
    signer: { method: 'jwk', alg: 'EdDSA', publicJwk } });
  const response = await client.retrieveCredentials({
    issuerMetadata, accessToken: accessTokenResponse.access_token,
    credentialConfigurationId: configurationId, proofs: { jwt: [jwt] } });
  const body = response.credentialResponse;
  return { credential: body.credentials[0].credential, credential_id: body.credential_id ?? null,
           privateJwk, publicJwk, configurationId,
           accessToken: accessTokenResponse.access_token, tokenType: accessTokenResponse.token_type,
           metadata: issuerMetadata.credentialIssuer };
}

function sdJwtVc(issuerJwk, holderJwk) {
  const check = (jwk) => async (data, signature) =>
    verify(null, Buffer.from(data), createPublicKey({ key: jwk, format: 'jwk' }),
           Buffer.from(signature, 'base64url'));
  return new SDJwtVcInstance({
    hasher: (data, alg) => createHash(alg.replace('-', '').toLowerCase()).update(data).digest(),
    hashAlg: 'sha-256',
    saltGenerator: () => b64u(randomBytes(16)),
    verifier: issuerJwk ? check(issuerJwk) : undefined,
    kbVerifier: async (data, signature, payload) => check(payload.cnf.jwk)(data, signature),
    kbSigner: holderJwk ? async (data) => b64u(signEd25519(holderJwk, data)) : undefined,
    kbSignAlg: 'EdDSA',
  });
}

async function check(sdJwt, issuerJwk) {
  const verified = await sdJwtVc(issuerJwk).verify(sdJwt);
  return { header: verified.header, payload: verified.payload };
}

// The DCQL query's claim paths as the SD-JWT library's presentation frame.
function frameOf(claims) {
  const frame = {};
  for (const { path } of claims ?? []) {
    let at = frame;
    for (const part of path.slice(0, -1)) at = at[part] = (typeof at[part] === 'object' ? at[part] : {});
    at[path.at(-1)] = true;
  }
  return frame;
}

// tamper: "nonce" (not the request's), "audience" (another verifier's client id), or none.
async function present(requestUrl, walletFile, tamper) {
  const wallet = JSON.parse(readFileSync(walletFile, 'utf8'));
  const client = new Openid4vpClient({ callbacks: {
    ...callbacks(wallet.privateJwk),
    verifyJwt: async () => { throw new Error('a redirect_uri request is never signed'); } } });
  const parsed = client.parseOpenid4vpAuthorizationRequest({ authorizationRequest: requestUrl });
  const resolved = await client.resolveOpenId4vpAuthorizationRequest({
    authorizationRequestPayload: parsed.params });
  const request = resolved.authorizationRequestPayload;
  const query = resolved.dcql.query.credentials[0];
  if (query.format !== 'dc+sd-jwt') throw new Error(`format ${query.format}`);
  const aud = tamper === 'audience' ? 'redirect_uri:https://elsewhere.example/cb' : resolved.client.effective;
  const nonce = tamper === 'nonce' ? 'not-the-request-nonce' : request.nonce;
  const presentation = await sdJwtVc(null, wallet.privateJwk).present(wallet.credential, frameOf(query.claims), {
    kb: { payload: { aud, nonce, iat: Math.floor(Date.now() / 1000) } } });
  const { authorizationResponsePayload } = await client.createOpenid4vpAuthorizationResponse({
    authorizationRequestPayload: request,
    authorizationResponsePayload: { vp_token: { [query.id]: [presentation] } } });
  const { response } = await client.submitOpenid4vpAuthorizationResponse({
    authorizationRequestPayload: request, authorizationResponsePayload });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null, presentation,
           clientId: resolved.client.effective, responseUri: request.response_uri, state: request.state ?? null,
           vpToken: authorizationResponsePayload.vp_token };
}

async function main() {
  const [command, ...args] = process.argv.slice(2);
  if (command === 'receive') return receive(args[0]);
  if (command === 'check') return check(args[0], JSON.parse(args[1]));
  if (command === 'present') return present(args[0], args[1], args[2]);
  throw new Error(`unknown command ${command}`);
}

main().then(
  (out) => { process.stdout.write(JSON.stringify(out)); },
  (err) => {
    const detail = err.errorResponse ?? err.response?.body ?? err.cause?.message ?? null;
    process.stdout.write(JSON.stringify({ error: String(err.message ?? err), detail,
                                          stack: String(err.stack ?? '') }));
    process.exitCode = 1;
  });
