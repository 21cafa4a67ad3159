import { registerAs } from '@nestjs/config';

export const databaseConfig = registerAs('database', () => ({
  /** Unset: the embedded engine is resolved (DESIGN.md, Database). */
  uri: process.env.MONGODB_URI || undefined,
  /** Where embedded data outlives the process; an empty DATA_DIR keeps it in memory. */
  dataDir: process.env.DATA_DIR ?? '.data',
}));
