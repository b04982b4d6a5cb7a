// Sign-in: the devstack's role picker (mode "dev") or the identity provider (mode "oidc",
// Authorization Code + PKCE through oidc-client-ts). Never a form that asks for a token.
import { ref, watch } from 'vue'
import type { UserManager } from 'oidc-client-ts'

export interface Identity {
  subject: string
  role: 'compliance' | 'auditor' | 'bureau' | 'admin'
  region: string | null
  department: string | null
  label_zh: string
  label_en: string
}

export interface Session {
  token: string
  expiresAt: number // epoch ms
  identity: Identity
}

export type AuthConfig = { mode: 'dev' } | { mode: 'oidc'; issuer: string; client_id: string } | { mode: 'none' }

const KEY = 'fundtrail.console.session'

function restore(): Session | null {
  try {
    const s = JSON.parse(sessionStorage.getItem(KEY) ?? 'null') as Session | null
    return s && s.expiresAt > Date.now() ? s : null
  } catch {
    return null
  }
}

// sessionStorage: a tab's sign-in ends with the tab; tokens are short-lived anyway.
export const session = ref<Session | null>(typeof sessionStorage === 'undefined' ? null : restore())
if (typeof sessionStorage !== 'undefined') {
  watch(session, (s) => (s ? sessionStorage.setItem(KEY, JSON.stringify(s)) : sessionStorage.removeItem(KEY)))
}

export async function authConfig(): Promise<AuthConfig> {
  const resp = await fetch('/v1/auth/config')
  return resp.ok ? ((await resp.json()) as AuthConfig) : { mode: 'none' }
}

export async function devIdentities(): Promise<Identity[]> {
  const resp = await fetch('/v1/dev/identities')
  if (!resp.ok) throw new Error(`dev identities: HTTP ${resp.status}`)
  return ((await resp.json()) as { items: Identity[] }).items
}

export async function devSignIn(subject: string): Promise<Session> {
  const resp = await fetch('/v1/dev/session', {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ subject }),
  })
  if (!resp.ok) throw new Error(`dev sign-in: HTTP ${resp.status}`)
  const body = (await resp.json()) as { access_token: string; expires_in: number; identity: Identity }
  session.value = { token: body.access_token, expiresAt: Date.now() + body.expires_in * 1000, identity: body.identity }
  return session.value
}

/** The roles and region a token carries (its claims; the gateway is what checks them). */
export function identityFromToken(token: string): Identity {
  const payload = token.split('.')[1] ?? ''
  const json = JSON.parse(atob(payload.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(payload.length / 4) * 4, '=')))
  const scopes = String(json.scope ?? '').split(' ')
  const role = (['compliance', 'auditor', 'bureau', 'admin'] as const).find((r) => scopes.includes(r)) ?? 'auditor'
  const name = String(json.name ?? json.preferred_username ?? json.sub)
  return { subject: String(json.sub), role, region: json.region ?? null, department: null, label_zh: name, label_en: name }
}

export function oidcSettings(cfg: { issuer: string; client_id: string }, origin: string) {
  return {
    authority: cfg.issuer,
    client_id: cfg.client_id,
    redirect_uri: `${origin}/console/callback`,
    post_logout_redirect_uri: `${origin}/console/`,
    response_type: 'code', // Authorization Code; oidc-client-ts always adds PKCE (S256)
    scope: 'openid profile',
  }
}

let manager: UserManager | null = null

async function userManager(cfg: { issuer: string; client_id: string }): Promise<UserManager> {
  if (!manager) {
    const { UserManager: Manager, WebStorageStateStore } = await import('oidc-client-ts')
    manager = new Manager({ ...oidcSettings(cfg, location.origin), userStore: new WebStorageStateStore({ store: sessionStorage }) })
  }
  return manager
}

export async function oidcSignIn(cfg: { issuer: string; client_id: string }): Promise<void> {
  await (await userManager(cfg)).signinRedirect()
}

export async function oidcCallback(cfg: { issuer: string; client_id: string }): Promise<Session> {
  const user = await (await userManager(cfg)).signinRedirectCallback()
  session.value = {
    token: user.access_token,
    expiresAt: (user.expires_at ?? Date.now() / 1000 + 300) * 1000,
    identity: identityFromToken(user.access_token),
  }
  return session.value
}

export function signOut(): void {
  session.value = null
}
