// The catalog scenario of tests/clients_e2e_test.cc through Node's @grpc/grpc-js, with the service
// loaded from the .proto files by @grpc/proto-loader (how grpc-js users build their stubs).
//
// usage: node catalog_client.mjs HOST:PORT NAME PROTO_DIR GOOGLEAPIS_DIR PROTOBUF_INCLUDE_DIR
// Items get skus NAME-1.. and category NAME, so that clients of several languages can share one
// database.
// Prints one line per step; the test compares them with the other languages' lines.
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';

const [address, name, protoDir, googleapisDir, protobufDir] = process.argv.slice(2);
const includeDirs = [protoDir, googleapisDir, protobufDir];
const options = { includeDirs, longs: String, defaults: true, keepCase: true };
const loaded = grpc.loadPackageDefinition(
  protoLoader.loadSync(['hotpath/catalog/v1/catalog.proto'], options));
const Catalog = loaded.hotpath.catalog.v1.CatalogService;
const stub = new Catalog(address, grpc.credentials.createInsecure());
const gzipStub = new Catalog(address, grpc.credentials.createInsecure(),
  { 'grpc.default_compression_algorithm': 2 }); // gzip
const codeName = (code) => Object.keys(grpc.status).find((name) => grpc.status[name] === code);

// grpc-status-details-bin is a google.rpc.Status; its Any details decode with protobufjs.
const root = new protobuf.Root();
root.resolvePath = (origin, target) => {
  for (const dir of includeDirs) {
    const candidate = `${dir}/${target}`;
    try { if (protobuf.util.fs.statSync(candidate).isFile()) return candidate; } catch {}
  }
  return target;
};
root.loadSync(['google/rpc/status.proto', 'google/rpc/error_details.proto'], { keepCase: true });
const RpcStatus = root.lookupType('google.rpc.Status');
const BadRequest = root.lookupType('google.rpc.BadRequest');

const deadline = () => ({ deadline: Date.now() + 10000 });
const item = (n) => ({ sku: `${name}-${n}`, name: 'Anvil', description: 'a heavy one',
  category: name, price_cents: 1999, stock: 3, tags: ['heavy', 'iron'] });

// A unary call: { response, error, metadata (initial), trailers }.
function unary(client, method, request) {
  return new Promise((resolve) => {
    const result = {};
    const call = client[method](request, new grpc.Metadata(), deadline(), (error, response) => {
      Object.assign(result, { error, response });
    });
    call.on('metadata', (metadata) => { result.metadata = metadata; });
    call.on('status', (status) => { result.trailers = status.metadata; resolve(result); });
  });
}

function violations(error) {
  const [details] = error.metadata.get('grpc-status-details-bin');
  if (!details) return 'none';
  for (const any of RpcStatus.decode(details).details) {
    if (any.type_url.endsWith('/google.rpc.BadRequest')) {
      return BadRequest.decode(any.value).field_violations.map((v) => v.field).sort().join(',');
    }
  }
  return 'none';
}
const yes = (b) => (b ? 'yes' : 'no');
const has = (metadata, key) => yes(metadata && metadata.get(key).length > 0);

const created = await unary(stub, 'CreateItem', { item: item(1) });
const c = created.response;
console.log(`create OK etag=${c.etag} sku=${c.sku.split('-')[1]} tags=${c.tags.join(',')} ` +
  `create_time=${yes(Number(c.create_time.seconds) > 0)} ` +
  `x-process-time=${has(created.metadata, 'x-process-time')}`);

const got = await unary(stub, 'GetItem', { id: c.id });
console.log(`get OK same=${yes(JSON.stringify(got.response) === JSON.stringify(c))} ` +
  `x-process-time=${has(got.trailers, 'x-process-time')}`);

const missingId = String(BigInt(c.id) + 1000000n);
const missing = await unary(stub, 'GetItem', { id: missingId });
console.log(`get_missing ${codeName(missing.error.code)} ` +
  `names_id=${yes(missing.error.details.includes(missingId))}`);

const invalid = await unary(stub, 'CreateItem', { item: { price_cents: -1 } });
console.log(`create_invalid ${codeName(invalid.error.code)} ` +
  `violations=${violations(invalid.error)}`);

const stale = await unary(stub, 'UpdateItem',
  { item: { id: c.id, stock: 5, etag: '7' }, update_mask: { paths: ['stock'] } });
console.log(`update_stale ${stale.error ? codeName(stale.error.code) : 'OK'}`);
const updated = (await unary(stub, 'UpdateItem',
  { item: { id: c.id, stock: 5, etag: c.etag }, update_mask: { paths: ['stock'] } })).response;
console.log(`update OK etag=${updated.etag} stock=${updated.stock} name=${updated.name}`);

const imported = await new Promise((resolve, reject) => {
  const call = stub.ImportItems(new grpc.Metadata(), deadline(),
    (error, response) => (error ? reject(error) : resolve(response)));
  for (const n of [2, 3, 4]) call.write({ item: item(n) });
  call.end();
});
console.log(`import OK imported=${imported.imported_count}`);

const page = (await unary(stub, 'ListItems', { page_size: 3, category: name })).response;
const rest = (await unary(stub, 'ListItems',
  { page_size: 3, category: name, page_token: page.next_page_token })).response;
console.log(`list OK first=${page.items.length} second=${rest.items.length} ` +
  `last_token=${rest.next_page_token ? 'set' : 'empty'}`);

const ids = await new Promise((resolve, reject) => {
  const seen = [];
  const call = stub.ExportItems({ category: name }, new grpc.Metadata(), deadline());
  call.on('data', (i) => seen.push(BigInt(i.id)));
  call.on('error', reject);
  call.on('end', () => resolve(seen));
});
const sorted = [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
const inOrder = ids.every((id, i) => id === sorted[i]);
console.log(`export OK items=${ids.length} in_order=${yes(inOrder)}`);

const zipped = (await unary(gzipStub, 'GetItem', { id: c.id })).response;
console.log(`gzip OK stock=${zipped.stock}`);
stub.close();
gzipStub.close();
