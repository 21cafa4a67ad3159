import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';

export function createAdapter(): FastifyAdapter {
  return new FastifyAdapter();
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
