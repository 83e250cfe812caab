/**
 * How an apply session detects and resolves conflicts: the engine settings
 * (`conflict_resolution`, `update_missing`, `save_resolutions`,
 * `check_all_uc_indexes`, `conflict_log_level`) plus the identities the
 * decision compares (this session's origin, the provider node, the local
 * node's name for `spock.resolutions`).
 */

/** Spock's conflict resolution modes (all five, not only 5.0's last_update_wins). */
export type ConflictResolution =
  | "last_update_wins"
  | "first_update_wins"
  | "apply_remote"
  | "keep_local"
  | "error";

/** PostgreSQL 18's conflict types plus Spock's `delete_exists`. */
export type ConflictType =
  | "insert_exists"
  | "update_origin_differs"
  | "update_exists"
  | "update_missing"
  | "delete_origin_differs"
  | "delete_missing"
  | "delete_exists";

/** Every conflict type, in PostgreSQL's order. */
export const CONFLICT_TYPES: readonly ConflictType[] = [
  "insert_exists",
  "update_origin_differs",
  "update_exists",
  "update_missing",
  "delete_origin_differs",
  "delete_missing",
  "delete_exists",
];

/** The conflict settings of one subscription (node settings with its overrides). */
export interface ConflictSettings {
  resolution: ConflictResolution;
  /** A remote UPDATE of a missing row: `error` (exception handling, as Spock) or `insert`. */
  updateMissing: "error" | "insert";
  /** Write one `spock.resolutions` row per recorded conflict. */
  saveResolutions: boolean;
  /** Look for INSERT conflicts on every unique index, not only the key (Spock's experimental GUC). */
  checkAllUcIndexes: boolean;
  /** PostgreSQL message level of the conflict log line (`log`, `warning`, `debug1` …). */
  logLevel: string;
}

/** Spock's defaults. */
export const DEFAULT_CONFLICT_SETTINGS: Readonly<ConflictSettings> = Object.freeze({
  resolution: "last_update_wins",
  updateMissing: "error",
  saveResolutions: false,
  checkAllUcIndexes: false,
  logLevel: "log",
});

/** What the statements of one apply session compare a local row against. */
export interface ConflictContext {
  settings: ConflictSettings;
  /** `roident` of the session's replication origin: rows it wrote are not conflicts. */
  sessionOrigin: number;
  /** `spock.node` id of the provider (the remote side of every comparison). */
  remoteNodeId: number;
  /** The local node's name (`spock.resolutions.node_name`). */
  localNodeName: string;
}
