import { Controller, Get, Inject, ServiceUnavailableException } from '@nestjs/common';
import { type ConfigType } from '@nestjs/config';
import { InjectConnection } from '@nestjs/mongoose';
import { ApiTags } from '@nestjs/swagger';
import { HealthCheckService, MongooseHealthIndicator } from '@nestjs/terminus';
import { type Connection } from 'mongoose';
import { ApiErrors } from '../common/decorators/api-errors.decorator.js';
import { Public } from '../common/decorators/public.decorator.js';
import { Responds } from '../common/decorators/responds.decorator.js';
import { fieldError } from '../common/openapi/error-example.js';
import { databaseConfig } from '../config/config.module.js';
import { type DatabaseEngine } from '../database/database-engine.js';
import { DATABASE_ENGINE } from '../database/database.module.js';
import { LivenessDto, ReadinessDto } from './dto/health.dto.js';

const DATABASE_DOWN = fieldError(503, 'databaseDown', 'database', 'down', 'The database (mongo-java-server) does not answer');

/** Health checks for orchestrators: open without an API key and never rate limited. */
@ApiTags('health')
@Public()
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly mongoose: MongooseHealthIndicator,
    @Inject(DATABASE_ENGINE) private readonly engine: DatabaseEngine,
    @InjectConnection() private readonly connection: Connection,
    @Inject(databaseConfig.KEY) private readonly database: ConfigType<typeof databaseConfig>,
  ) {}

  /** Liveness: the process answers. It does not look at the database. */
  @Get()
  @Responds(200, 'The process is alive')
  checkLiveness(): LivenessDto {
    return { status: 'ok' };
  }

  /** Readiness: the database answers a ping; names the engine and its version. 503 while it does not. */
  @Get('ready')
  @Responds(200, 'The database answers; which engine it is')
  @ApiErrors(DATABASE_DOWN)
  async checkReadiness(): Promise<ReadinessDto> {
    try {
      await this.health.check([() => this.mongoose.pingCheck('database').withTimeout(this.database.timeoutMs)]);
      const { version } = await this.connection.db!.admin().serverInfo();
      return { status: 'ok', database: { status: 'up', engine: this.engine.name, version: String(version) } };
    } catch {
      const message = `The database (${this.engine.name}) does not answer`;
      throw new ServiceUnavailableException({ message, details: [{ path: 'database', code: 'down', message }] });
    }
  }
}
