/**
 * Timing for the bench: warm-up rounds, then measured rounds in which the
 * cases take turns (each round starts with the next case, so garbage left by
 * one case and drift of the machine fall on all of them alike), then median
 * and best. What the cases decode is `_decoders.ts`'s business.
 */
import type { DecodeCounts } from "./_decoders.ts";

/** One thing to time: a full pass over the capture. */
export interface BenchCase {
  /** Short key used in ratios, e.g. `"a"`. */
  key: string;
  label: string;
  run: () => DecodeCounts;
}

/** The timings of one case. */
export interface CaseResult {
  key: string;
  label: string;
  counts: DecodeCounts;
  /** Measured rounds, in milliseconds, in the order they ran. */
  timesMs: number[];
  medianMs: number;
  bestMs: number;
}

/** How many rounds to run. */
export interface MeasureOptions {
  warmupRounds: number;
  rounds: number;
  /** Called after each round, e.g. to print progress. */
  onRound?: (round: number, warmup: boolean) => void;
}

/**
 * Runs every case `warmupRounds` times untimed and `rounds` times timed.
 *
 * @throws {Error} when two passes over the same bytes count differently.
 */
export function measure(cases: readonly BenchCase[], options: MeasureOptions): CaseResult[] {
  const times = cases.map(() => [] as number[]);
  const counts: (DecodeCounts | undefined)[] = cases.map(() => undefined);
  let expected: DecodeCounts | undefined;
  const total = options.warmupRounds + options.rounds;
  for (let round = 0; round < total; round++) {
    const warmup = round < options.warmupRounds;
    for (let turn = 0; turn < cases.length; turn++) {
      const index = (round + turn) % cases.length;
      const started = performance.now();
      const result = cases[index].run();
      const elapsed = performance.now() - started;
      if (!warmup) times[index].push(elapsed);
      expected ??= result;
      if (result.messages !== expected.messages || result.rowChanges !== expected.rowChanges) {
        throw new Error(
          `Case ${cases[index].key} counted ${result.messages} messages and ` +
            `${result.rowChanges} row changes, another ${expected.messages} and ` +
            `${expected.rowChanges}`,
        );
      }
      counts[index] = result;
    }
    options.onRound?.(warmup ? round + 1 : round + 1 - options.warmupRounds, warmup);
  }
  return cases.map((benchCase, index) => ({
    key: benchCase.key,
    label: benchCase.label,
    counts: counts[index]!,
    timesMs: times[index],
    medianMs: median(times[index]),
    bestMs: Math.min(...times[index]),
  }));
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}
