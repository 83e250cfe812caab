/**
 * Reading the provider's queued commands from their 'spock_queue' messages
 * (pure code): each type, the set rule, and a clear error for what is
 * malformed.
 */
import assert from "node:assert/strict";
import { ApplyError } from "../../mod/apply/mod.ts";
import { parseQueuedCommand, queuedForSets } from "../../mod/apply/queued_commands.ts";
import type { Message } from "../../mod/pgoutput/mod.ts";

function message(content: string): Message {
  return {
    type: "message",
    transactional: true,
    messageLsn: 0n,
    prefix: "spock_queue",
    content: new TextEncoder().encode(content),
  } as Message;
}

const row = (fields: Record<string, unknown>) =>
  message(JSON.stringify({ role: "app", replication_sets: ["ddl_sql"], ...fields }));

Deno.test("parseQueuedCommand() reads 'Q', 'S' and 'A' rows", () => {
  assert.deepEqual(parseQueuedCommand(row({ message_type: "Q", message: "SET x; ALTER t" })), {
    type: "Q",
    role: "app",
    sets: ["ddl_sql"],
    command: "SET x; ALTER t",
  });
  assert.deepEqual(
    parseQueuedCommand(row({
      message_type: "S",
      replication_sets: null,
      message: { schema_name: "public", sequence_name: "s", last_value: "1005" },
    })),
    { type: "S", role: "app", sets: null, schema: "public", sequence: "s", lastValue: "1005" },
  );
  assert.deepEqual(
    parseQueuedCommand(row({ message_type: "A", message: { schema_name: "a", table_name: "t" } })),
    { type: "A", role: "app", sets: ["ddl_sql"], schema: "a", table: "t" },
  );
});

Deno.test("parseQueuedCommand() names what is wrong in a malformed message", () => {
  const cases: Array<[Message, RegExp]> = [
    [message("{not json"), /not JSON/],
    [message(JSON.stringify({ message_type: "Q", message: "x" })), /no role/],
    [row({ replication_sets: "ddl_sql", message_type: "Q", message: "x" }), /replication_sets/],
    [row({ message_type: "Q", message: 7 }), /'Q' without its command text/],
    [row({ message_type: "S", message: { schema_name: "p" } }), /'S' without sequence_name/],
    [row({ message_type: "Z", message: "x" }), /unknown message_type "Z"/],
  ];
  for (const [input, pattern] of cases) {
    assert.throws(() => parseQueuedCommand(input), (error: Error) => {
      assert.ok(error instanceof ApplyError);
      assert.equal(error.code, "ERR_APPLY_BAD_MESSAGE");
      assert.match(error.message, /^Cannot read a "spock_queue" message: /);
      assert.match(error.message, pattern);
      return true;
    });
  }
});

Deno.test("queuedForSets(): a command for no set goes everywhere, else it must share one", () => {
  const command = (sets: string[] | null) =>
    ({ type: "Q", role: "app", sets, command: "x" }) as const;
  assert.equal(queuedForSets(command(null), ["default"]), true);
  assert.equal(queuedForSets(command(["ddl_sql", "x"]), ["default", "ddl_sql"]), true);
  assert.equal(queuedForSets(command(["ddl_sql"]), ["default"]), false);
});
