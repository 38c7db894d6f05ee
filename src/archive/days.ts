import type { DayRange } from '../shared/archive-types';
import { nextDate } from './export';

/**
 * Ranges of UTC days (YYYY-MM-DD, inclusive) merged into the fewest sorted, disjoint ranges:
 * overlapping and adjacent ranges become one, so a list of holds stays as short as the days
 * it covers allow.
 */
export function mergeDays(ranges: readonly DayRange[]): DayRange[] {
  const sorted = [...ranges].sort((a, b) => a.first.localeCompare(b.first));
  const merged: DayRange[] = [];
  for (const range of sorted) {
    const last = merged.at(-1);
    if (last && range.first <= nextDate(last.last)) {
      if (range.last > last.last) last.last = range.last;
    } else merged.push({ ...range });
  }
  return merged;
}

/** Single days as merged ranges. */
export function rangesOfDays(days: Iterable<string>): DayRange[] {
  return mergeDays([...days].map((day) => ({ first: day, last: day })));
}
