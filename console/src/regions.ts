// Region names: the tree down to towns once per session, villages on demand.
import { reactive, ref } from 'vue'
import { getJson, type RegionNode } from './api'

export const regionTree = ref<RegionNode | null>(null)
const names = reactive<Record<string, string>>({})

export async function loadRegions(): Promise<RegionNode> {
  if (!regionTree.value) {
    const tree = await getJson<RegionNode>('/v1/regions')
    const walk = (n: RegionNode) => {
      names[n.code] = n.name
      n.children?.forEach(walk)
    }
    walk(tree)
    regionTree.value = tree
  }
  return regionTree.value
}

export async function loadNames(codes: string[]): Promise<void> {
  const missing = [...new Set(codes)].filter((c) => !(c in names))
  for (let i = 0; i < missing.length; i += 200) {
    const got = await getJson<Record<string, { name: string }>>('/v1/regions/names', { code: missing.slice(i, i + 200) })
    for (const [code, v] of Object.entries(got)) names[code] = v.name
    // Codes the registry does not know keep their digits; asking again would not change that.
    for (const code of missing.slice(i, i + 200)) if (!(code in names)) names[code] = code
  }
}

export function regionName(code: string | null | undefined): string {
  if (!code) return '—'
  return names[code] ?? code
}

/** "新会区 · 大泽镇" for a town, the county alone for a county. */
export function regionPath(code: string): string {
  const parts = [code.slice(0, 6), code.length >= 9 ? code.slice(0, 9) : '', code.length >= 12 ? code : '']
  return parts.filter(Boolean).map(regionName).join(' · ')
}
