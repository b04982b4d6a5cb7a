import { describe, expect, it } from 'vitest'
import { identityFromToken, oidcSettings } from './auth'

const b64url = (o: unknown) => btoa(JSON.stringify(o)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')

describe('sign-in helpers', () => {
  it('asks the identity provider for an authorization code back at the console', () => {
    const s = oidcSettings({ issuer: 'https://idp.example/realms/fundtrail', client_id: 'console' }, 'https://ft.example')
    expect(s.response_type).toBe('code')
    expect(s.redirect_uri).toBe('https://ft.example/console/callback')
    expect(s.authority).toBe('https://idp.example/realms/fundtrail')
  })
  it('reads role and region from the token the provider issued', () => {
    const token = `${b64url({ alg: 'EdDSA' })}.${b64url({ sub: 'u1', scope: 'openid compliance', region: '440705' })}.sig`
    const who = identityFromToken(token)
    expect(who.role).toBe('compliance')
    expect(who.region).toBe('440705')
    expect(who.subject).toBe('u1')
  })
})

describe('OIDC request', () => {
  it('is an authorization-code request with a PKCE S256 challenge', async () => {
    const { OidcClient, InMemoryWebStorage, WebStorageStateStore } = await import('oidc-client-ts')
    const client = new OidcClient({
      ...oidcSettings({ issuer: 'https://idp.example/realms/fundtrail', client_id: 'console' }, 'https://ft.example'),
      metadata: {
        issuer: 'https://idp.example/realms/fundtrail',
        authorization_endpoint: 'https://idp.example/realms/fundtrail/auth',
        token_endpoint: 'https://idp.example/realms/fundtrail/token',
      },
      stateStore: new WebStorageStateStore({ store: new InMemoryWebStorage() }),
    })
    const req = await client.createSigninRequest({})
    const url = new URL(req.url)
    expect(url.origin + url.pathname).toBe('https://idp.example/realms/fundtrail/auth')
    expect(url.searchParams.get('response_type')).toBe('code')
    expect(url.searchParams.get('code_challenge_method')).toBe('S256')
    expect(url.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(url.searchParams.get('redirect_uri')).toBe('https://ft.example/console/callback')
  })
})
