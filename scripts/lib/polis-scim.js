// BoxyHQ Polis (@boxyhq/saml-jackson) directory sync as a plain SCIM 2.0 server, for
// scripts/bench-peers: the same routing Polis's own app does in front of the library
// (`/api/scim/v2.0/<directory>/<Users|Groups>[/<id>]`), on PostgreSQL, without Next.js.
//
// Environment: POLIS_MODULES (the node_modules folder holding @boxyhq/saml-jackson),
// POLIS_DB_URL (postgres://...), POLIS_PORT. Prints one JSON line
// {"base": "...", "token": "..."} once it listens.
const http = require('http');
const path = require('path');

const jacksonModule = require(path.join(process.env.POLIS_MODULES, '@boxyhq/saml-jackson'));
const jackson = jacksonModule.default || jacksonModule;
const port = Number(process.env.POLIS_PORT);

async function main() {
  const { directorySyncController: dsync } = await jackson({
    externalUrl: `http://127.0.0.1:${port}`,
    samlPath: '/api/oauth/saml',
    scimPath: '/api/scim/v2.0',
    db: { engine: 'sql', type: 'postgres', url: process.env.POLIS_DB_URL },
    noAnalytics: true,
  });
  const created = await dsync.directories.create({
    name: 'bench',
    tenant: 'bench',
    product: 'bench',
    type: 'generic-scim-v2',
  });
  if (created.error) throw new Error(JSON.stringify(created.error));
  const directory = created.data;

  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      try {
        const url = new URL(req.url, `http://127.0.0.1:${port}`);
        const parts = url.pathname.split('/').filter(Boolean); // api scim v2.0 <dir> <type> [id]
        const [directoryId, resourceType, resourceId] = parts.slice(3);
        const text = Buffer.concat(chunks).toString('utf8');
        const auth = req.headers.authorization || '';
        const query = {};
        for (const key of ['count', 'startIndex']) {
          if (url.searchParams.has(key)) query[key] = Number(url.searchParams.get(key));
        }
        if (url.searchParams.has('filter')) query.filter = url.searchParams.get('filter');
        const { status, data } = await dsync.requests.handle({
          method: req.method,
          body: text ? JSON.parse(text) : undefined,
          directoryId,
          resourceType: resourceType || '',
          resourceId,
          apiSecret: auth.startsWith('Bearer ') ? auth.slice(7) : null,
          query,
        });
        const body = data === undefined || status === 204 ? '' : JSON.stringify(data);
        res.writeHead(status, body ? { 'content-type': 'application/scim+json' } : {});
        res.end(body);
      } catch (e) {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(String(e && e.stack ? e.stack : e));
      }
    });
  });
  server.keepAliveTimeout = 60000;
  server.listen(port, '127.0.0.1', () => {
    const base = `http://127.0.0.1:${port}/api/scim/v2.0/${directory.id}`;
    process.stdout.write(JSON.stringify({ base, token: directory.scim.secret }) + '\n');
  });
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e) + '\n');
  process.exit(1);
});
