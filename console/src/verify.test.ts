import { describe, expect, it } from 'vitest'
import vectors from './verify.vectors.json'
import {
  base64ToBytes, bytesToBase64, checkpointBody, hexToBytes, leafHash, timestampMs, verifyCheckpoint, verifyEntry,
  verifyInclusion, type InclusionJson,
} from './verify'

const key = base64ToBytes(vectors.public_key)
const cases = vectors.cases as InclusionJson[]

describe('verify against vectors from fundtrail_schemas', () => {
  it('accepts every genuine entry', async () => {
    for (const c of cases) {
      const verdict = await verifyEntry(c, key, c.leaf_hash)
      expect(verdict.checks.filter((x) => !x.passed)).toEqual([])
    }
  })

  it('computes the leaf hash of RFC 9162', async () => {
    const c = cases[0]
    expect(Array.from(await leafHash(base64ToBytes(c.leaf_data)))).toEqual(Array.from(hexToBytes(c.leaf_hash)))
  })

  it('refuses altered leaf data', async () => {
    const c = structuredClone(cases[5])
    const data = base64ToBytes(c.leaf_data)
    data[0] ^= 1
    c.leaf_data = bytesToBase64(data)
    const verdict = await verifyEntry(c, key, c.leaf_hash)
    expect(verdict.ok).toBe(false)
    expect(verdict.checks.find((x) => x.name === 'inclusion.proof')?.passed).toBe(false)
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

  it('refuses a checkpoint whose fields were changed after signing, or another key', async () => {
    const c = cases[cases.length - 1]
    expect((await verifyCheckpoint(c.checkpoint, key)).every((x) => x.passed)).toBe(true)
    const resized = { ...c.checkpoint, tree_size: c.checkpoint.tree_size + 1 }
    expect((await verifyCheckpoint(resized, key)).find((x) => x.name === 'checkpoint.signature')?.passed).toBe(false)
    const other = key.slice()
    other[0] ^= 1
    expect((await verifyCheckpoint(c.checkpoint, other)).every((x) => x.passed)).toBe(false)
  })

  it('signs whole milliseconds as the Python side does', () => {
    expect(timestampMs('2026-03-01T08:30:15.123000Z')).toBe(Date.UTC(2026, 2, 1, 8, 30, 15, 123))
    expect(timestampMs('2026-03-01T16:30:15.1+08:00')).toBe(Date.UTC(2026, 2, 1, 8, 30, 15, 100))
    expect(new TextDecoder().decode(checkpointBody(cases[0].checkpoint)).split('\n')).toHaveLength(5)
  })
})
