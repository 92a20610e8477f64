// End-to-end encryption in the browser, byte for byte the SDK's (sdk/nexysync/crypto.py):
//   envelope = v2.<kid>.<base64url(nonce12 || ciphertext || tag16)>, no padding (v1. still read)
//   kid      = first 8 hex chars of SHA-256 of the key
//   AD       = nexysync/v2|<project_id>|<record kind>|<record id>|<field>|from=<slug>|to=<slug or *>|reply_to=<id or ->
//              (refs bind from and to, kv values updated_by, file names from; v1 binds none of them)
// Files: header "NXF1" || kid || 7-byte nonce prefix, then one AES-GCM segment per 64 KiB with
// nonce = prefix || counter (4, big-endian) || last flag, AD bound to the file's "content".
// Keys are imported as non-extractable CryptoKeys: script on this page can use them, never read them.

const encoder = new TextEncoder();
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;
const KID_RE = /^[0-9a-f]{8}$/;

export const FILE_MAGIC = "NXF1";
export const FILE_SEGMENT_BYTES = 64 * 1024;
const FILE_PREFIX_BYTES = 7;
const FILE_HEADER_BYTES = FILE_MAGIC.length + 8 + FILE_PREFIX_BYTES;
const FILE_SEGMENT_CIPHER_BYTES = FILE_SEGMENT_BYTES + TAG_BYTES;

/** Thrown for anything that does not decrypt: unknown key, tampered with, moved, malformed. */
export class DecryptError extends Error {}

/** Thrown for a key line or key file that cannot be read. */
export class KeyImportError extends Error {}

// What envelope v2 binds after the field, per record kind, in the order the contract's encryption
// plan lists it (x-nexysync-author, then x-nexysync-routing with the value a null takes).
const BINDINGS = {
  message: (place) => [["from", place.from], ["to", place.to ?? "*"], ["reply_to", place.replyTo ?? "-"]],
  ref: (place) => [["from", place.from], ["to", place.to ?? "*"]],
  kv: (place) => [["updated_by", place.from]],
  file: (place) => [["from", place.from]],
  lease: (place) => [["agent", place.from]],
  task: (place) => [["created_by", place.from]],
  task_result: (place) => [["by", place.from]],
};

// Associated data per envelope version. A reader accepts every version listed here.
const ASSOCIATED_DATA = {
  v1: (place) => `nexysync/v1|${place.projectId}|${place.kind}|${place.id}|${place.field}`,
  v2: (place) =>
    `nexysync/v2|${place.projectId}|${place.kind}|${place.id}|${place.field}` +
    (BINDINGS[place.kind] || (() => []))(place)
      .map(([name, value]) => `|${name}=${value ?? ""}`)
      .join(""),
};
const WRITE_VERSION = "v2";

// The native codecs where the browser has them (Chromium does): atob and a per-character copy cost
// more than AES-GCM itself on short fields.
export function b64urlEncode(bytes) {
  if (bytes.toBase64) return bytes.toBase64({ alphabet: "base64url", omitPadding: true });
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function b64urlDecode(text) {
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) throw new DecryptError("not base64url");
  if (Uint8Array.fromBase64) return Uint8Array.fromBase64(text, { alphabet: "base64url" });
  const padded = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

function b64Decode(text, what) {
  const clean = String(text).trim();
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(clean) || clean.length % 4 !== 0) {
    throw new KeyImportError(`${what} is not standard base64`);
  }
  return Uint8Array.from(atob(clean), (c) => c.charCodeAt(0));
}

