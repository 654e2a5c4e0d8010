/**
 * The chaos workload: several concurrent clients against random nodes, an operator forcing key rotations and
 * revoking keys on a fast schedule, and a JWKS reader that records every node's published kids once a second.
 *
 * A client's operations, by weight: get-or-create of a new or an existing user's secret; a JWT access token
 * issued on one node and introspected on another; an SCT made on one node and introspected, with its key, on
 * another; a token revocation. Everything is recorded through the `Recorder`; what the checker needs to know
 * about secrets is their fingerprints, while the secrets themselves stay in memory for the leak search.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { CLIENT_ASSERTION_TYPE } from '../../src/config/defaults.js';
import { computedKey } from '../../src/tokens/p-sha1.js';
import type { JsonLinesWriter, JwksSnapshot, OpKind, OpValue } from './history.js';
import type { ChaosNodes } from './nodes.js';
import { fingerprint, RS_AUDIENCE, type Parties } from './parties.js';
import type { Random } from './random.js';
import { callJson, OpError, type Recorder } from './recorder.js';

const SCT_TYPE = 'http://docs.oasis-open.org/ws-sx/ws-secureconversation/200512';
const EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
/** A client's operations and their weights. */
const CLIENT_OPS: ReadonlyArray<readonly [OpKind, number]> = [
  ['secret', 30],
  ['issue', 25],
  ['verify', 25],
  ['sct-create', 6],
  ['sct-validate', 8],
  ['revoke', 6],
];
/** Pause of a client between two operations: at least, at most (ms). */
const THINK_MS = [20, 120] as const;
/** Share of secret requests for a user never asked for before. */
const NEW_USER_SHARE = 0.3;
/** Forced rotations of the signing key: one every so many ms. */
const ROTATE_EVERY_MS = 5_000;
/** Key revocations: one every so many ms (of the key that signed a recent token). */
const KEY_REVOKE_EVERY_MS = 25_000;
/** How often every node's JWKS is read. */
export const SNAPSHOT_EVERY_MS = 1_000;
/** Tokens and SCTs kept to verify, validate and revoke. */
const KEPT = 200;

/** A token the workload got, for later verification and revocation. */
interface Issued {
  readonly token: string;
  readonly jti: string;
  readonly kid: string;
  readonly node: number;
  readonly iat: number;
  readonly exp: number;
}

interface IssuedSct {
  readonly token: string;
  readonly sctId: string;
  readonly node: number;
  readonly keyFingerprint: string;
}

export class Workload {
  readonly #nodes: ChaosNodes;
  readonly #parties: Parties;
  readonly #recorder: Recorder;
  readonly #random: Random;
  /** Users with a secret someone received (those a later request may ask for again). */
  readonly users: string[] = [];
  /** Every secret, SCT (identifier and key) and access token the workload saw, for the leak search. */
  readonly seen: Array<{ label: string; bytes: Uint8Array }> = [];
  readonly #tokens: Issued[] = [];
  readonly #scts: IssuedSct[] = [];
  #newUsers = 0;
  #stopped = false;

  constructor(o: { nodes: ChaosNodes; parties: Parties; recorder: Recorder; random: Random }) {
    this.#nodes = o.nodes;
    this.#parties = o.parties;
    this.#recorder = o.recorder;
    this.#random = o.random;
  }

  /** Runs `clients` clients and the operator until `stop()`; resolves when all have finished. */
  async run(clients: number): Promise<void> {
    await Promise.all([
      ...Array.from({ length: clients }, (_, i) => this.#client(`c${i}`, this.#random.fork(`client-${i}`))),
      this.#operator(this.#random.fork('operator')),
    ]);
  }

  stop(): void {
    this.#stopped = true;
  }

  /** Reads every node's JWKS once a second into `out` until `signal` aborts. */
  static async snapshots(nodes: ChaosNodes, out: JsonLinesWriter<JwksSnapshot>, signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const round = Date.now();
      await Promise.all(
        nodes.nodes.map(async (node, i) => {
          const time = Date.now();
          try {
            const res = await nodes.fetch(`${nodes.url(i)}/.well-known/jwks.json`, {
              signal: AbortSignal.timeout(SNAPSHOT_EVERY_MS - 200),
            });
            const doc = (await res.json()) as { keys?: Array<{ kid?: string }> };
            out.write({
              time,
              node: node.name,
              kids: res.ok ? (doc.keys ?? []).map((k) => String(k.kid)).sort() : null,
            });
          } catch {
            out.write({ time, node: node.name, kids: null });
          }
        }),
      );
      await sleep(Math.max(0, round + SNAPSHOT_EVERY_MS - Date.now()), undefined, { signal }).catch(() => undefined);
    }
  }

