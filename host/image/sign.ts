// Ed25519 keys and signatures for images (Node's crypto; RFC 8032, so signatures are deterministic).
// The signed message is the image's 32-byte SHA-256 digest, as MCUboot signs an image hash: a board
// checks the digest over memory-mapped flash, then one signature over 32 bytes.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { errnoText, UserError } from '../errors.ts';

export function sha256(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(bytes).digest());
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

export interface KeyPair {
  privatePem: string;
  publicPem: string;
  publicRaw: Uint8Array;  // the 32 bytes a board stores
}

export function generateKeyPair(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }) as string,
    publicRaw: rawPublicKey(publicKey),
  };
}

export function rawPublicKey(key: KeyObject): Uint8Array {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  const jwk = pub.export({ format: 'jwk' }) as { x?: string; crv?: string };
  if (jwk.crv !== 'Ed25519' || !jwk.x) throw new UserError(`key is not an Ed25519 key (it is ${jwk.crv ?? pub.asymmetricKeyType})`);
  return new Uint8Array(Buffer.from(jwk.x, 'base64url'));
}

export function publicKeyFromRaw(raw: Uint8Array): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw).toString('base64url') }, format: 'jwk' });
}

export function privateKeyFromPem(pem: string, what = 'key'): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (e) {
    throw new UserError(`${what}: not a PEM private key (${(e as Error).message.split('\n')[0]})`, 'make one with `edge-flash keygen`');
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new UserError(`${what}: an ${key.asymmetricKeyType} key, expected Ed25519`, 'make one with `edge-flash keygen`');
  return key;
}

// A public key file: PEM (SPKI or a private key, whose public half is taken) or 64 hex digits.
// `--key`: 64 hex digits (the raw key, as keygen prints it), or a file holding PEM or those digits.
export function loadPublicKey(path: string): Uint8Array {
  if (/^[0-9a-fA-F]{64}$/.test(path.trim())) return new Uint8Array(Buffer.from(path.trim(), 'hex'));
  let text: string;
  try {
    text = readFileSync(path, 'utf8').trim();
  } catch (e) {
    throw new UserError(`${path}: cannot read the key (${errnoText(e)})`);
  }
  if (/^[0-9a-fA-F]{64}$/.test(text)) return new Uint8Array(Buffer.from(text, 'hex'));
  try {
    return rawPublicKey(createPublicKey(text));
  } catch (e) {
    if (e instanceof UserError) throw new UserError(`${path}: ${e.message}`);
    throw new UserError(`${path}: not an Ed25519 public key (PEM or 64 hex digits)`);
  }
}

export function loadPrivateKey(path: string): KeyObject {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UserError(`${path}: cannot read the key (${errnoText(e)})`);
  }
  return privateKeyFromPem(text, path);
}

export function signDigest(digest: Uint8Array, key: KeyObject): Uint8Array {
  return new Uint8Array(sign(null, digest, key));
}

export function verifyDigest(digest: Uint8Array, signature: Uint8Array, publicRaw: Uint8Array): boolean {
  try {
    return verify(null, digest, publicKeyFromRaw(publicRaw), signature);
  } catch {
    return false; // a public key that is not a curve point
  }
}

// A short, printable key id: the first 8 bytes of SHA-256 of the raw public key, in hex.
export function keyId(publicRaw: Uint8Array): string {
  return toHex(sha256(publicRaw).subarray(0, 8));
}
