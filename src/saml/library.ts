/** What the token service uses of `src/saml/`, in one module so that `lazy.ts` can import it on first use. */
export { buildAssertion } from './assertion.js';
export { signAssertion } from './sign.js';
export { peekAssertion, verifyAssertion } from './verify.js';
