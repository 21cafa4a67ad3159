export class LivenessDto {
  /** @example "ok" */
  status: 'ok';
}

export class DatabaseHealthDto {
  /** @example "up" */
  status: 'up';

  /** Which database the service resolved at start-up. @example "mongo-java-server" */
  engine: string;

  /** The version the database reports. @example "7.0.0" */
  version: string;
}

export class ReadinessDto {
  /** @example "ok" */
  status: 'ok';

  database: DatabaseHealthDto;
}
