// Server-Sent Events over fetch: EventSource cannot send the bearer token, fetch can.
// Reconnects with Last-Event-ID (the gateway's ids are partition offsets: nothing is missed).
import { session } from './auth'

export interface SseEvent {
  event: string
  id: string | null
  data: string
}

/** Parse complete events out of `buffer`; returns them and the unparsed rest. */
export function parseSse(buffer: string): { events: SseEvent[]; rest: string } {
  const events: SseEvent[] = []
  const blocks = buffer.replace(/\r\n/g, '\n').split('\n\n')
  const rest = blocks.pop() ?? ''
  for (const block of blocks) {
    let event = 'message'
    let id: string | null = null
    const data: string[] = []
    for (const line of block.split('\n')) {
      if (!line || line.startsWith(':')) continue
      const colon = line.indexOf(':')
      const field = colon < 0 ? line : line.slice(0, colon)
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '')
      if (field === 'event') event = value
      else if (field === 'id') id = value
      else if (field === 'data') data.push(value)
    }
    if (data.length || event !== 'message') events.push({ event, id, data: data.join('\n') })
  }
  return { events, rest }
}

export interface LiveStream {
  close(): void
}

export function openStream(
  url: string,
  onEvent: (e: SseEvent) => void,
  onState: (connected: boolean) => void,
): LiveStream {
  let closed = false
  let lastId: string | null = null
  let controller: AbortController | null = null

  async function run(): Promise<void> {
    while (!closed) {
      controller = new AbortController()
      try {
        const headers: Record<string, string> = { Accept: 'text/event-stream' }
        if (session.value) headers.Authorization = `Bearer ${session.value.token}`
        if (lastId) headers['Last-Event-ID'] = lastId
        const resp = await fetch(url, { headers, signal: controller.signal })
        if (!resp.ok || !resp.body) throw new Error(`HTTP ${resp.status}`)
        const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader()
        let buffer = ''
        for (;;) {
          const { value, done } = await reader.read()
          if (done) break
          const parsed = parseSse(buffer + value)
          buffer = parsed.rest
          for (const e of parsed.events) {
            if (closed) return // a closed stream reports nothing more (its page may have a new one)
            if (e.id) lastId = e.id
            if (e.event === 'ready') onState(true)
            onEvent(e)
          }
        }
      } catch {
        // network error or abort: fall through to the retry below
      }
      if (closed) return
      onState(false)
      await new Promise((r) => setTimeout(r, 3000))
    }
  }
  void run()
  return {
    close() {
      closed = true
      controller?.abort()
    },
  }
}
