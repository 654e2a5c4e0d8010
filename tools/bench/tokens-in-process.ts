/**
 * The token benchmark's in-process loops (part 2, and the in-process half of part 3), run sequentially in this
 * process with nothing else measured meanwhile:
 *
 * - `JwtAccessTokenProvider.createToken` per second, against the machine's limit: a bare synchronous
 *   `crypto.sign('sha256', …, {dsaEncoding: 'ieee-p1363'})` of the very bytes createToken signed (its JWS signing
 *   input), with the same ES256 key; and `jose`'s `SignJWT` of the same claims and header for reference. The
 *   ratio createToken / crypto.sign says what building the claims, JSON, base64url and the provider's plumbing
 *   cost over the signature itself (goal ≥ 0.5).
 * - `JwtAccessTokenProvider.validateToken` (what `POST /introspect` runs; the revocation check answered from
 *   memory): the ceiling of introspection without HTTP or the register.
 * - `SecurityContextTokenProvider.validateToken` with an in-memory token store: `/introspect` only validates JWTs,
 *   so SCT validation cannot be reached over HTTP; measured here, once for a caller that is not the SCT's
 *   audience (active + claims) and once for its audience with a POP key (the key comes back as a JWE to it).
 *
 * Loops are interleaved (A B C … A B C …) so drift of the shared machine affects all alike; each run is preceded by
 * a warm-up run that is dropped; the median of the runs is reported.
 */
import { KeyObject, sign } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { JwtAccessTokenProvider } from '../../src/tokens/jwt-provider.js';
import {
  ClaimsManager,
  TOKEN_TYPE_ACCESS_TOKEN,
  TOKEN_TYPE_SCT_200512,
  type StsProperties,
  type TokenProviderParameters,
  type TokenStore,
} from '../../src/tokens/provider.js';
import { SecurityContextTokenProvider } from '../../src/tokens/sct-provider.js';
import { startStealMeter } from './machine.js';
import { median } from './report.js';
import type { InProcessLoop } from './tokens-report.js';

const ISSUER = 'https://sts.bench';
const AUDIENCE = 'https://api.bench';
const REALM = 'default';
const KID = 'bench-sig';
const MAX_LIFETIME_S = 3_600;

export interface InProcessSettings {
  readonly warmupMs: number;
  readonly measuredMs: number;
  readonly repetitions: number;
}

type Op = () => unknown;
interface Loop {
  readonly name: string;
  readonly op: Op;
  readonly sync: boolean;
}

/** Runs `op` back to back for `ms`; a synchronous op is called without awaiting, so no microtask is counted. */
async function opsPerSecond(loop: Loop, ms: number): Promise<number> {
  let done = 0;
  const start = performance.now();
  const deadline = start + ms;
  if (loop.sync) {
    while (performance.now() < deadline) {
      loop.op();
      done++;
    }
  } else {
    while (performance.now() < deadline) {
      await loop.op();
      done++;
    }
  }
  return done / ((performance.now() - start) / 1000);
}

/** An in-memory token store (a Map; entries never expire within a benchmark). */
function memoryStore(): TokenStore {
  const entries = new Map<string, Uint8Array>();
  return {
    put: async (id, value) => {
      if (!entries.has(id)) entries.set(id, value);
      return entries.get(id)!;
    },
    get: async (id) => entries.get(id),
  };
}

/** The parameters a `client_credentials` request hands the provider (as TokenService builds them). */
function parameters(sts: StsProperties, tokenType: string, tokenStore: TokenStore): TokenProviderParameters {
  return {
    stsProperties: sts,
    principal: { subject: 'app', clientId: 'app' },
    requestedClaims: [],
    claimsManager: new ClaimsManager([{ name: 'subject-token', claims: (p) => ({ ...p.principal.claims }) }]),
    keyRequirements: {},
    tokenRequirements: { tokenType },
    appliesTo: AUDIENCE,
    additionalProperties: {},
    tokenStore,
    realm: REALM,
  };
}

