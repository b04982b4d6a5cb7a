// Trail verification in the browser, with nothing but WebCrypto (SHA-256 and Ed25519):
// RFC 9162 inclusion proofs and the log's checkpoints, C2SP tlog-checkpoint signed notes
// (c2sp.org/signed-note, c2sp.org/tlog-checkpoint; the Python side is fundtrail_schemas.note).

export interface CheckpointJson {
  log_id: string
  tree_size: number
  root_hash: string // hex
  timestamp: string // ISO-8601; recorded by the log, not signed
  note: string // the signed note: checkpoint text, blank line, signature lines
}

export interface InclusionJson {
  checkpoint: CheckpointJson
  leaf_index: number
  leaf_hash: string
  leaf_data: string | null // base64 of the exact bytes hashed into the log; null when withheld from a regional reader
  inclusion_proof: { leaf_index: number; tree_size: number; hashes: string[] }
}

/** What a trail item says of itself: the hash it lists, and (newer gateways) its own leaf bytes. */
export interface ShownEntry {
  leaf_hash?: string
  leaf_data?: string | null // base64
}

export interface Check {
  name: 'checkpoint.key_id' | 'checkpoint.signature' | 'leaf.hash' | 'inclusion.proof'
  passed: boolean
}

export interface EntryVerdict {
  ok: boolean
  checks: Check[]
  /** No leaf bytes were served (withheld from a regional reader): the listed hash was proven, not hashed here. */
  withheld: boolean
}

/** A note verifier key (golang.org/x/mod/sumdb/note vkey): `<name>+<key hash hex>+<base64(type || key)>`. */
export interface LogKey {
  name: string
  keyHash: string // 8 hex digits, as the vkey states it
  publicKey: Uint8Array<ArrayBuffer> // raw 32-byte Ed25519 key
}

/** The signed checkpoint text (c2sp.org/tlog-checkpoint). */
export interface CheckpointText {
  origin: string
  size: bigint
  root: Uint8Array<ArrayBuffer>
  extensions: string[]
}

export interface NoteSignature {
  name: string
  keyHash: string // 8 hex digits
  signature: Uint8Array<ArrayBuffer>
}

/** A signed note split at its last blank line: `text` ends in a newline and is what signatures cover. */
export interface SignedNote {
  text: string
  signatures: NoteSignature[]
}

const SIG_ED25519 = 0x01
const EM_DASH = '\u2014'

const subtle = (): SubtleCrypto => {
  if (!globalThis.crypto?.subtle) throw new Error('WebCrypto is not available (a secure context is needed)')
  return globalThis.crypto.subtle
}

export function hexToBytes(hex: string): Uint8Array<ArrayBuffer> {
  if (!/^([0-9a-f]{2})*$/i.test(hex)) throw new Error('not hex')
  const out = new Uint8Array(hex.length / 2)
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16)
  return out
}

export function bytesToHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')
}

export function base64ToBytes(b64: string): Uint8Array<ArrayBuffer> {
  const bin = atob(b64)
  const out = new Uint8Array(bin.length)
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i)
  return out
}

export function bytesToBase64(bytes: Uint8Array): string {
  let bin = ''
  for (const b of bytes) bin += String.fromCharCode(b)
  return btoa(bin)
}

function concat(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i])
}

async function sha256(data: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  return new Uint8Array(await subtle().digest('SHA-256', data))
}

/** RFC 9162 §2.1.1: SHA-256(0x00 || data). */
export function leafHash(data: Uint8Array): Promise<Uint8Array<ArrayBuffer>> {
  return sha256(concat(new Uint8Array([0]), data))
}

function nodeHash(left: Uint8Array, right: Uint8Array): Promise<Uint8Array<ArrayBuffer>> {
  return sha256(concat(new Uint8Array([1]), left, right))
}

