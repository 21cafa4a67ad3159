// Runs in every test file before it imports anything: one database per Jest worker, so test
// files in parallel workers never clear each other's collections.
const base = new URL(process.env.TEST_MONGODB_URI!);
base.pathname = `/refmany_test_${process.env.JEST_WORKER_ID ?? '1'}`;
process.env.MONGODB_URI = base.toString();
