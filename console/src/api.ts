// The gateway's HTTP API, same origin. Errors are RFC 9457 problem documents: shown, never swallowed.
import { session } from './auth'

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

export async function getJson<T>(path: string, query?: Query): Promise<T> {
  return (await request(withQuery(path, query))).json() as Promise<T>
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

// ---- shapes the console reads (the fields it uses; see the gateway's OpenAPI document) ----

export interface ViolationSummary {
  violation_id: string
  rule_id: string
  rule_version: number
  department: string
  severity: string
  status: string
  triggering_event_id: string
  fund_doc_no: string | null
  project_id: string | null
  region_code: string
  occurred_at: string
  raised_at: string
  status_changed_at: string
  trace_id: string | null
  explanation_zh: string
  explanation_en: string
  assignee?: string | null
  due_date?: string | null
  overdue?: boolean
}

export interface CaseStep {
  event_id: string
  action: string
  actor: string
  at: string
  trace_id: string | null
  payload: Record<string, unknown>
}

export interface ViolationDetail extends ViolationSummary {
  legal_basis: string
  evidence: { event_ids?: string[]; values?: Record<string, unknown> }
  case_history: CaseStep[]
  allowed_actions: string[]
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

export interface PositionNode {
  region_code: string
  level: string
  received_fen: number
  passed_down_fen: number
  contracted_fen: number
  paid_fen: number
  returned_fen: number
  balance_fen: number
  subtree_paid_fen: number
  subtree_balance_fen: number
  children: PositionNode[]
}

export interface Fund {
  fund_doc_no: string
  title: string
  purpose_category: string
  allocated_fen: number
  deadline: string | null
  region_code: string
  positions: PositionNode[]
}

/** A trail item as the gateway builds it from the leaf bytes: every fact is null when the bytes
 * do not parse (an altered leaf), and `verification` names what the gateway found wrong. */
export interface TrailEntry {
  leaf_index: number
  leaf_hash: string
  leaf_data?: string | null // base64 leaf bytes (gateways that build items from their leaves); null: withheld
  verification?: { ok: boolean; problems: string[] }
  entry_kind: string | null
  entry_id: string | null
  event_type: string | null
  region_code: string | null
  occurred_at: string | null
  appended_at: string | null
  violation_id: string | null
  violation_status: string | null
  event: Record<string, unknown> | null
}

export interface Rule {
  rule_id: string
  department: string
  versions?: { version: number; title_zh?: string; title_en?: string }[]
  [key: string]: unknown
}
