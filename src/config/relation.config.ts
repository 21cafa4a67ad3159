import { registerAs } from '@nestjs/config';

export const relationConfig = registerAs('relation', () => ({
  maxDevicesPerAccount: Number(process.env.MAX_DEVICES_PER_ACCOUNT ?? 10000),
}));
