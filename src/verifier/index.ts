// tollgate/verifier: the resource-server side. Depends on jose and Node built-ins only, never on
// the server's code, so an API can install Tollgate's verifier without the server.
export { createVerifier, MAX_TOKEN_LENGTH } from './verifier.js';
export type { AccessTokenClaims, Verifier, VerifierOptions, VerifyOptions } from './verifier.js';
export type { DpopOptions, DpopRequest } from './dpop.js';
export { VerificationError, VERIFICATION_ERROR_CODES, isVerificationError } from './errors.js';
export type { VerificationErrorCode } from './errors.js';
export { requireToken } from './middleware.js';
export type { BearerContext, RequireTokenOptions, TokenState } from './middleware.js';
export type { DenyListOptions } from './denyList.js';
export type { StatusListOptions } from './statusList.js';
export type { FeedEntry } from './denyIndex.js';
