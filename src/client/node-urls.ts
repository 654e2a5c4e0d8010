/**
 * The SDK talks to keymesh nodes over https only (plain http only to loopback, or when told `allowInsecure`): a
 * client secret, a user's token and the key set that tokens are verified against must not cross a network in the
 * clear, where anyone in the path could read the secret or swap the keys.
 */
import { isPrivateChannelUrl } from '../config/rules.js';
import { KeymeshError } from '../errors.js';

/**
 * The node base URLs without trailing slashes, each checked.
 * @throws KeymeshError `ERR_INVALID_REQUEST` for a URL that is not https (or http to loopback, unless `allowInsecure`).
 */
export function checkedNodeUrls(urls: readonly string[], what: string, allowInsecure = false): string[] {
  return urls.map((url) => {
    const parsed = URL.canParse(url) ? new URL(url) : undefined;
    const ok = parsed !== undefined && (isPrivateChannelUrl(parsed) || (allowInsecure && parsed.protocol === 'http:'));
    if (!ok)
      throw new KeymeshError(
        'ERR_INVALID_REQUEST',
        `${what}: ${url} must be an https URL (plain http only to loopback, or with allowInsecure)`,
      );
    return url.replace(/\/+$/, '');
  });
}