/** Builds the loops on one fresh ES256 key, checks each once, and returns them. */
async function makeLoops(): Promise<{ loops: Loop[]; signingInputBytes: number }> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid: KID, alg: 'ES256', use: 'sig' }] };
  const sts: StsProperties = {
    issuer: ISSUER,
    signingKey: async () => ({ kid: KID, alg: 'ES256', key: privateKey }),
    maxLifetimeS: MAX_LIFETIME_S,
    now: () => Date.now(),
  };
  const jwt = new JwtAccessTokenProvider({
    verificationKeys: () => ({ version: 1, jwks: () => jwks }),
    issuer: () => ISSUER,
    isRevoked: async () => false,
    now: () => Date.now(),
    clockSkewS: 5,
  });
  const store = memoryStore();
  const jwtParams = parameters(sts, TOKEN_TYPE_ACCESS_TOKEN, store);

  const token = (await jwt.createToken(jwtParams)).token;
  const input = Buffer.from(token.slice(0, token.lastIndexOf('.')));
  const keyObject = KeyObject.from(privateKey);
  const claims = decodeJwt(token);
  const header = decodeProtectedHeader(token);
  if (header.alg !== 'ES256' || header.typ !== 'at+jwt' || claims.aud !== AUDIENCE)
    throw new Error(`createToken made an unexpected token: ${JSON.stringify({ header, claims })}`);
  const introspected = await jwt.validateToken(token, TOKEN_TYPE_ACCESS_TOKEN, REALM);
  if (!introspected.active) throw new Error('validateToken does not accept the token createToken made');

  const pop = await generateKeyPair('ECDH-ES+A256KW', { crv: 'P-256' });
  const sct = new SecurityContextTokenProvider({ tokenStore: store });
  const sctId = (await sct.createToken(parameters(sts, TOKEN_TYPE_SCT_200512, store))).token;
  const stranger = { clientId: 'other', audiences: [] };
  const audience = {
    clientId: 'rs',
    audiences: [AUDIENCE],
    popKey: async () => ({ key: pop.publicKey as CryptoKey, alg: 'ECDH-ES+A256KW', kid: 'rs-enc' }),
  };
  const plain = await sct.validateToken(sctId, TOKEN_TYPE_SCT_200512, REALM, stranger);
  const withKey = await sct.validateToken(sctId, TOKEN_TYPE_SCT_200512, REALM, audience);
  if (!plain.active || plain.keyJwe !== undefined || !withKey.active || withKey.keyJwe === undefined)
    throw new Error('SCT validation did not answer as expected');

  return {
    signingInputBytes: input.length,
    loops: [
      { name: 'createToken', sync: false, op: () => jwt.createToken(jwtParams) },
      {
        name: 'cryptoSign',
        sync: true,
        op: () => sign('sha256', input, { key: keyObject, dsaEncoding: 'ieee-p1363' }),
      },
      {
        name: 'joseSignJwt',
        sync: false,
        op: () => new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: KID, typ: 'at+jwt' }).sign(privateKey),
      },
      { name: 'validateToken', sync: false, op: () => jwt.validateToken(token, TOKEN_TYPE_ACCESS_TOKEN, REALM) },
      { name: 'sctValidate', sync: false, op: () => sct.validateToken(sctId, TOKEN_TYPE_SCT_200512, REALM, stranger) },
      {
        name: 'sctValidateWithKey',
        sync: false,
        op: () => sct.validateToken(sctId, TOKEN_TYPE_SCT_200512, REALM, audience),
      },
    ],
  };
}

/** Runs every loop `repetitions` times, interleaved; keyed by loop name. */
export async function measureInProcess(
  settings: InProcessSettings,
  log: (line: string) => void,
): Promise<{ loops: Record<string, InProcessLoop>; signingInputBytes: number }> {
  const { loops, signingInputBytes } = await makeLoops();
  const runs = new Map(loops.map((l) => [l.name, { ops: [] as number[], steal: [] as number[] }]));
  for (let rep = 1; rep <= settings.repetitions; rep++) {
    for (const loop of loops) {
      await opsPerSecond(loop, settings.warmupMs);
      const steal = startStealMeter();
      const ops = await opsPerSecond(loop, settings.measuredMs);
      const run = runs.get(loop.name)!;
      run.ops.push(ops);
      run.steal.push(steal());
      log(
        `  ${loop.name} run ${rep}/${settings.repetitions}: ${Math.round(ops)} ops/s, steal ${Math.round(run.steal.at(-1)!)}%`,
      );
    }
  }
  const result: Record<string, InProcessLoop> = {};
  for (const [name, run] of runs)
    result[name] = { name, opsPerSecond: run.ops, stealPercent: run.steal, median: median(run.ops) };
  return { loops: result, signingInputBytes };
}
