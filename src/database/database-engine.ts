/** The database the service talks to, however it was obtained (DESIGN.md, Database). */
export interface DatabaseEngine {
  /** `external` for MONGODB_URI, otherwise the embedded engine that was started. */
  readonly name: 'external' | 'mongod (mongodb-memory-server)' | 'mongo-java-server';
  readonly uri: string;
  /** Whether data outlives the process. */
  readonly persistent: boolean;
  /** Stops an embedded engine; a no-op for an external database. */
  stop(): Promise<void>;
}

export interface DatabaseEngineOptions {
  /** MONGODB_URI: when set, nothing is started. */
  uri?: string;
  /** Folder for embedded data that outlives the process; undefined keeps it in memory. */
  dataDir?: string;
  /** Port for an embedded engine; 0 picks a free one. */
  port?: number;
  log?: (message: string) => void;
}

export class DatabaseUnavailableError extends Error {}