/** RFC 9162 §2.1.3.2, literally (BigInt: sizes go up to 2^63). */
export async function verifyInclusion(
  leaf: Uint8Array,
  index: number | bigint,
  treeSize: number | bigint,
  proof: Uint8Array[],
  root: Uint8Array,
): Promise<boolean> {
  let fn = BigInt(index)
  let sn = BigInt(treeSize) - 1n
  if (fn < 0n || fn > sn) return false
  if (proof.some((p) => p.length !== 32) || leaf.length !== 32) return false
  let r: Uint8Array = leaf
  for (const p of proof) {
    if (sn === 0n) return false
    if ((fn & 1n) === 1n || fn === sn) {
      r = await nodeHash(p, r)
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n
          sn >>= 1n
        }
      }
    } else {
      r = await nodeHash(r, p)
    }
    fn >>= 1n
    sn >>= 1n
  }
  return sn === 0n && equal(r, root)
}

/** Standard padded base64 that re-encodes to the same text (the note spec's form); throws otherwise. */
function strictBase64(b64: string): Uint8Array<ArrayBuffer> {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) throw new Error('not standard base64')
  const raw = base64ToBytes(b64)
  if (bytesToBase64(raw) !== b64) throw new Error('base64 is not in canonical form')
  return raw
}

const validName = (name: string) => name.length > 0 && !/[\s+]/u.test(name)

/** Parse a vkey; throws if it is not one (the stated hash is checked by verifyCheckpoint, as checkpoint.key_id). */
export function parseVkey(vkey: string): LogKey {
  // base64 may contain '+': the name and the hash end at the first two.
  const v = vkey.trim()
  const a = v.indexOf('+')
  const b = a < 0 ? -1 : v.indexOf('+', a + 1)
  if (b < 0) throw new Error('not a verifier key (name+hash+key)')
  const name = v.slice(0, a)
  const keyHash = v.slice(a + 1, b)
  const material = strictBase64(v.slice(b + 1))
  if (!validName(name) || !/^[0-9a-f]{8}$/.test(keyHash)) throw new Error('not a verifier key (name+hash+key)')
  if (material.length !== 33 || material[0] !== SIG_ED25519) throw new Error('not an Ed25519 note verifier key')
  return { name, keyHash, publicKey: material.slice(1) }
}

/** The signed-note key hash: SHA-256(name || 0x0A || 0x01 || public key)[:4], as 8 hex digits. */
export async function noteKeyHash(name: string, publicKey: Uint8Array): Promise<string> {
  const prefix = new TextEncoder().encode(`${name}\n`)
  return bytesToHex((await sha256(concat(prefix, new Uint8Array([SIG_ED25519]), publicKey))).slice(0, 4))
}

/** Split a signed note into its text (up to and including the newline before the last blank line) and signatures. */
export function parseNote(note: string): SignedNote {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0009\u000b-\u001f\u007f]/.test(note)) throw new Error('control characters in a note')
  const split = note.lastIndexOf('\n\n')
  if (split < 0) throw new Error('a signed note needs a blank line before its signatures')
  const text = note.slice(0, split + 1)
  const block = note.slice(split + 2)
  if (!block.endsWith('\n')) throw new Error('the last signature line must end with a newline')
  const signatures = block.slice(0, -1).split('\n').map((line) => {
    const m = new RegExp(`^${EM_DASH} (\\S+) (\\S+)$`).exec(line)
    if (!m || !validName(m[1])) throw new Error('malformed signature line')
    const payload = strictBase64(m[2])
    if (payload.length < 5) throw new Error('a signature is a 4-byte key hash and at least one byte')
    return { name: m[1], keyHash: bytesToHex(payload.slice(0, 4)), signature: payload.slice(4) }
  })
  return { text, signatures }
}

