/**
 * Runs the spock CLI the way users run it: `deno run main.ts` with exactly the
 * permissions the `compile` task grants, read from deno.json.
 */
import denoJson from "../../deno.json" with { type: "json" };

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/** The permission flags (and V8 flags: the daemon's heap cap) of the `compile` task. */
export const COMPILE_PERMISSIONS: string[] = denoJson.tasks.compile
  .split(/\s+/)
  .filter((word: string) => word.startsWith("--allow-") || word.startsWith("--v8-flags="));

/** A command that runs `spock <args>`; pipe stdout/stderr as needed. */
export function spockCommand(args: string[], options: Deno.CommandOptions = {}): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", ...COMPILE_PERMISSIONS, MAIN, ...args],
    stdout: "piped",
    stderr: "piped",
    ...options,
  });
}

/** Runs `spock <args>` to completion and returns its exit code and output. */
export async function runSpock(
  args: string[],
  options: Deno.CommandOptions = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await spockCommand(args, options).output();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}
