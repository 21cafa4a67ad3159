import { ConfigModule, registerAs } from '@nestjs/config';
import { loadConfiguration } from './configuration.js';
import { validateEnvironment } from './env.validation.js';

// One namespace per concern, each a slice of the same validated configuration. Inject with
// `@Inject(relationConfig.KEY) config: ConfigType<typeof relationConfig>`.
export const httpConfig = registerAs('http', () => loadConfiguration().http);
export const databaseConfig = registerAs('database', () => loadConfiguration().database);
export const relationConfig = registerAs('relation', () => loadConfiguration().relation);
export const securityConfig = registerAs('security', () => loadConfiguration().security);
export const metricsConfig = registerAs('metrics', () => loadConfiguration().metrics);
export const loggingConfig = registerAs('logging', () => loadConfiguration().logging);

/** The validated configuration, shared by the service and the integrity command. */
export const AppConfigModule = ConfigModule.forRoot({
  isGlobal: true,
  load: [httpConfig, databaseConfig, relationConfig, securityConfig, metricsConfig, loggingConfig],
  validate: validateEnvironment,
});