/** Parse checkpoint text: origin, decimal tree size (no leading zeros), base64 root hash, extension lines. */
export function parseCheckpointText(text: string): CheckpointText {
  if (!text.endsWith('\n')) throw new Error('checkpoint text must end with a newline')
  const [origin, size, root, ...extensions] = text.slice(0, -1).split('\n')
  if (root === undefined || !origin) throw new Error('a checkpoint has origin, tree size and root hash lines')
  if (!/^(0|[1-9][0-9]*)$/.test(size)) throw new Error('tree size is not a decimal without leading zeros')
  const rootBytes = strictBase64(root)
  if (rootBytes.length !== 32 || extensions.some((e) => !e)) throw new Error('malformed checkpoint')
  return { origin, size: BigInt(size), root: rootBytes, extensions }
}

export interface CheckpointVerdict {
  checks: Check[]
  /** The signed origin, size and root; null unless the note parsed. Proofs are checked against these. */
  signed: CheckpointText | null
}

/**
 * Verify a checkpoint note with the log key. checkpoint.key_id: the vkey's stated hash is the hash of its
 * name and key, and a signature line carries that name and hash. checkpoint.signature: every such line is
 * a valid Ed25519 signature over the note text (a known key's bad line rejects the note, as the spec says).
 */
export async function verifyCheckpoint(note: string, key: LogKey): Promise<CheckpointVerdict> {
  let kidOk = false
  let sigOk = false
  let signed: CheckpointText | null = null
  try {
    const parsed = parseNote(note)
    signed = parseCheckpointText(parsed.text)
    const hash = await noteKeyHash(key.name, key.publicKey)
    const mine = parsed.signatures.filter((s) => s.name === key.name && s.keyHash === hash)
    kidOk = hash === key.keyHash && mine.length > 0
    if (kidOk) {
      const pub = await subtle().importKey('raw', key.publicKey, { name: 'Ed25519' }, false, ['verify'])
      const body = new TextEncoder().encode(parsed.text)
      sigOk = true
      for (const s of mine) sigOk &&= await subtle().verify({ name: 'Ed25519' }, pub, s.signature, body)
    }
  } catch {
    sigOk = false
  }
  return {
    checks: [
      { name: 'checkpoint.key_id', passed: kidOk },
      { name: 'checkpoint.signature', passed: sigOk },
    ],
    signed,
  }
}

/**
 * Is this entry in the log the signed checkpoint commits to? When the trail item carries its own leaf
 * bytes, those are hashed and proven (so the entry shown is the entry proven); otherwise the proof
 * endpoint's leaf bytes are, and they must hash to the hash the trail listed. The inclusion proof is
 * checked against the size and root inside the signed note, never the JSON fields beside it.
 */
export async function verifyEntry(inc: InclusionJson, key: LogKey, shown: ShownEntry = {}): Promise<EntryVerdict> {
  const { checks, signed } = await verifyCheckpoint(inc.checkpoint.note, key)
  let computed: Uint8Array = new Uint8Array()
  let hashOk = false
  let included = false
  const own = shown.leaf_data != null
  const withheld = !own && inc.leaf_data == null
  try {
    if (withheld) {
      // Nothing to hash: the item and the proof must list the same hash, and that hash is what is proven.
      computed = hexToBytes(inc.leaf_hash)
      hashOk = (shown.leaf_hash ?? inc.leaf_hash) === inc.leaf_hash
    } else {
      computed = await leafHash(base64ToBytes(own ? shown.leaf_data! : inc.leaf_data!))
      const hex = bytesToHex(computed)
      // The item's listed hash must be that of the bytes proven; the proof's own bytes must match its hash.
      hashOk = (shown.leaf_hash ?? hex) === hex && (own || hex === inc.leaf_hash)
    }
    const ip = inc.inclusion_proof
    included =
      signed !== null &&
      ip.leaf_index === inc.leaf_index &&
      BigInt(ip.tree_size) === signed.size &&
      (await verifyInclusion(computed, ip.leaf_index, ip.tree_size, ip.hashes.map(hexToBytes), signed.root))
  } catch {
    included = false
  }
  checks.push({ name: 'leaf.hash', passed: hashOk })
  checks.push({ name: 'inclusion.proof', passed: included })
  return { ok: checks.every((c) => c.passed), checks, withheld }
}
