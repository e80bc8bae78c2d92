// Drives smooch-core (Smooch's official JavaScript SDK) against the gateway, unchanged but for
// its serviceUrl and credentials: it signs its own HS256 JWT with the key id and secret.
// argv[2]: JSON {serviceUrl, keyId, secret, steps: [[method, args], ...]} where method is one
// of update, get, delete (smooch.appUsers.<method>(...args)).
// Prints JSON [result of each step]: {ok: <answer>} or {error: {status, code, description}}.
const Smooch = require('smooch-core');

async function main() {
  const config = JSON.parse(process.argv[2]);
  const smooch = new Smooch({
    keyId: config.keyId,
    secret: config.secret,
    scope: 'app',
    serviceUrl: config.serviceUrl,
  });
  const results = [];
  for (const [method, args] of config.steps) {
    try {
      const answer = await smooch.appUsers[method](...args);
      results.push({ ok: answer === undefined ? null : answer });
    } catch (err) {
      results.push({
        error: {
          status: err.response ? err.response.status : null,
          code: err.code === undefined ? null : err.code,
          description: err.description === undefined ? null : err.description,
        },
      });
    }
  }
  process.stdout.write(JSON.stringify(results));
}

main().catch((err) => {
  process.stderr.write(String((err && err.stack) || err));
  process.exit(1);
});