  /** A get-or-create of `user`'s secret on node `i`, recorded as `process`. */
  secret(process: string, i: number, user: string, extra: OpValue = {}): Promise<OpValue | undefined> {
    return this.#recorder.run(process, 'secret', this.#name(i), { user, ...extra }, async () => {
      const body = await callJson(this.#nodes.fetch, `${this.#nodes.url(i)}/secret-server/token-exchange`, {
        method: 'POST',
        body: new URLSearchParams({
          grant_type: EXCHANGE_GRANT,
          subject_token: await this.#parties.userToken(user),
          subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
          audience: RS_AUDIENCE,
          client_assertion_type: CLIENT_ASSERTION_TYPE,
          client_assertion: await this.#parties.clientAssertion(),
        }),
      });
      const claims = decodeJwt(String(body['access_token']));
      const jwe = (claims['secret'] as Record<string, string> | undefined)?.[RS_AUDIENCE];
      if (!jwe) throw new OpError('unknown', 'the answer holds no secret for the resource server');
      const secret = await this.#parties.decrypt(jwe);
      this.seen.push({ label: `secret of ${user}`, bytes: secret });
      if (!this.users.includes(user)) this.users.push(user);
      return { secret: fingerprint(secret) };
    });
  }

  /** Introspects `token` (issued by `issued.node`) on node `i`. */
  verify(process: string, i: number, issued: Issued, extra: OpValue = {}): Promise<OpValue | undefined> {
    return this.#recorder.run(
      process,
      'verify',
      this.#name(i),
      { jti: issued.jti, kid: issued.kid, issuedBy: this.#name(issued.node), ...extra },
      async () => {
        const body = await this.#post(i, '/introspect', { token: issued.token });
        return { active: body['active'] === true };
      },
    );
  }

  /** Tokens not yet expired (for the final read-back). */
  liveTokens(): Issued[] {
    const now = Date.now() / 1000;
    return this.#tokens.filter((t) => t.exp > now + 1);
  }

  async #client(process: string, random: Random): Promise<void> {
    const total = CLIENT_OPS.reduce((sum, [, w]) => sum + w, 0);
    while (!this.#stopped) {
      let draw = random.int(total);
      const op = CLIENT_OPS.find(([, w]) => {
        draw -= w;
        return draw < 0;
      })![0];
      await this.#clientOp(process, op, random);
      await sleep(random.between(...THINK_MS));
    }
  }

  async #clientOp(process: string, op: OpKind, random: Random): Promise<void> {
    const i = random.int(this.#nodes.nodes.length);
    switch (op) {
      case 'secret': {
        const fresh = this.users.length === 0 || random.next() < NEW_USER_SHARE;
        await this.secret(process, i, fresh ? `user-${++this.#newUsers}` : random.pick(this.users));
        return;
      }
      case 'issue':
        await this.#issue(process, i);
        return;
      case 'verify': {
        const issued = this.#tokens.length > 0 ? random.pick(this.#tokens) : undefined;
        if (issued) await this.verify(process, this.#other(random, issued.node), issued);
        return;
      }
      case 'sct-create':
        await this.#sctCreate(process, i);
        return;
      case 'sct-validate': {
        const sct = this.#scts.length > 0 ? random.pick(this.#scts) : undefined;
        if (sct) await this.#sctValidate(process, this.#other(random, sct.node), sct);
        return;
      }
      case 'revoke': {
        const issued = this.#tokens.length > 0 ? random.pick(this.#tokens) : undefined;
        if (issued)
          await this.#recorder.run(process, 'revoke', this.#name(i), { jti: issued.jti }, async () => {
            await this.#post(i, '/revoke', { token: issued.token });
            return {};
          });
        return;
      }
      default:
        throw new Error(`no client operation ${op}`);
    }
  }

  async #issue(process: string, i: number): Promise<void> {
    await this.#recorder.run(process, 'issue', this.#name(i), {}, async () => {
      const body = await this.#post(i, '/token', { grant_type: 'client_credentials' });
      const token = String(body['access_token']);
      const claims = decodeJwt(token);
      const issued: Issued = {
        token,
        jti: String(claims.jti),
        kid: String(decodeProtectedHeader(token).kid),
        node: i,
        iat: Number(claims.iat),
        exp: Number(claims.exp),
      };
      // a bearer token is a credential too: its signature must not be stored or logged anywhere
      this.seen.push({
        label: `access token ${issued.jti}`,
        bytes: Buffer.from(token.slice(token.lastIndexOf('.') + 1)),
      });
      keep(this.#tokens, issued);
      return { jti: issued.jti, kid: issued.kid, issuedBy: this.#name(i), iat: issued.iat, exp: issued.exp };
    });
  }

  async #sctCreate(process: string, i: number): Promise<void> {
    await this.#recorder.run(process, 'sct-create', this.#name(i), {}, async () => {
      const clientEntropy = randomBytes(32);
      const body = await this.#post(i, '/token', {
        grant_type: 'client_credentials',
        requested_token_type: SCT_TYPE,
        client_entropy: clientEntropy.toString('base64url'),
      });
      const key = computedKey(clientEntropy, Buffer.from(String(body['entropy']), 'base64url'), 256);
      // the SCT's identifier is its bearer token: the history names it by fingerprint only
      const token = String(body['access_token']);
      const sctId = fingerprint(Buffer.from(token));
      this.seen.push(
        { label: `key of SCT ${sctId}`, bytes: key },
        { label: `SCT ${sctId}`, bytes: Buffer.from(token) },
      );
      keep(this.#scts, { token, sctId, node: i, keyFingerprint: fingerprint(key) });
      return { sctId, key: fingerprint(key), exp: Math.floor(Date.now() / 1000) + Number(body['expires_in']) };
    });
  }

  async #sctValidate(process: string, i: number, sct: IssuedSct): Promise<void> {
    await this.#recorder.run(process, 'sct-validate', this.#name(i), { sctId: sct.sctId }, async () => {
      const body = await this.#post(i, '/introspect', { token: sct.token });
      if (body['active'] !== true) return { active: false };
      const jwe = body['key_jwe'];
      if (typeof jwe !== 'string')
        throw new OpError('unknown', 'an active SCT without its key for its resource server');
      return { active: true, key: fingerprint(await this.#parties.decrypt(jwe)) };
    });
  }

  /** The operator: a forced rotation every few seconds, now and then a revoked key, at random nodes. */
  async #operator(random: Random): Promise<void> {
    let nextRevoke = Date.now() + KEY_REVOKE_EVERY_MS;
    while (!this.#stopped) {
      await sleep(ROTATE_EVERY_MS);
      if (this.#stopped) return;
      const i = random.int(this.#nodes.nodes.length);
      await this.#recorder.run('operator', 'rotate', this.#name(i), {}, async () => {
        const body = await this.#admin(i, '/v1/keys/rotate', { use: 'sig' });
        return { rotatedKid: String(body['kid']) };
      });
      const recent = this.#tokens.at(-1);
      if (Date.now() < nextRevoke || !recent) continue;
      nextRevoke = Date.now() + KEY_REVOKE_EVERY_MS;
      const j = random.int(this.#nodes.nodes.length);
      await this.#recorder.run('operator', 'key-revoke', this.#name(j), { rotatedKid: recent.kid }, async () => {
        await this.#admin(j, `/v1/keys/${recent.kid}/revoke`, {});
        return {};
      });
    }
  }

  #post(i: number, path: string, form: Record<string, string>): Promise<Record<string, unknown>> {
    return callJson(this.#nodes.fetch, `${this.#nodes.url(i)}${path}`, {
      method: 'POST',
      headers: { authorization: this.#parties.basicAuth() },
      body: new URLSearchParams(form),
    });
  }

  /** An operator's call, classified like every other operation. */
  #admin(i: number, path: string, body: unknown): Promise<Record<string, unknown>> {
    return callJson(this.#nodes.fetch, `${this.#nodes.url(i)}${path}`, this.#nodes.adminRequest('POST', body));
  }

  #name(i: number): string {
    return this.#nodes.nodes[i]!.name;
  }

  /** A random node other than `not` (when there is one). */
  #other(random: Random, not: number): number {
    const count = this.#nodes.nodes.length;
    return count === 1 ? not : (not + 1 + random.int(count - 1)) % count;
  }
}

function keep<T>(list: T[], item: T): void {
  list.push(item);
  if (list.length > KEPT) list.shift();
}
