import { Module } from '@nestjs/common';
import { MongooseModule } from '@nestjs/mongoose';
import { DevicesModule } from '../devices/devices.module.js';
import { ReferencesManyModule } from '../relations/references-many.module.js';
import { ACCOUNT_DEVICES } from './account-devices.relation.js';
import { AccountDevicesController } from './account-devices.controller.js';
import { AccountsController } from './accounts.controller.js';
import { AccountsService } from './accounts.service.js';
import { DeviceAccountsController } from './device-accounts.controller.js';
import { Account, AccountSchema } from './schemas/account.schema.js';

@Module({
  imports: [
    MongooseModule.forFeature([{ name: Account.name, schema: AccountSchema }]),
    DevicesModule,
    ReferencesManyModule.register(ACCOUNT_DEVICES),
  ],
  controllers: [AccountsController, AccountDevicesController, DeviceAccountsController],
  providers: [AccountsService],
})
export class AccountsModule {}
