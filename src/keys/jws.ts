// Tollgate's own JWS (access tokens, Status List Tokens), signed with node:crypto. The input is
// claims Tollgate built itself, so jose's generic path (header checks, WebCrypto's promise and a
// thread-pool hop per signature) buys nothing here and cost about twice node's CPU per signature.
// Everything that came from outside is still verified with jose.
import crypto, { type KeyObject } from 'node:crypto';
import type { SigningAlgorithm } from '../config.js';

type SignKey = KeyObject | crypto.SignKeyObjectInput;

/** The digest and the key options of each algorithm (RFC 7518 §3.3, §3.4, §3.5; RFC 8037 §3.1). */
function signKey(alg: SigningAlgorithm, key: KeyObject): { digest: string | null; key: SignKey } {
  switch (alg) {
    // JWS wants the raw r||s, not DER (RFC 7518 §3.4)
    case 'ES256':
      return { digest: 'sha256', key: { key, dsaEncoding: 'ieee-p1363' } };
    // RSASSA-PSS with SHA-256, MGF1 with SHA-256 and a salt as long as the hash (RFC 7518 §3.5)
    case 'PS256':
      return { digest: 'sha256', key: { key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 } };
    case 'RS256':
      return { digest: 'sha256', key };
    // Ed25519 hashes internally: no digest is named
    case 'EdDSA':
      return { digest: null, key };
  }
}

/** Whether `key` is a private key `alg` signs with (an EC key on P-256 for ES256, and so on). */
export function signsWith(alg: SigningAlgorithm, key: KeyObject): boolean {
  if (key.type !== 'private') return false;
  switch (alg) {
    case 'ES256':
      return key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1';
    case 'PS256':
    case 'RS256':
      return key.asymmetricKeyType === 'rsa';
    case 'EdDSA':
      return key.asymmetricKeyType === 'ed25519';
  }
}

/** Signs compact JWS with one key (see signsWith); the protected header `{alg, kid, typ}` is encoded once per typ. */
export class JwsSigner {
  private readonly digest: string | null;
  private readonly key: SignKey;
  private readonly headers = new Map<string, string>();

  constructor(
    readonly kid: string,
    readonly alg: SigningAlgorithm,
    privateKey: KeyObject,
  ) {
    ({ digest: this.digest, key: this.key } = signKey(alg, privateKey));
  }

  /** `payload` is the JSON of the claims; the header is exactly {alg, kid, typ}. */
  sign(typ: string, payload: string): string {
    let header = this.headers.get(typ);
    if (header === undefined) {
      header = Buffer.from(JSON.stringify({ alg: this.alg, kid: this.kid, typ })).toString('base64url');
      this.headers.set(typ, header);
    }
    const input = `${header}.${Buffer.from(payload).toString('base64url')}`;
    // the signing input is base64url, ASCII: latin1 copies it byte for byte without a UTF-8 pass
    const signature = crypto.sign(this.digest, Buffer.from(input, 'latin1'), this.key);
    return `${input}.${signature.toString('base64url')}`;
  }
}
