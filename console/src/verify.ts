// Trail verification in the browser, with nothing but WebCrypto (SHA-256 and Ed25519):
// RFC 9162 inclusion proofs and the gateway's signed checkpoints (fundtrail_schemas.checkpoint).
// One module on purpose: when checkpoints move to C2SP signed notes, only checkpointBody changes.

export interface CheckpointJson {
  log_id: string
  tree_size: number
  root_hash: string // hex
  timestamp: string // ISO-8601, whole milliseconds
  signature: string // base64 Ed25519 over checkpointBody
  key_id: string // hex of SHA-256(raw public key)[:8]
}

export interface InclusionJson {
  checkpoint: CheckpointJson
  leaf_index: number
  leaf_hash: string
  leaf_data: string // base64 of the exact bytes hashed into the log
  inclusion_proof: { leaf_index: number; tree_size: number; hashes: string[] }
}

export interface Check {
  name: 'checkpoint.key_id' | 'checkpoint.signature' | 'leaf.hash' | 'inclusion.proof'
  passed: boolean
}

export interface EntryVerdict {
  ok: boolean
  checks: Check[]
}

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

/** Milliseconds since the epoch of an ISO-8601 time (any number of fraction digits; floor to ms). */
export function timestampMs(iso: string): number {
  const m = /^(.*T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$/.exec(iso)
  if (!m) throw new Error(`not an ISO-8601 time: ${iso}`)
  const ms = (m[2] ?? '').padEnd(3, '0').slice(0, 3)
  return Date.parse(`${m[1]}.${ms}${m[3]}`)
}

/** The bytes a checkpoint signature covers (see fundtrail_schemas.checkpoint.checkpoint_body). */
export function checkpointBody(cp: CheckpointJson): Uint8Array<ArrayBuffer> {
  const root = bytesToBase64(hexToBytes(cp.root_hash))
  return new TextEncoder().encode(`${cp.log_id}\n${cp.tree_size}\n${root}\n${timestampMs(cp.timestamp)}\n`)
}

export async function keyId(rawPublicKey: Uint8Array<ArrayBuffer>): Promise<string> {
  return bytesToHex((await sha256(rawPublicKey)).slice(0, 8))
}

export async function verifyCheckpoint(cp: CheckpointJson, rawPublicKey: Uint8Array<ArrayBuffer>): Promise<Check[]> {
  const kidOk = cp.key_id === (await keyId(rawPublicKey))
  let sigOk = false
  try {
    const key = await subtle().importKey('raw', rawPublicKey, { name: 'Ed25519' }, false, ['verify'])
    sigOk = await subtle().verify({ name: 'Ed25519' }, key, base64ToBytes(cp.signature), checkpointBody(cp))
  } catch {
    sigOk = false
  }
  return [
    { name: 'checkpoint.key_id', passed: kidOk },
    { name: 'checkpoint.signature', passed: sigOk },
  ]
}

/**
 * Is this entry in the log the signed checkpoint commits to? `expectedLeafHash` is the hash the trail
 * listed for the entry: the leaf data must hash to it, so the entry shown is the entry proven.
 */
export async function verifyEntry(
  inc: InclusionJson,
  rawPublicKey: Uint8Array<ArrayBuffer>,
  expectedLeafHash?: string,
): Promise<EntryVerdict> {
  const checks = await verifyCheckpoint(inc.checkpoint, rawPublicKey)
  let computed: Uint8Array = new Uint8Array()
  let included = false
  try {
    computed = await leafHash(base64ToBytes(inc.leaf_data))
    const ip = inc.inclusion_proof
    included =
      ip.leaf_index === inc.leaf_index &&
      ip.tree_size === inc.checkpoint.tree_size &&
      (await verifyInclusion(computed, ip.leaf_index, ip.tree_size, ip.hashes.map(hexToBytes),
        hexToBytes(inc.checkpoint.root_hash)))
  } catch {
    included = false
  }
  const hex = bytesToHex(computed)
  checks.push({ name: 'leaf.hash', passed: hex === inc.leaf_hash && (expectedLeafHash ?? hex) === hex })
  checks.push({ name: 'inclusion.proof', passed: included })
  return { ok: checks.every((c) => c.passed), checks }
}
