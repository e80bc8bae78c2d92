// Drives @segment/analytics-node against the gateway, unchanged but for its host and path.
// argv[2]: JSON {host, path, writeKey, calls: [[method, params], ...]}.
// Prints JSON {statuses: [HTTP status of each request], errors: [message]}.
const { Analytics } = require('@segment/analytics-node');

async function main() {
  const config = JSON.parse(process.argv[2]);
  const analytics = new Analytics({
    writeKey: config.writeKey,
    host: config.host,
    path: config.path,
    flushInterval: 60000, // one batch, sent by closeAndFlush
    maxEventsInBatch: 100,
    maxRetries: 1,
  });
  const statuses = [];
  const errors = [];
  analytics.on('http_response', (response) => statuses.push(response.status));
  analytics.on('error', (err) => errors.push(String((err && err.reason) || err)));
  for (const [method, params] of config.calls) {
    analytics[method](params);
  }
  await analytics.closeAndFlush({ timeout: 20000 });
  process.stdout.write(JSON.stringify({ statuses, errors }));
}

main().catch((err) => {
  process.stderr.write(String((err && err.stack) || err));
  process.exit(1);
});
