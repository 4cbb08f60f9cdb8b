// Private signing keys are encrypted at rest with AES-256-GCM under the key-encryption key (KEK):
// a copied database without the KEK holds no usable private key. The kid is bound as AAD, so a
// ciphertext moved to another row does not decrypt.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const VERSION = 'v1';
const TAG_BYTES = 16;

export class KeyEncryptionError extends Error {
  override name = 'KeyEncryptionError';
}

export function encryptPrivateKey(kek: Buffer, kid: string, plaintext: string): string {
  const iv = crypto.randomBytes(12);
  const cipher = crypto.createCipheriv('aes-256-gcm', kek, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(kid));
  const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  const tag = cipher.getAuthTag();
  return [VERSION, iv.toString('base64url'), Buffer.concat([ct, tag]).toString('base64url')].join('.');
}

export function decryptPrivateKey(kek: Buffer, kid: string, sealed: string): string {
  const [version, ivText, body] = sealed.split('.');
  if (version !== VERSION || !ivText || !body) throw new KeyEncryptionError(`signing key ${kid}: unknown encryption format`);
  const data = Buffer.from(body, 'base64url');
  try {
    if (data.length <= TAG_BYTES) throw new Error('truncated');
    const decipher = crypto.createDecipheriv('aes-256-gcm', kek, Buffer.from(ivText, 'base64url'), { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(kid));
    decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
    return Buffer.concat([decipher.update(data.subarray(0, data.length - TAG_BYTES)), decipher.final()]).toString('utf8');
  } catch {
    // GCM authenticates: a wrong KEK, a tampered row or a ciphertext moved to another kid all land
    // here, and the server stops rather than sign with anything else
    throw new KeyEncryptionError(`the key-encryption key (TOLLGATE_KEY_ENCRYPTION_KEY, else the keys.encryptionKeyFile file) does not open signing key ${kid}: wrong key, or the stored key was altered`);
  }
}

/**
 * The KEK: TOLLGATE_KEY_ENCRYPTION_KEY (config keys.encryptionKey, base64url 32 bytes), else the
 * key file, created with mode 0600 on first use.
 */
export function loadKeyEncryptionKey(encoded: string | undefined, file: string): Buffer {
  if (encoded) {
    const key = Buffer.from(encoded, 'base64url');
    if (key.length !== 32) throw new KeyEncryptionError('TOLLGATE_KEY_ENCRYPTION_KEY must be 32 bytes in base64url');
    return key;
  }
  if (fs.existsSync(file)) {
    // like ssh with a private key: a key file others can read is not a secret any more
    if (process.platform !== 'win32' && (fs.statSync(file).mode & 0o077) !== 0) {
      throw new KeyEncryptionError(`${file} is readable by other users (mode ${(fs.statSync(file).mode & 0o777).toString(8)}); run chmod 600 on it, or set TOLLGATE_KEY_ENCRYPTION_KEY`);
    }
    const text = fs.readFileSync(file, 'utf8').trim();
    const key = Buffer.from(text, 'base64url');
    if (key.length !== 32) throw new KeyEncryptionError(`${file} does not hold a base64url 32-byte key-encryption key`);
    return key;
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const key = crypto.randomBytes(32);
  try {
    fs.writeFileSync(file, `${key.toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (e) {
    // another process created it first: use theirs
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return loadKeyEncryptionKey(undefined, file);
    throw e;
  }
  return key;
}

/** A key derived from the KEK for one purpose (HKDF-SHA256), e.g. refresh-token successors. */
export function deriveKey(kek: Buffer, purpose: string): Buffer {
  return Buffer.from(crypto.hkdfSync('sha256', kek, Buffer.alloc(0), `tollgate ${purpose}`, 32));
}
