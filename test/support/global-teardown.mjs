export default async function globalTeardown() {
  await globalThis.__DATABASE_ENGINE__?.stop();
}
