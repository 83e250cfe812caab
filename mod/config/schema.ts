/**
 * The shape of a spock config file: nodes, logging, and the engine settings
 * Spock keeps as GUCs, with Spock's defaults. The field table drives both
 * validation (load.ts) and the defaults; config.example.yaml documents it.
 */

/** LogTape's levels, lowest first. */
export const LOG_LEVELS = ["trace", "debug", "info", "warning", "error", "fatal"] as const;
/** A log level name. */
export type LogLevelName = typeof LOG_LEVELS[number];
/** `text` (coloured on a terminal) or `json` (one object per line). */
export const LOG_FORMATS = ["text", "json"] as const;
/** A log format name. */
export type LogFormatName = typeof LOG_FORMATS[number];

/** How spock logs. */
export interface LogSettings {
  level: LogLevelName;
  format: LogFormatName;
}

/** An extra interface (DSN) of a node, as `spock.node_add_interface` records. */
export interface InterfaceConfig {
  name: string;
  dsn: string;
}

/** A node this host serves: one database. */
export interface NodeConfig {
  name: string;
  dsn: string;
  interfaces: InterfaceConfig[];
}

/** Spock's GUCs as settings of the engine (units in the key or the comment). */
export interface EngineSettings {
  conflict_resolution:
    | "last_update_wins"
    | "first_update_wins"
    | "apply_remote"
    | "keep_local"
    | "error";
  conflict_log_level: string;
  save_resolutions: boolean;
  resolutions_retention_days: number;
  update_missing: "error" | "insert";
  exception_behaviour: "discard" | "transdiscard" | "sub_disable";
  exception_logging: "none" | "discard" | "all";
  exception_replay_queue_size: number;
  batch_inserts: boolean;
  /** Remote transactions in flight on the apply session before it waits for their COMMITs. */
  apply_window_transactions: number;
  /** Bytes of those transactions' messages in flight at most. */
  apply_window_bytes: number;
  check_all_uc_indexes: boolean;
  restart_delay_default: number;
  restart_delay_on_exception: number;
  synchronous_commit: boolean;
  temp_directory: string;
  extra_connection_options: string;
  sync_connections: number;
  status_interval: number;
  apply_idle_timeout: number;
  /** Seconds between pushes of this node's replicated sequences ahead to subscribers (0 = never). */
  sequence_sync_interval: number;
  /**
   * The served nodes' defaults of Spock's settings of these names, recorded
   * at start: a session, role, database or server value wins over them.
   */
  enable_ddl_replication: boolean;
  include_ddl_repset: boolean;
  allow_ddl_from_functions: boolean;
}

/** A validated config file. */
export interface Config {
  /** The file it was read from. */
  file: string;
  nodes: NodeConfig[];
  log: LogSettings;
  engine: EngineSettings;
  /** `spock run`'s monitoring server (`--metrics-listen` wins over it). */
  monitoring: { listen: string | undefined };
}

/** How one engine setting is validated. */
export type FieldSpec =
  | { kind: "enum"; values: readonly string[] }
  | { kind: "boolean" }
  | { kind: "integer"; min: number; max?: number }
  | { kind: "string" };

const INT_MAX = 2 ** 31 - 1;
const MESSAGE_LEVELS = [
  "debug5",
  "debug4",
  "debug3",
  "debug2",
  "debug1",
  "debug",
  "log",
  "info",
  "notice",
  "warning",
  "error",
];

/** Validation of every engine setting; the keys are exactly those of {@link EngineSettings}. */
export const ENGINE_FIELDS: Readonly<Record<keyof EngineSettings, FieldSpec>> = {
  conflict_resolution: {
    kind: "enum",
    values: ["last_update_wins", "first_update_wins", "apply_remote", "keep_local", "error"],
  },
  conflict_log_level: { kind: "enum", values: MESSAGE_LEVELS },
  save_resolutions: { kind: "boolean" },
  resolutions_retention_days: { kind: "integer", min: 0, max: INT_MAX },
  update_missing: { kind: "enum", values: ["error", "insert"] },
  exception_behaviour: { kind: "enum", values: ["discard", "transdiscard", "sub_disable"] },
  exception_logging: { kind: "enum", values: ["none", "discard", "all"] },
  exception_replay_queue_size: { kind: "integer", min: 0, max: INT_MAX },
  batch_inserts: { kind: "boolean" },
  apply_window_transactions: { kind: "integer", min: 1, max: 100_000 },
  apply_window_bytes: { kind: "integer", min: 65_536, max: INT_MAX },
  check_all_uc_indexes: { kind: "boolean" },
  restart_delay_default: { kind: "integer", min: 1, max: INT_MAX },
  restart_delay_on_exception: { kind: "integer", min: 0, max: INT_MAX },
  synchronous_commit: { kind: "boolean" },
  temp_directory: { kind: "string" },
  extra_connection_options: { kind: "string" },
  sync_connections: { kind: "integer", min: 1, max: 64 },
  status_interval: { kind: "integer", min: 100, max: INT_MAX },
  apply_idle_timeout: { kind: "integer", min: 0, max: INT_MAX },
  sequence_sync_interval: { kind: "integer", min: 0, max: 86_400 },
  enable_ddl_replication: { kind: "boolean" },
  include_ddl_repset: { kind: "boolean" },
  allow_ddl_from_functions: { kind: "boolean" },
};

/** Spock's defaults (5.0 GUCs; `apply_idle_timeout` from 5.0.x; `resolutions_retention_days` 30, not 5.0.x's 100). */
export const DEFAULT_ENGINE: Readonly<EngineSettings> = Object.freeze({
  conflict_resolution: "last_update_wins",
  conflict_log_level: "log",
  save_resolutions: false,
  resolutions_retention_days: 30,
  update_missing: "error",
  exception_behaviour: "transdiscard",
  exception_logging: "all",
  exception_replay_queue_size: 4_194_304,
  batch_inserts: true,
  apply_window_transactions: 500,
  apply_window_bytes: 8_388_608,
  check_all_uc_indexes: false,
  restart_delay_default: 5000,
  restart_delay_on_exception: 0,
  synchronous_commit: false,
  temp_directory: "",
  extra_connection_options: "",
  sync_connections: 2,
  status_interval: 10_000,
  apply_idle_timeout: 300,
  sequence_sync_interval: 60,
  enable_ddl_replication: false,
  include_ddl_repset: false,
  allow_ddl_from_functions: false,
});

/** Logging defaults: info, text. */
export const DEFAULT_LOG: Readonly<LogSettings> = Object.freeze({ level: "info", format: "text" });
