/**
 * The textbook: NestJS on Express with Mongoose as the tutorials write it: hydrated
 * documents (no lean), populate for the relation, $addToSet/$pull through the model.
 * Providers are injected by explicit token, as tsx emits no decorator metadata.
 * Env: MONGODB_URI, PORT.
 */
import 'reflect-metadata';
import { Controller, Delete, Get, HttpCode, Inject, Injectable, Module, NotFoundException, Param, Put, Query, Res } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { InjectModel, MongooseModule } from '@nestjs/mongoose';
import { ExpressAdapter } from '@nestjs/platform-express';
import { type Model, Schema, type Types } from 'mongoose';

type Response = { setHeader(name: string, value: number): void };
interface Device {
  myId: string;
  deviceUID: string;
}
interface Account {
  name: string;
  deviceIds: Types.ObjectId[];
}
const DeviceSchema = new Schema<Device>(
  { myId: { type: String, required: true, unique: true }, deviceUID: { type: String, required: true, unique: true } },
  { timestamps: true, versionKey: false },
);
const AccountSchema = new Schema<Account>(
  { name: { type: String, required: true }, deviceIds: [{ type: Schema.Types.ObjectId, ref: 'Device', index: true }] },
  { timestamps: true, versionKey: false },
);

@Injectable()
class RelationService {
  constructor(
    @InjectModel('Account') private readonly accounts: Model<Account>,
    @InjectModel('Device') private readonly devices: Model<Device>,
  ) {}

  async account(id: string, include?: string) {
    const account = await (include === 'devices' ? this.accounts.findById(id).populate('deviceIds') : this.accounts.findById(id));
    if (!account) throw new NotFoundException();
    return account;
  }

  async devicePage(id: string, filter = '{}') {
    const { skip = 0, limit = 100 } = JSON.parse(filter) as { skip?: number; limit?: number };
    const account = await this.accounts.findById(id);
    if (!account) throw new NotFoundException();
    const ids = account.deviceIds.slice(skip, skip + limit);
    const devices = await this.devices.find({ _id: { $in: ids } });
    return { total: account.deviceIds.length, items: ids.map((deviceId) => devices.find((device) => device._id.equals(deviceId))) };
  }

  async link(id: string, fk: string) {
    const device = await this.devices.findById(fk);
    if (!device) throw new NotFoundException();
    const { matchedCount } = await this.accounts.updateOne({ _id: id }, { $addToSet: { deviceIds: device._id } });
    if (!matchedCount) throw new NotFoundException();
    return device;
  }

  async unlink(id: string, fk: string) {
    const { matchedCount } = await this.accounts.updateOne({ _id: id, deviceIds: fk }, { $pull: { deviceIds: fk } });
    if (!matchedCount) throw new NotFoundException();
  }

  // deleteOne, not the textbook's findByIdAndDelete, which crashes FerretDB 2.7's PostgreSQL
  // backend when two run at once.
  async removeDevice(id: string) {
    if (!(await this.devices.deleteOne({ _id: id })).deletedCount) throw new NotFoundException();
    await this.accounts.updateMany({ deviceIds: id }, { $pull: { deviceIds: id } });
    return { count: 1 };
  }

  async accountsOf(id: string) {
    if (!(await this.devices.exists({ _id: id }))) throw new NotFoundException();
    const [items, total] = await Promise.all([
      this.accounts.find({ deviceIds: id }).sort({ _id: 1 }).limit(100),
      this.accounts.countDocuments({ deviceIds: id }),
    ]);
    return { items, total };
  }
}

@Controller('api')
class RelationController {
  constructor(@Inject(RelationService) private readonly relation: RelationService) {}

  @Get('accounts/:id')
  account(@Param('id') id: string, @Query('include') include?: string) {
    return this.relation.account(id, include);
  }

  @Get('accounts/:id/devices')
  async devices(@Param('id') id: string, @Query('filter') filter: string | undefined, @Res({ passthrough: true }) response: Response) {
    const page = await this.relation.devicePage(id, filter);
    response.setHeader('X-Total-Count', page.total);
    return page.items;
  }

  @Put('accounts/:id/devices/rel/:fk')
  link(@Param('id') id: string, @Param('fk') fk: string) {
    return this.relation.link(id, fk);
  }

  @Delete('accounts/:id/devices/rel/:fk')
  @HttpCode(204)
  unlink(@Param('id') id: string, @Param('fk') fk: string) {
    return this.relation.unlink(id, fk);
  }

  @Delete('devices/:id')
  removeDevice(@Param('id') id: string) {
    return this.relation.removeDevice(id);
  }

  @Get('devices/:id/accounts')
  async accountsOf(@Param('id') id: string, @Res({ passthrough: true }) response: Response) {
    const page = await this.relation.accountsOf(id);
    response.setHeader('X-Total-Count', page.total);
    return page.items;
  }
}

@Module({
  imports: [
    MongooseModule.forRoot(process.env.MONGODB_URI!),
    MongooseModule.forFeature([
      { name: 'Account', schema: AccountSchema },
      { name: 'Device', schema: DeviceSchema },
    ]),
  ],
  controllers: [RelationController],
  providers: [RelationService],
})
class AppModule {}

const app = await NestFactory.create(AppModule, new ExpressAdapter());
await app.listen(Number(process.env.PORT), '127.0.0.1');
