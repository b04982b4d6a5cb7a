import { describe, expect, it } from 'vitest'
import vectors from './verify.vectors.json'
import {
  base64ToBytes, bytesToBase64, bytesToHex, hexToBytes, leafHash, noteKeyHash, parseCheckpointText, parseNote,
  parseVkey, verifyCheckpoint, verifyEntry, verifyInclusion, type InclusionJson,
} from './verify'

const key = parseVkey(vectors.vkey)
const cases = vectors.cases as InclusionJson[]
const notes = vectors.notes as unknown as Record<string, { note: string; ok: boolean }> & { tree_size: number }
const noteCases = Object.entries(notes).filter(([, v]) => typeof v === 'object') as [string, { note: string; ok: boolean }][]
const passed = (checks: { name: string; passed: boolean }[], name: string) => checks.find((x) => x.name === name)?.passed

describe('verify against vectors from fundtrail_schemas', () => {
  it('reads the vkey and computes the signed-note key hash', async () => {
    expect(bytesToBase64(key.publicKey)).toBe(vectors.public_key)
    expect(key.name).toBe('fundtrail-test-log')
    expect(await noteKeyHash(key.name, key.publicKey)).toBe(key.keyHash)
    expect(() => parseVkey('no-plus-here')).toThrow()
    expect(() => parseVkey(vectors.vkey.replace('+AQ', '+Ag'))).toThrow() // not type 0x01
  })

  it('accepts every genuine entry', async () => {
    for (const c of cases) {
      const verdict = await verifyEntry(c, key, { leaf_hash: c.leaf_hash })
      expect(verdict.checks.filter((x) => !x.passed)).toEqual([])
    }
  })

  it('parses the note the proof is checked against', () => {
    const c = cases[cases.length - 1]
    const note = parseNote(c.checkpoint.note)
    const body = parseCheckpointText(note.text)
    expect(body.origin).toBe(c.checkpoint.log_id)
    expect(body.size).toBe(BigInt(c.checkpoint.tree_size))
    expect(bytesToHex(body.root)).toBe(c.checkpoint.root_hash)
    expect(note.text.split('\n')).toHaveLength(4)
    expect(note.signatures).toHaveLength(1)
    expect(note.signatures[0].signature).toHaveLength(64)
  })

  it('computes the leaf hash of RFC 9162', async () => {
    const c = cases[0]
    expect(Array.from(await leafHash(base64ToBytes(c.leaf_data!)))).toEqual(Array.from(hexToBytes(c.leaf_hash)))
  })

  it('refuses altered leaf data', async () => {
    const c = structuredClone(cases[5])
    const data = base64ToBytes(c.leaf_data!)
    data[0] ^= 1
    c.leaf_data = bytesToBase64(data)
    const verdict = await verifyEntry(c, key, { leaf_hash: c.leaf_hash })
    expect(verdict.ok).toBe(false)
    expect(passed(verdict.checks, 'leaf.hash')).toBe(false)
    expect(passed(verdict.checks, 'inclusion.proof')).toBe(false)
  })

  it("proves the trail item's own leaf bytes when it carries them", async () => {
    const c = cases[5]
    const own = { leaf_hash: c.leaf_hash, leaf_data: c.leaf_data }
    expect((await verifyEntry(c, key, own)).ok).toBe(true)
    // The proof endpoint's bytes are not what is proven then: only the item's are.
    const proofBytesAltered = { ...c, leaf_data: bytesToBase64(new TextEncoder().encode('other')) }
    expect((await verifyEntry(proofBytesAltered, key, own)).ok).toBe(true)
    // Item bytes changed (the gateway recomputes the listed hash from them): the hash matches, the proof does not.
    const data = base64ToBytes(c.leaf_data!)
    data[2] ^= 1
    const tampered = { leaf_data: bytesToBase64(data), leaf_hash: bytesToHex(await leafHash(data)) }
    const verdict = await verifyEntry(c, key, tampered)
    expect(passed(verdict.checks, 'leaf.hash')).toBe(true)
    expect(passed(verdict.checks, 'inclusion.proof')).toBe(false)
    // A listed hash that is not the hash of the item's bytes fails leaf.hash.
    expect(passed((await verifyEntry(c, key, { ...own, leaf_hash: cases[0].leaf_hash })).checks, 'leaf.hash')).toBe(false)
  })

  it('proves the listed hash when the leaf bytes are withheld, and says so', async () => {
    const c = { ...cases[5], leaf_data: null }
    const verdict = await verifyEntry(c, key, { leaf_hash: c.leaf_hash, leaf_data: null })
    expect([verdict.ok, verdict.withheld]).toEqual([true, true])
    expect((await verifyEntry(cases[5], key, { leaf_hash: c.leaf_hash })).withheld).toBe(false)
    const other = await verifyEntry({ ...c, leaf_hash: cases[0].leaf_hash }, key, { leaf_hash: cases[0].leaf_hash })
    expect(passed(other.checks, 'inclusion.proof')).toBe(false)
    const mismatch = await verifyEntry(c, key, { leaf_hash: cases[0].leaf_hash, leaf_data: null })
    expect(passed(mismatch.checks, 'leaf.hash')).toBe(false)
  })

  it('refuses a proof hash, an index or a size that was changed', async () => {
    const big = cases.find((c) => c.inclusion_proof.hashes.length > 1)!
    const proof = big.inclusion_proof.hashes.map(hexToBytes)
    const leaf = hexToBytes(big.leaf_hash)
    const root = hexToBytes(big.checkpoint.root_hash)
    const size = big.inclusion_proof.tree_size
    const index = big.leaf_index
    expect(await verifyInclusion(leaf, index, size, proof, root)).toBe(true)
    const bent = proof.map((p) => p.slice())
    bent[1][3] ^= 0x80
    expect(await verifyInclusion(leaf, index, size, bent, root)).toBe(false)
    expect(await verifyInclusion(leaf, index === 0 ? 1 : index - 1, size, proof, root)).toBe(false)
    expect(await verifyInclusion(leaf, index, 1, proof, root)).toBe(false)
    expect(await verifyInclusion(leaf, index, size, proof.slice(1), root)).toBe(false)
  })

  it('accepts exactly the notes the Python side marks genuine', async () => {
    expect(noteCases.map(([n]) => n)).toContain('size_changed')
    for (const [name, v] of noteCases) {
      const { checks, signed } = await verifyCheckpoint(v.note, key)
      expect([name, checks.every((x) => x.passed)]).toEqual([name, v.ok])
      if (v.ok) expect(signed?.size).toBe(BigInt(notes.tree_size))
    }
    const other = (await verifyCheckpoint(notes.other_key.note, key)).checks
    expect([passed(other, 'checkpoint.key_id'), passed(other, 'checkpoint.signature')]).toEqual([false, false])
    const resized = (await verifyCheckpoint(notes.size_changed.note, key)).checks
    expect([passed(resized, 'checkpoint.key_id'), passed(resized, 'checkpoint.signature')]).toEqual([true, false])
  })

  it('proves against the size and root signed in the note, not the JSON fields beside it', async () => {
    const c = cases.find((x) => x.checkpoint.tree_size === notes.tree_size)!
    // Signed note of another size: the signature holds but the proof is not against that tree.
    const small = cases.find((x) => x.checkpoint.tree_size === 5)!
    const swapped = { ...c, checkpoint: { ...c.checkpoint, note: small.checkpoint.note } }
    const v1 = await verifyEntry(swapped, key, { leaf_hash: c.leaf_hash })
    expect(passed(v1.checks, 'checkpoint.signature')).toBe(true)
    expect(passed(v1.checks, 'inclusion.proof')).toBe(false)
    // Tampered notes fail even when the JSON fields still tell the truth.
    for (const bad of ['size_changed', 'root_changed', 'other_key']) {
      const v = await verifyEntry({ ...c, checkpoint: { ...c.checkpoint, note: notes[bad].note } }, key,
        { leaf_hash: c.leaf_hash })
      expect([bad, v.ok]).toEqual([bad, false])
    }
    // JSON fields that lie do not matter: the note decides.
    const lying = { ...c, checkpoint: { ...c.checkpoint, tree_size: 99, root_hash: '00'.repeat(32) } }
    expect((await verifyEntry(lying, key, { leaf_hash: c.leaf_hash })).ok).toBe(true)
  })

  it('refuses another key and a key whose stated hash is wrong', async () => {
    const c = cases[cases.length - 1]
    const pk = key.publicKey.slice()
    pk[0] ^= 1
    expect((await verifyCheckpoint(c.checkpoint.note, { ...key, publicKey: pk })).checks.every((x) => x.passed)).toBe(false)
    const renamed = await verifyCheckpoint(c.checkpoint.note, { ...key, name: 'another-log' })
    expect(passed(renamed.checks, 'checkpoint.key_id')).toBe(false)
    const misstated = await verifyCheckpoint(c.checkpoint.note, { ...key, keyHash: '00000000' })
    expect(passed(misstated.checks, 'checkpoint.key_id')).toBe(false)
  })
})
