import { ConfigModule } from '@nestjs/config';
import { appConfig } from './app.config.js';
import { databaseConfig } from './database.config.js';
import { validateEnvironment } from './env.validation.js';
import { relationConfig } from './relation.config.js';

/** The validated configuration, shared by the service and the integrity command. */
export const AppConfigModule = ConfigModule.forRoot({
  isGlobal: true,
  load: [appConfig, databaseConfig, relationConfig],
  validate: validateEnvironment,
});
