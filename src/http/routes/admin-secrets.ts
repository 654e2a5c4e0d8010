import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { userRef } from '../../audit/events.js';
import { KeymeshError } from '../../errors.js';
import { eraseUserSecret } from '../../secret-server/secret-server.js';
import type { HttpDeps } from '../deps.js';
import { recordOperatorChange } from '../operator-audit.js';
import { parseInput } from '../validate.js';

/** Printable text: no control characters (a user token's `iss` and `sub` never hold any). */
const printable = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    // biome-ignore lint/suspicious/noControlCharactersInRegex: it names the control characters in order to refuse them
    .regex(/^[^\u0000-\u001f\u007f]+$/, 'must be printable text (no control characters)');

const eraseBody = z.strictObject({ issuer: printable(512), subject: printable(1024), force: z.boolean().optional() });

/**
 * `POST /v1/secrets/erase` `{issuer, subject}` (`admin`): erases the secret of the user (issuer, subject) for ever
 * (GDPR Art. 17): the register replaces it by a tombstone, and from then on every node answers that user's token
 * exchange with `ERR_SECRET_ERASED` (410), never the old secret and never a new one. An unknown user is erased all
 * the same (nothing can be created for them later). The audit line (`secret:erase`, the user hashed) is written
 * before the erasure, or nothing is erased. Safe to repeat (after `ERR_OUTCOME_UNKNOWN`, say). An issuer that is not
 * one of `trustedIssuers` is refused unless `force` is true: an erasure is for ever, and a typo would block a user
 * nobody meant and leave the one meant with a secret. Answers `{erased: true, user, knownIssuer}`: `user` is the
 * reference audit lines carry.
 */
export function registerAdminSecretRoutes(app: FastifyInstance, deps: HttpDeps): void {
  const admin = deps.auth.requires('admin');

  app.post('/v1/secrets/erase', { preHandler: admin }, async (req, reply) => {
    const { issuer, subject, force } = parseInput(eraseBody, req.body, 'body');
    const knownIssuer = (
      deps.registry ? (deps.registry.records('issuer') as Array<{ issuer: string }>) : deps.config.trustedIssuers
    ).some((t) => t.issuer === issuer);
    if (!knownIssuer && force !== true) {
      throw new KeymeshError(
        'ERR_INVALID_REQUEST',
        'body field issuer: not one of the trusted issuers; an erasure is for ever, so check it for a typo, or send force: true to erase a user of another issuer',
      );
    }
    const agreement = deps.agreement;
    if (!agreement) throw new KeymeshError('ERR_UNAVAILABLE', 'this node runs without the register');
    const user = userRef(issuer, subject);
    await recordOperatorChange(deps, req, (operator) => ({ event: 'secret:erase', operator, user }));
    await eraseUserSecret((key) => agreement.erase(key), issuer, subject);
    return reply.header('cache-control', 'no-store').send({ erased: true, user, knownIssuer });
  });
}
