import { Module } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, APP_PIPE } from '@nestjs/core';
import { AccountsModule } from './accounts/accounts.module.js';
import { AllExceptionsFilter } from './common/filters/all-exceptions.filter.js';
import { ApiKeyGuard } from './common/guards/api-key.guard.js';
import { BodyValidationPipe } from './common/pipes/body-validation.pipe.js';
import { validationExceptionFactory } from './common/pipes/validation-exception.factory.js';
import { AppConfigModule } from './config/config.module.js';
import { DatabaseModule } from './database/database.module.js';
import { DevicesModule } from './devices/devices.module.js';
import { HealthModule } from './health/health.module.js';
import { MetricsModule } from './metrics/metrics.module.js';

@Module({
  imports: [AppConfigModule, DatabaseModule, HealthModule, MetricsModule, DevicesModule, AccountsModule],
  providers: [
    {
      provide: APP_PIPE,
      useValue: new BodyValidationPipe({
        whitelist: true,
        forbidNonWhitelisted: true,
        transform: true,
        exceptionFactory: validationExceptionFactory,
      }),
    },
    { provide: APP_FILTER, useClass: AllExceptionsFilter },
    // The rate limit comes before this guard, as a Fastify hook (see common/http/rate-limit.ts).
    { provide: APP_GUARD, useClass: ApiKeyGuard },
  ],
})
export class AppModule {}