async function keyId(raw) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", raw));
  return Array.from(digest.subarray(0, 4), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The project keys held in this tab: the newest encrypts, any of them decrypts. */
export class KeyRing {
  constructor(entries) {
    this.entries = entries; // [{kid, key: CryptoKey}], oldest first
    this.byId = new Map(entries.map((e) => [e.kid, e.key]));
    this.currentId = entries[entries.length - 1].kid;
  }

  /** Import raw 32-byte keys (oldest first) as non-extractable AES-GCM keys; the bytes are wiped. */
  static async fromRaw(rawKeys) {
    if (!rawKeys.length) throw new KeyImportError("no key to import");
    const entries = [];
    for (const raw of rawKeys) {
      if (raw.length !== KEY_BYTES) throw new KeyImportError(`a project key is ${KEY_BYTES} bytes, got ${raw.length}`);
      const kid = await keyId(raw);
      const key = await crypto.subtle.importKey("raw", raw, { name: "AES-GCM" }, false, ["encrypt", "decrypt"]);
      raw.fill(0);
      if (!entries.some((e) => e.kid === kid)) entries.push({ kid, key });
    }
    return new KeyRing(entries);
  }

  get ids() {
    return this.entries.map((e) => e.kid);
  }
}

/**
 * Read what a person pastes or picks: a `nexysync keys export` line (nsk1:<project>:<keys>) or a
 * `.nexysync/key` file (JSON with enc_key and optionally keyring, project_id, api_key, agent_name).
 * Returns {projectId|null, rawKeys (oldest first), apiKey|null, agentName|null}.
 */
export function parseKeyMaterial(text) {
  const trimmed = String(text).trim();
  if (trimmed.startsWith("{")) {
    let data;
    try {
      data = JSON.parse(trimmed);
    } catch {
      throw new KeyImportError("the key file is not valid JSON");
    }
    if (typeof data.enc_key !== "string") throw new KeyImportError("the key file has no enc_key");
    const ring = Array.isArray(data.keyring) ? data.keyring : [];
    const current = b64Decode(data.enc_key, "enc_key");
    const older = ring.map((k, i) => b64Decode(k, `keyring[${i}]`));
    // As the SDK does: the current key goes last (it encrypts); ring keys stay for decryption.
    const currentText = data.enc_key.trim();
    const rawKeys = older.filter((_, i) => String(ring[i]).trim() !== currentText).concat([current]);
    return {
      projectId: typeof data.project_id === "string" ? data.project_id : null,
      rawKeys,
      apiKey: typeof data.api_key === "string" ? data.api_key : null,
      agentName: typeof data.agent_name === "string" ? data.agent_name : null,
    };
  }
  const parts = trimmed.split(":");
  if (parts.length !== 3 || parts[0] !== "nsk1" || !/^[A-Za-z0-9]+$/.test(parts[1])) {
    throw new KeyImportError("expected a line from `nexysync keys export` (nsk1:<project id>:<keys>) or a key file");
  }
  let payload;
  try {
    payload = JSON.parse(new TextDecoder().decode(b64urlDecode(parts[2])));
  } catch {
    throw new KeyImportError("the key export line is damaged (was it copied whole?)");
  }
  if (!payload || !Array.isArray(payload.keys) || !payload.keys.length) {
    throw new KeyImportError("the key export line holds no keys");
  }
  return {
    projectId: parts[1],
    rawKeys: payload.keys.map((k, i) => b64Decode(k, `key ${i} of the export line`)),
    apiKey: null,
    agentName: null,
  };
}

/** Decrypt one envelope for exactly this place ({projectId, kind, id, field, ...routing}); returns text. */
export async function openEnvelope(ring, envelope, place) {
  if (typeof envelope !== "string") throw new DecryptError("not an envelope");
  const [version, kid, body, extra] = envelope.split(".");
  const associated = ASSOCIATED_DATA[version];
  if (!associated || !KID_RE.test(kid || "") || !body || extra !== undefined) {
    throw new DecryptError("not an envelope this console can read");
  }
  const key = ring.byId.get(kid);
  if (!key) throw new DecryptError(`made with key ${kid}, which is not in the imported key ring`);
  const raw = b64urlDecode(body);
  if (raw.length < NONCE_BYTES + TAG_BYTES) throw new DecryptError("envelope too short");
  let plain;
  try {
    plain = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: raw.subarray(0, NONCE_BYTES), additionalData: encoder.encode(associated(place)) },
      key,
      raw.subarray(NONCE_BYTES),
    );
  } catch {
    throw new DecryptError("authentication failed: tampered with, moved, or another key");
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(plain);
  } catch {
    throw new DecryptError("the plaintext is not UTF-8 text");
  }
}

/** Encrypt text into an envelope bound to this place, with the ring's newest key. */
export async function sealEnvelope(ring, text, place) {
  const nonce = crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
  const sealed = new Uint8Array(
    await crypto.subtle.encrypt(
      { name: "AES-GCM", iv: nonce, additionalData: encoder.encode(ASSOCIATED_DATA[WRITE_VERSION](place)) },
      ring.byId.get(ring.currentId),
      encoder.encode(text),
    ),
  );
  const joined = new Uint8Array(NONCE_BYTES + sealed.length);
  joined.set(nonce);
  joined.set(sealed, NONCE_BYTES);
  return `${WRITE_VERSION}.${ring.currentId}.${b64urlEncode(joined)}`;
}

function fileNonce(prefix, counter, last) {
  const nonce = new Uint8Array(NONCE_BYTES);
  nonce.set(prefix);
  new DataView(nonce.buffer).setUint32(FILE_PREFIX_BYTES, counter, false);
  nonce[11] = last ? 1 : 0;
  return nonce;
}

/** Decrypt a whole file's ciphertext stream (Uint8Array) into its content (Uint8Array). */
export async function decryptFile(ring, data, projectId, fileId) {
  const header = data.subarray(0, FILE_HEADER_BYTES);
  const magic = String.fromCharCode(...header.subarray(0, 4));
  const kid = String.fromCharCode(...header.subarray(4, 12));
  if (data.length < FILE_HEADER_BYTES + TAG_BYTES || magic !== FILE_MAGIC || !KID_RE.test(kid)) {
    throw new DecryptError("not an encrypted NexySync file, or truncated");
  }
  const key = ring.byId.get(kid);
  if (!key) throw new DecryptError(`made with key ${kid}, which is not in the imported key ring`);
  const prefix = header.subarray(12, FILE_HEADER_BYTES);
  const additionalData = encoder.encode(ASSOCIATED_DATA.v1({ projectId, kind: "file", id: fileId, field: "content" }));
  const body = data.subarray(FILE_HEADER_BYTES);
  const parts = [];
  let offset = 0;
  for (let counter = 0; ; counter += 1) {
    const left = body.length - offset;
    // A full segment is the last one only when nothing follows it.
    const last = left <= FILE_SEGMENT_CIPHER_BYTES;
    const segment = body.subarray(offset, offset + Math.min(left, FILE_SEGMENT_CIPHER_BYTES));
    try {
      parts.push(
        new Uint8Array(
          await crypto.subtle.decrypt({ name: "AES-GCM", iv: fileNonce(prefix, counter, last), additionalData }, key, segment),
        ),
      );
    } catch {
      throw new DecryptError("a segment failed to authenticate: tampered with, reordered, cut off, or another file");
    }
    offset += segment.length;
    if (last) break;
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/** Make a ULID (48-bit time, 80 random bits): the client-made record id the envelopes bind to. */
export function newUlid() {
  let time = Date.now();
  let head = "";
  for (let i = 0; i < 10; i += 1) {
    head = CROCKFORD[time % 32] + head;
    time = Math.floor(time / 32);
  }
  const random = crypto.getRandomValues(new Uint8Array(16));
  let tail = "";
  for (let i = 0; i < 16; i += 1) tail += CROCKFORD[random[i] % 32];
  return head + tail;
}
