import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { type ConfigType } from '@nestjs/config';
import { HttpAdapterHost } from '@nestjs/core';
import { InjectConnection } from '@nestjs/mongoose';
import { type FastifyInstance } from 'fastify';
import { type Connection, type mongo } from 'mongoose';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { metricsConfig } from '../config/config.module.js';

/** Requests that matched no route share one label value instead of one per raw URL. */
const UNMATCHED_ROUTE = '(unmatched)';

/** From a millisecond to half a minute (REQUEST_TIMEOUT_MS's default). */
const HTTP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** From a tenth of a millisecond to DB_TIMEOUT_MS's default. */
const DATABASE_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

interface PoolState {
  /** Ids of the connections open to the server. */
  open: Set<number | '<monitor>'>;
  /** Ids of those in use by an operation. */
  checkedOut: Set<number | '<monitor>'>;
  waiting: number;
}

interface StartedCommand {
  name: string;
  collection: string;
  /** performance.now() when the driver sent it: the driver's own `duration` is in whole milliseconds. */
  sentAt: number;
}

/**
 * Prometheus metrics of this instance, in a registry of its own: requests by route pattern,
 * method and status with their durations; the MongoDB driver's command durations by command and
 * collection; the connection pool's use; and Node's process metrics. Nothing is collected when
 * METRICS is off.
 *
 * The hot path does as little as it can: one counter and one histogram update per request and
 * per database command; pool gauges are plain counts read only when /metrics is scraped.
 */
@Injectable()
export class MetricsService implements OnModuleInit {
  private readonly enabled: boolean;
  private readonly registry = new Registry();
  private readonly pools = new Map<string, PoolState>();
  private readonly commands = new Map<number, StartedCommand>();

  constructor(
    @Inject(metricsConfig.KEY) config: ConfigType<typeof metricsConfig>,
    private readonly adapterHost: HttpAdapterHost,
    @InjectConnection() private readonly connection: Connection,
  ) {
    this.enabled = config.mode !== 'off';
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  onModuleInit(): void {
    if (!this.enabled) return;
    collectDefaultMetrics({ register: this.registry });
    this.instrumentRequests(this.adapterHost.httpAdapter.getInstance<FastifyInstance>());
    this.instrumentDatabase(this.connection.getClient());
  }

  /** The exposition text; an empty registry when metrics are off. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  private instrumentRequests(fastify: FastifyInstance): void {
    const labelNames = ['method', 'route', 'status_code'] as const;
    const requests = new Counter({
      name: 'http_requests_total',
      help: 'HTTP requests answered, by method, route pattern and status code',
      labelNames,
      registers: [this.registry],
    });
    const durations = new Histogram({
      name: 'http_request_duration_seconds',
      help: 'Time from receiving an HTTP request to finishing its answer, by method, route pattern and status code',
      labelNames,
      buckets: HTTP_BUCKETS,
      registers: [this.registry],
    });
    fastify.addHook('onResponse', (request, reply, done) => {
      const labels = { method: request.method, route: request.routeOptions.url ?? UNMATCHED_ROUTE, status_code: reply.statusCode };
      requests.inc(labels);
      durations.observe(labels, reply.elapsedTime / 1000);
      done();
    });
  }

  /**
   * Command durations from the driver's command monitoring (the connection is opened with
   * `monitorCommands` while metrics are on); pool use from its connection-pool (CMAP) events,
   * which the driver always emits.
   */
  private instrumentDatabase(client: mongo.MongoClient): void {
    const durations = new Histogram({
      name: 'mongodb_command_duration_seconds',
      help: 'Time the MongoDB driver waited for a command, by command name, collection and outcome (failure: an error or write errors)',
      labelNames: ['command', 'collection', 'outcome'] as const,
      buckets: DATABASE_BUCKETS,
      registers: [this.registry],
    });
    client.on('commandStarted', (event) => {
      const target = event.command[event.commandName] as unknown;
      // getMore names its collection apart; database-wide commands (`aggregate: 1`, ping) have none.
      const collection = event.commandName === 'getMore' ? event.command.collection : target;
      this.commands.set(event.requestId, {
        name: event.commandName,
        collection: typeof collection === 'string' ? collection : '',
        sentAt: performance.now(),
      });
    });
    const finished = (event: mongo.CommandSucceededEvent | mongo.CommandFailedEvent, outcome: 'success' | 'failure') => {
      const started = this.commands.get(event.requestId);
      if (!started) return; // sent before the listeners were attached, during start-up
      this.commands.delete(event.requestId);
      durations.observe({ command: started.name, collection: started.collection, outcome }, (performance.now() - started.sentAt) / 1000);
    };
    // A write the server refused (a duplicate key, a failed validation) still answers ok: 1.
    client.on('commandSucceeded', (event) => {
      const reply = event.reply as { writeErrors?: unknown; writeConcernError?: unknown } | undefined;
      finished(event, reply?.writeErrors || reply?.writeConcernError ? 'failure' : 'success');
    });
    client.on('commandFailed', (event) => finished(event, 'failure'));

    // Tracked by connection id, not by counting, because the pool opened its first connection
    // before these listeners could be attached: a connection is known from its first event on.
    const pool = (address: string): PoolState => {
      let state = this.pools.get(address);
      if (!state) this.pools.set(address, (state = { open: new Set(), checkedOut: new Set(), waiting: 0 }));
      return state;
    };
    client.on('connectionCreated', (event) => void pool(event.address).open.add(event.connectionId));
    client.on('connectionClosed', (event) => {
      const state = pool(event.address);
      state.open.delete(event.connectionId);
      state.checkedOut.delete(event.connectionId);
    });
    client.on('connectionCheckOutStarted', (event) => void (pool(event.address).waiting += 1));
    client.on('connectionCheckOutFailed', (event) => void (pool(event.address).waiting -= 1));
    client.on('connectionCheckedOut', (event) => {
      const state = pool(event.address);
      state.waiting -= 1;
      state.open.add(event.connectionId);
      state.checkedOut.add(event.connectionId);
    });
    client.on('connectionCheckedIn', (event) => {
      const state = pool(event.address);
      state.open.add(event.connectionId);
      state.checkedOut.delete(event.connectionId);
    });

    const checkoutFailures = new Counter({
      name: 'mongodb_pool_checkout_failures_total',
      help: 'Requests for a pooled connection that failed, by server and reason',
      labelNames: ['server', 'reason'] as const,
      registers: [this.registry],
    });
    client.on('connectionCheckOutFailed', (event) => checkoutFailures.inc({ server: event.address, reason: String(event.reason) }));

    const pools = this.pools;
    const poolGauge = (name: string, help: string, read: (state: PoolState) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['server'] as const,
        registers: [this.registry],
        collect() {
          for (const [server, state] of pools) this.set({ server }, Math.max(0, read(state)));
        },
      });
    poolGauge('mongodb_pool_connections', 'Connections open in the pool, by server', (state) => state.open.size);
    poolGauge('mongodb_pool_connections_checked_out', 'Connections in use by an operation, by server', (state) => state.checkedOut.size);
    poolGauge(
      'mongodb_pool_connections_available',
      'Open connections not in use, by server',
      (state) => state.open.size - state.checkedOut.size,
    );
    poolGauge('mongodb_pool_checkouts_waiting', 'Operations waiting for a connection, by server', (state) => state.waiting);
    new Gauge({
      name: 'mongodb_pool_max_size',
      help: 'The most connections the pool may open to each server',
      registers: [this.registry],
    }).set(client.options.maxPoolSize);
  }
}
