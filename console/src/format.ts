// Display conventions: Asia/Shanghai times, amounts stored as integer fen shown in 元 with separators.

export const ZONE = 'Asia/Shanghai'

/** "1,234,567.89 元" from integer fen, exactly (no floating point). */
export function yuan(fen: number | null | undefined, unit = true): string {
  if (fen === null || fen === undefined) return '—'
  const negative = fen < 0
  const abs = BigInt(Math.abs(Math.trunc(fen)))
  const whole = (abs / 100n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',')
  const cents = (abs % 100n).toString().padStart(2, '0')
  return `${negative ? '-' : ''}${whole}.${cents}${unit ? ' 元' : ''}`
}

const dateTime = new Intl.DateTimeFormat('zh-CN', {
  timeZone: ZONE, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit',
  hour12: false,
})
const dateOnly = new Intl.DateTimeFormat('zh-CN', { timeZone: ZONE, year: 'numeric', month: '2-digit', day: '2-digit' })

function parts(fmt: Intl.DateTimeFormat, d: Date): Record<string, string> {
  return Object.fromEntries(fmt.formatToParts(d).map((p) => [p.type, p.value]))
}

/** "2026-03-01 16:30" in Asia/Shanghai. */
export function shanghaiDateTime(iso: string | null | undefined): string {
  if (!iso) return '—'
  const p = parts(dateTime, new Date(iso))
  return `${p.year}-${p.month}-${p.day} ${p.hour === '24' ? '00' : p.hour}:${p.minute}`
}

/** "2026-03-01" in Asia/Shanghai. */
export function shanghaiDate(iso: string | null | undefined): string {
  if (!iso) return '—'
  const p = parts(dateOnly, new Date(iso))
  return `${p.year}-${p.month}-${p.day}`
}

/** The instant a Shanghai calendar day starts, as ISO-8601 with offset (what the API's filters take). */
export function shanghaiDayStart(day: string): string {
  return `${day}T00:00:00+08:00`
}

/** The day after `day` (YYYY-MM-DD), for half-open ranges. */
export function nextDay(day: string): string {
  const d = new Date(`${day}T00:00:00Z`)
  d.setUTCDate(d.getUTCDate() + 1)
  return d.toISOString().slice(0, 10)
}
