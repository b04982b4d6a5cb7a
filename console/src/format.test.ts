import { describe, expect, it } from 'vitest'
import { nextDay, shanghaiDate, shanghaiDateTime, yuan } from './format'

describe('format', () => {
  it('shows fen as yuan with separators, exactly', () => {
    expect(yuan(123456789)).toBe('1,234,567.89 元')
    expect(yuan(5)).toBe('0.05 元')
    expect(yuan(-100, false)).toBe('-1.00')
    expect(yuan(null)).toBe('—')
  })
  it('shows times in Asia/Shanghai', () => {
    expect(shanghaiDateTime('2026-02-28T16:30:00Z')).toBe('2026-03-01 00:30')
    expect(shanghaiDate('2026-02-28T16:30:00Z')).toBe('2026-03-01')
    expect(nextDay('2026-02-28')).toBe('2026-03-01')
  })
})
