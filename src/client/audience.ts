/**
 * Which audience a verified access token must name, for `KeymeshTokenClient.verify` and `keymeshAuth`.
 *
 * Every service of a realm trusts the same issuer and the same keys, so a signature alone says only "some client
 * of this realm got this token": without an audience check a service accepts tokens minted for any other service
 * of the realm (RFC 9068 §4, RFC 8725 §3.9). The check is therefore required: callers name their own audience, or
 * opt out explicitly with `anyAudience: true` (a gateway that forwards to services which check it themselves).
 */
import { KeymeshError } from '../errors.js';

/**
 * Either `audience`: the token's `aud` must name this value, or one of these values (this service's identifier,
 * as registered in the clients' `audiences`); or `anyAudience: true`: any audience is accepted, deliberately.
 * Exactly one of the two must be given.
 */
export type AudienceOptions =
  | { readonly audience: string | readonly string[]; readonly anyAudience?: false | undefined }
  | { readonly anyAudience: true; readonly audience?: undefined };

/**
 * The audiences to check `aud` against, or `undefined` for `anyAudience: true`.
 * @param where who asks, for the message (`keymeshAuth`, `verify`).
 * @throws KeymeshError `ERR_INVALID_REQUEST` when neither or both are given, or `audience` is empty or not strings.
 */
export function audiencesToCheck(
  options: Partial<Record<'audience' | 'anyAudience', unknown>> | undefined,
  where: string,
): readonly string[] | undefined {
  const audience = options?.audience;
  const any = options?.anyAudience === true;
  if (audience === undefined && !any) {
    throw new KeymeshError(
      'ERR_INVALID_REQUEST',
      `${where} needs an audience: pass audience (this service's identifier, which the token's aud must name) or, to accept tokens for any audience of the realm, anyAudience: true`,
    );
  }
  if (audience !== undefined && any)
    throw new KeymeshError('ERR_INVALID_REQUEST', `${where}: pass audience or anyAudience: true, not both`);
  if (any) return undefined;
  const list: unknown[] = Array.isArray(audience) ? audience : [audience];
  if (list.length === 0 || !list.every((a) => typeof a === 'string' && a.length > 0)) {
    throw new KeymeshError(
      'ERR_INVALID_REQUEST',
      `${where}: audience must be a non-empty string or a non-empty list of them`,
    );
  }
  return Object.freeze([...(list as string[])]);
}
