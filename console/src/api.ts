// The gateway's HTTP API, same origin. Errors are RFC 9457 problem documents: shown, never swallowed.
import { session } from './auth'
import type { components } from './api.schema'

export interface Problem {
  type?: string
  title?: string
  status: number
  detail?: string
  errors?: { field: string; message: string }[]
  [key: string]: unknown
}

export class ApiError extends Error {
  constructor(public problem: Problem) {
    super(problem.detail || problem.title || `HTTP ${problem.status}`)
  }
}

export type Query = Record<string, string | number | boolean | null | undefined | string[]>

export function withQuery(path: string, query: Query = {}): string {
  const params = new URLSearchParams()
  for (const [k, v] of Object.entries(query)) {
    if (v === null || v === undefined || v === '') continue
    if (Array.isArray(v)) v.forEach((x) => params.append(k, x))
    else params.append(k, String(v))
  }
  const qs = params.toString()
  return qs ? `${path}${path.includes('?') ? '&' : '?'}${qs}` : path
}

async function problemOf(resp: Response): Promise<Problem> {
  try {
    const body = await resp.json()
    return { status: resp.status, ...body }
  } catch {
    return { status: resp.status, title: resp.statusText }
  }
}

export async function request(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers)
  const token = session.value?.token
  if (token) headers.set('Authorization', `Bearer ${token}`)
  const resp = await fetch(path, { ...init, headers })
  if (resp.status === 401 && session.value) session.value = null
  if (!resp.ok) throw new ApiError(await problemOf(resp))
  return resp
}

export async function getJson<T>(path: string, query?: Query, init: RequestInit = {}): Promise<T> {
  return (await request(withQuery(path, query), init)).json() as Promise<T>
}

export async function postJson<T>(path: string, body: unknown): Promise<T> {
  const resp = await request(path, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
  })
  return resp.json() as Promise<T>
}

export async function postForm<T>(path: string, form: FormData): Promise<T> {
  return (await request(path, { method: 'POST', body: form })).json() as Promise<T>
}

/** Download a file the API renders (exports), with the bearer token. */
export async function download(path: string, query: Query, filename: string): Promise<void> {
  const blob = await (await request(withQuery(path, query))).blob()
  const url = URL.createObjectURL(blob)
  const a = document.createElement('a')
  a.href = url
  a.download = filename
  a.click()
  URL.revokeObjectURL(url)
}

// ---- shapes the console reads: generated from the gateway's OpenAPI document (api.schema.ts,
// console/scripts/gen_api_types.py; tests/test_console_unit.py fails when they drift) ----

type Schemas = components['schemas']
export type ViolationSummary = Schemas['ViolationOut']
export type CaseStep = Schemas['CaseActionOut']
export type ViolationDetail = Schemas['ViolationDetail']
export type PositionNode = Schemas['PositionNodeOut']
export type Fund = Schemas['FundOut']
/** Built from the leaf bytes: every fact is null when they do not parse (an altered leaf), and
 * `verification` names what the gateway found wrong. */
export type TrailEntry = Schemas['TrailEntryOut']
export type Rule = Schemas['RuleVersions']
export type ImportReport = Schemas['ImportReport']

/** The ids of a violation's evidence events (its `evidence` is free-form JSON in the API). */
export function evidenceEventIds(v: ViolationDetail): string[] {
  const ids = v.evidence.event_ids
  return Array.isArray(ids) ? ids.filter((x): x is string => typeof x === 'string') : []
}

/** The values the rule read, from `evidence.values`. */
export function evidenceValues(v: ViolationDetail): Record<string, unknown> {
  const values = v.evidence.values
  return values && typeof values === 'object' && !Array.isArray(values) ? (values as Record<string, unknown>) : {}
}

export interface Page<T> {
  items: T[]
  next: string | null
  next_cursor: string | null
}

export interface RegionNode {
  code: string
  name: string
  children?: RegionNode[]
}




