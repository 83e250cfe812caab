/**
 * `deno task bench`: decodes a pgoutput stream of over a million row changes,
 * captured once from a real server into bench/data/, with spock's decoder and
 * with pg-logical-replication's, on the same bytes in the same run, and
 * prints messages/s, row changes/s and MB/s. Capturing, decoding, timing and
 * printing live in the `_*.ts` files beside it.
 */
import { Buffer } from "node:buffer";
import {
  crossCheck,
  decodeWithPgLogicalReplication,
  decodeWithSpock,
  decodeWithSpockPgTypes,
  decodeWithSpockStrings,
  typeParsersOf,
} from "./_decoders.ts";
import { isCurrentCapture, loadCapture, readCaptureHeader } from "./_capture_file.ts";
import { type BenchCase, measure } from "./_measure.ts";
import {
  countByType,
  formatRatio,
  formatServerVersion,
  formatTable,
  machineInfo,
} from "./_report.ts";

const CAPTURE_PATH = new URL("./data/pgoutput-1m.capture", import.meta.url).pathname;
const MIN_ROW_CHANGES = 1_000_000;
const CROSS_CHECK_MESSAGES = 100_000;
const GOAL_RATIO = 2;
const USAGE = `Usage: deno task bench [--recapture] [--rounds N]

  --recapture  capture the stream again even if ${CAPTURE_PATH} is current
  --rounds N   measured rounds per decoder (default 5), after one warm-up round`;

interface BenchArgs {
  recapture: boolean;
  rounds: number;
}

function parseArgs(args: string[]): BenchArgs | undefined {
  const parsed: BenchArgs = { recapture: false, rounds: 5 };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--recapture") parsed.recapture = true;
    else if (arg === "--rounds" || arg.startsWith("--rounds=")) {
      const value = arg === "--rounds" ? args[++i] : arg.slice("--rounds=".length);
      parsed.rounds = Number(value);
      if (!Number.isInteger(parsed.rounds) || parsed.rounds < 1) return undefined;
    } else return undefined;
  }
  return parsed;
}

/** Captures the stream into bench/data/ unless a current capture is already there. */
async function ensureCapture(recapture: boolean): Promise<void> {
  const header = await readCaptureHeader(CAPTURE_PATH);
  if (!recapture && header !== undefined && isCurrentCapture(header)) {
    console.log(`Using ${CAPTURE_PATH} (pass --recapture to capture it again)`);
    return;
  }
  console.log(
    header === undefined || recapture
      ? `Capturing ${CAPTURE_PATH} from a throwaway cluster …`
      : `${CAPTURE_PATH} was made by another workload or server: capturing it again …`,
  );
  const started = performance.now();
  // The harness is loaded only now: replaying an existing capture needs no server.
  const { captureWorkload } = await import("./_capture.ts");
  await Deno.mkdir(new URL("./data/", import.meta.url), { recursive: true });
  const summary = await captureWorkload(CAPTURE_PATH);
  console.log(
    `Captured ${summary.frames.toLocaleString("en")} messages in ` +
      `${summary.transactions.toLocaleString("en")} transactions ` +
      `(${(summary.fileBytes / 1e6).toFixed(1)} MB) from PostgreSQL ${summary.serverVersion} ` +
      `in ${seconds(performance.now() - started)} (workload SQL ${seconds(summary.workloadMs)}, ` +
      `streamed alongside it)`,
  );
}

async function main(): Promise<number> {
  const args = parseArgs(Deno.args);
  if (args === undefined) {
    console.error(USAGE);
    return 2;
  }
  await ensureCapture(args.recapture);

  const capture = await loadCapture(CAPTURE_PATH);
  const { header, payloads, payloadBytes } = capture;
  const types = countByType(payloads);
  const rowChanges = (types.get("I") ?? 0) + (types.get("U") ?? 0) + (types.get("D") ?? 0);
  if (rowChanges < MIN_ROW_CHANGES) {
    console.error(`${CAPTURE_PATH} holds only ${rowChanges} row changes: run with --recapture`);
    return 1;
  }
  // pg-logical-replication is handed Node Buffers, as its replication service
  // does; they are views of the same memory, made once, outside the timing.
  const buffers = payloads.map((payload) =>
    Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)
  );
  const protoVersion = header.protoVersion;
  const parsers = typeParsersOf(buffers);

  const machine = await machineInfo();
  console.log(
    `\nDeno ${machine.deno} (V8 ${machine.v8}), ${machine.os}, ${machine.cpu} × ${machine.cpus}`,
  );
  console.log(
    `Capture: PostgreSQL ${formatServerVersion(header.serverVersionNum)}, pgoutput protocol ` +
      `${protoVersion}, ${payloads.length.toLocaleString("en")} messages, ` +
      `${rowChanges.toLocaleString("en")} row changes, ` +
      `${(payloadBytes / 1e6).toFixed(1)} MB of pgoutput payload`,
  );
  const byType = [...types].map(([type, count]) => `${type} ${count.toLocaleString("en")}`);
  console.log(`  by type: ${byType.join(", ")}`);

  const compared = crossCheck(payloads, buffers, {
    protoVersion,
    parsers,
    limit: CROSS_CHECK_MESSAGES,
  });
  const sample = CROSS_CHECK_MESSAGES.toLocaleString("en");
  console.log(
    `Cross-check: (d) and (c) agree on all ${compared.toLocaleString("en")} column values of ` +
      `the first ${sample} messages`,
  );

  const cases: BenchCase[] = [
    {
      key: "a",
      label: "spock PgoutputStreamDecoder",
      run: () => decodeWithSpock(payloads, protoVersion),
    },
    {
      key: "b",
      label: "spock + every column as text",
      run: () => decodeWithSpockStrings(payloads, protoVersion),
    },
    {
      key: "c",
      label: "pg-logical-replication 2.5.0",
      run: () => decodeWithPgLogicalReplication(buffers),
    },
    {
      key: "d",
      label: "spock + pg-types values, as (c)",
      run: () => decodeWithSpockPgTypes(payloads, { protoVersion, parsers }),
    },
  ];
  console.log(`\nTiming ${cases.length} decoders: 1 warm-up round, ${args.rounds} measured …`);
  const results = measure(cases, {
    warmupRounds: 1,
    rounds: args.rounds,
    onRound: (round, warmup) => console.log(`  ${warmup ? "warm-up" : "round"} ${round} done`),
  });

  console.log(`\n${formatTable(results, payloadBytes)}`);
  console.log("MB = 10^6 bytes of pgoutput payload (XLogData.data); rates from the median round.");
  const [a, b, c, d] = results;
  console.log("\nmessages/s ratios to pg-logical-replication:");
  for (const ours of [a, b, d]) {
    const met = c.medianMs / ours.medianMs >= GOAL_RATIO ? "met" : "NOT met";
    const goal = ours === a || ours === b ? `  goal ≥ ${GOAL_RATIO}×: ${met}` : "";
    console.log(`  ${formatRatio(ours, c)}${goal}`);
  }
  return 0;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

Deno.exit(await main());
