import { Module } from '@nestjs/common';
import { MongooseModule } from '@nestjs/mongoose';
import { Account, AccountSchema } from '../accounts/schemas/account.schema.js';
import { AppConfigModule } from '../config/config.module.js';
import { DatabaseModule } from '../database/database.module.js';
import { Device, DeviceSchema } from '../devices/schemas/device.schema.js';
import { ACCOUNT_DEVICES } from '../accounts/account-devices.relation.js';
import { ReferencesManyModule } from '../relations/references-many.module.js';
import { IntegrityService } from './integrity.service.js';

/** What the integrity command needs: configuration, the database, the two models and their relation. */
@Module({
  imports: [
    AppConfigModule,
    DatabaseModule,
    MongooseModule.forFeature([
      { name: Device.name, schema: DeviceSchema },
      { name: Account.name, schema: AccountSchema },
    ]),
    ReferencesManyModule.register(ACCOUNT_DEVICES),
  ],
  providers: [IntegrityService],
  exports: [IntegrityService],
})
export class IntegrityModule {}
