import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import qs from 'qs';
import { FILTER_LIMITS } from './common/filter/filter.limits.js';

export function createAdapter(): FastifyAdapter {
  return new FastifyAdapter({
    // HEAD is answered where DESIGN.md lists it, by routes of its own; automatic HEAD
    // siblings of every GET would collide with them.
    exposeHeadRoutes: false,
    routerOptions: {
      // LoopBack's bracket form (?filter[where][name]=a) needs a nesting query-string parser.
      // Past `depth` qs keeps the rest of the key as one literal key, which the filter parser
      // then refuses as unknown; arrays are kept as arrays up to the `inq` limit.
      querystringParser: (query) =>
        qs.parse(query, { depth: FILTER_LIMITS.maxDepth + 2, arrayLimit: FILTER_LIMITS.maxValues, parameterLimit: 4 * FILTER_LIMITS.maxValues }),
      // Long enough for a 128-character myId, so an over-long one reaches validation (400)
      // instead of the router (404).
      maxParamLength: 512,
    },
  });
}

/** What main.ts and the e2e tests both apply to the application. */
export function configureApp(app: NestFastifyApplication): NestFastifyApplication {
  app.setGlobalPrefix('api');
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('refmany')
      .setDescription(
        'Accounts that reference many Devices. Wherever a device id is taken, its ObjectId or its myId will do; references are stored as ObjectIds and removed from every account when the device is deleted.',
      )
      .setVersion('0.1.0')
      .build(),
  );
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'docs-json' });
  return app;
}
