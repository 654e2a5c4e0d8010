/**
 * The coordination messages of a management-key rotation (`coord.ts` carries them as `mk`): the node an operator
 * asked sends each step to every member of the map, and each member answers with its report.
 *
 * - `status` → the member's report;
 * - `install` → hold the key of `epoch`, sent wrapped under the sender's key of epoch `under` (which every member
 *   holds), with its fingerprint so the receiver checks what it opened;
 * - `use` → seal with `epoch` from now on and seal everything at rest again;
 * - `verify` → run one fresh re-seal pass and report what it sealed again (`verified`): the removal waits for a
 *   round in which no member sealed anything again;
 * - `remove` → forget the key of `epoch`, once a fresh pass finds nothing under another epoch.
 */
import { z } from 'zod';

const epoch = z.number().int().min(1).max(1_000_000);
const fingerprint = z.string().regex(/^[0-9a-f]{32}$/);

export const managementKeyRequestSchema = z.strictObject({
  t: z.literal('mk'),
  step: z.enum(['status', 'install', 'use', 'verify', 'remove']),
  epoch: epoch.optional(),
  under: epoch.optional(),
  wrapped: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,128}$/)
    .optional(),
  fingerprint: fingerprint.optional(),
});

export const managementKeyReportSchema = z.strictObject({
  held: z.array(z.strictObject({ epoch, fingerprint })).max(16),
  sealing: epoch,
  removed: z.array(epoch).max(1024),
  reseal: z.strictObject({
    state: z.enum(['idle', 'running', 'done']),
    remaining: z.number().int().min(0).optional(),
    resealed: z.number().int().min(0),
    passes: z.number().int().min(0),
  }),
  /** The answer to `verify`: what its fresh pass sealed again, and what it left (busy records). */
  verified: z.strictObject({ resealed: z.number().int().min(0), remaining: z.number().int().min(0) }).optional(),
});

export const managementKeyReplySchema = z.strictObject({ t: z.literal('mk'), report: managementKeyReportSchema });

export type ManagementKeyRequest = z.output<typeof managementKeyRequestSchema>;
/** What one member says about the management keys it holds. */
export type ManagementKeyReport = z.output<typeof managementKeyReportSchema>;
