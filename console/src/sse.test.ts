import { describe, expect, it } from 'vitest'
import { parseSse } from './sse'

describe('parseSse', () => {
  it('splits events, keeps the incomplete tail and skips comments', () => {
    const { events, rest } = parseSse('event: ready\nid: v1:0:5\ndata: {"a":1}\n\n: ping\n\nevent: violation\ndata: {"b"')
    expect(events).toEqual([{ event: 'ready', id: 'v1:0:5', data: '{"a":1}' }])
    expect(rest).toBe('event: violation\ndata: {"b"')
  })
})
