/**
 * The client side of SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL runs
 * it: no channel binding, the user name taken from the startup packet, and
 * the server's final signature verified before the session is trusted.
 */
import { Buffer } from "node:buffer";
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from "node:crypto";

function hmac(key: Buffer, text: string): Buffer {
  return createHmac("sha256", key).update(text).digest();
}

function attributes(message: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const part of message.split(",")) {
    const at = part.indexOf("=");
    if (at > 0) map.set(part.slice(0, at), part.slice(at + 1));
  }
  return map;
}

/** One SCRAM-SHA-256 exchange: first message, final message, server check. */
export class ScramClient {
  #password: string;
  #clientNonce = randomBytes(18).toString("base64");
  #firstBare = "";
  #serverSignature: Buffer | undefined;

  constructor(password: string) {
    this.#password = password;
  }

  /** The client-first-message (SASLInitialResponse data). */
  firstMessage(): string {
    this.#firstBare = `n=*,r=${this.#clientNonce}`;
    return `n,,${this.#firstBare}`;
  }

  /** The client-final-message answering the server-first-message. */
  finalMessage(serverFirst: string): string {
    const server = attributes(serverFirst);
    const nonce = server.get("r");
    const salt = server.get("s");
    const iterations = Number(server.get("i"));
    if (!nonce?.startsWith(this.#clientNonce) || salt === undefined || !(iterations > 0)) {
      throw new Error("Cannot authenticate: the server's SCRAM challenge is malformed");
    }
    const salted = pbkdf2Sync(
      this.#password,
      Buffer.from(salt, "base64"),
      iterations,
      32,
      "sha256",
    );
    const clientKey = hmac(salted, "Client Key");
    const storedKey = createHash("sha256").update(clientKey).digest();
    const withoutProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.#firstBare},${serverFirst},${withoutProof}`;
    const signature = hmac(storedKey, authMessage);
    const proof = Buffer.alloc(clientKey.length);
    for (let i = 0; i < proof.length; i++) proof[i] = clientKey[i] ^ signature[i];
    this.#serverSignature = hmac(hmac(salted, "Server Key"), authMessage);
    return `${withoutProof},p=${proof.toString("base64")}`;
  }

  /** Throws unless the server-final-message proves the server knows the password too. */
  verifyFinal(serverFinal: string): void {
    const verifier = attributes(serverFinal).get("v");
    const expected = this.#serverSignature;
    const given = verifier === undefined ? undefined : Buffer.from(verifier, "base64");
    if (
      expected === undefined || given === undefined || given.length !== expected.length ||
      !timingSafeEqual(given, expected)
    ) {
      throw new Error("Cannot authenticate: the server's SCRAM signature does not match");
    }
  }
}
