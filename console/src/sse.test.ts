import { describe, expect, it, vi } from 'vitest'
import { parseSse } from './sse'

describe('parseSse', () => {
  it('splits events, keeps the incomplete tail and skips comments', () => {
    const { events, rest } = parseSse('event: ready\nid: v1:0:5\ndata: {"a":1}\n\n: ping\n\nevent: violation\ndata: {"b"')
    expect(events).toEqual([{ event: 'ready', id: 'v1:0:5', data: '{"a":1}' }])
    expect(rest).toBe('event: violation\ndata: {"b"')
  })
})

describe('openStream', () => {
  it('reports nothing once closed: no late events and no "disconnected" for the page that closed it', async () => {
    const enc = new TextEncoder()
    let push: ((s: string) => void) | null = null
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        push = (s) => c.enqueue(enc.encode(s))
      },
    })
    const realFetch = globalThis.fetch
    globalThis.fetch = (async (_url: string, init: RequestInit) => {
      init.signal?.addEventListener('abort', () => push?.('event: violation\ndata: {"late":1}\n\n'))
      return new Response(body, { status: 200 })
    }) as typeof fetch
    try {
      const { openStream } = await import('./sse')
      const events: string[] = []
      const states: boolean[] = []
      const s = openStream('/x', (e) => events.push(e.event), (on) => states.push(on))
      await vi.waitFor(() => expect(push).not.toBeNull())
      push!('event: ready\ndata: {}\n\n')
      await vi.waitFor(() => expect(states).toEqual([true]))
      s.close()
      push!('event: violation\ndata: {"after":1}\n\n')
      await new Promise((r) => setTimeout(r, 50))
      expect(events).toEqual(['ready'])
      expect(states).toEqual([true])
    } finally {
      globalThis.fetch = realFetch
    }
  })
})
