// `edge-flash keygen`: an Ed25519 key pair for signing images (`pack --sign`). The private key is
// written 0600 as PKCS#8 PEM, the public key beside it as SPKI PEM; the 32 raw bytes a board stores
// are printed in hex.
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { UserError } from '../errors.ts';
import { generateKeyPair, keyId, toHex } from '../image/sign.ts';
import { writeAtomic } from '../image/source.ts';

export function registerKeygen(program: Command): void {
  program
    .command('keygen')
    .description('make an Ed25519 key pair for signing images')
    .option('-o, --output <key.pem>', 'the private key file (the public key goes to <name>.pub.pem)', 'edge-flash-key.pem')
    .option('--force', 'replace existing key files')
    .option('--json', 'print the file names and the public key as JSON')
    .action((o) => {
      const kp = generateKeyPair();
      const pub = o.output.replace(/\.pem$/, '') + '.pub.pem';
      for (const f of [o.output, pub]) if (!o.force && existsSync(f)) throw new UserError(`${f} exists`, 'pass --force to replace it');
      writeAtomic(pub, new TextEncoder().encode(kp.publicPem), { force: o.force });
      writeAtomic(o.output, new TextEncoder().encode(kp.privatePem), { force: o.force, mode: 0o600 });
      const out = { private_key: o.output, public_key: pub, public_key_hex: toHex(kp.publicRaw), key_id: keyId(kp.publicRaw) };
      process.stdout.write(o.json ? JSON.stringify(out) + '\n' :
        `wrote ${o.output} (private, keep it secret) and ${pub}\npublic key ${out.public_key_hex} (key id ${out.key_id})\n`);
    });
}
