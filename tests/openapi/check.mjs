// node check.mjs BASE_URL: what a client generated from hotpath's OpenAPI documents would meet.
//
// 1. /openapi3.json (OpenAPI 3.0) and /openapi.json (Swagger 2.0) pass a real validator
//    (@apidevtools/swagger-parser: the specifications' JSON schemas and every $ref resolved).
// 2. Every operation the OpenAPI 3 document names is called as it documents it: parameters by
//    their documented names, in their documented places and forms (a repeated query parameter
//    repeated), bodies of the documented schema. Each answer must be documented (its status or
//    "default", its media type, its headers) and its body must validate against the documented
//    schema (ajv); NDJSON streams line by line. An operation without a sample here fails the
//    check, so a route added without a look at its document does not pass silently.
//
// The samples below are the catalog's: the server must hold the demo items (seeded by the test).
// Exit status 0 when everything holds; every failure is printed.
import SwaggerParser from "@apidevtools/swagger-parser";
import Ajv from "ajv";

const base = process.argv[2];
const failures = [];
const fail = (what) => failures.push(what);

async function fetchJson(path) {
  const r = await fetch(base + path);
  if (r.status !== 200) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
}

// 1. Both documents are valid.
const v3 = await fetchJson("/openapi3.json");
const v2 = await fetchJson("/openapi.json");
for (const [name, doc] of [["/openapi3.json", v3], ["/openapi.json", v2]]) {
  try {
    await SwaggerParser.validate(structuredClone(doc));
  } catch (e) {
    fail(`${name} is not a valid document: ${e.message}`);
  }
}
if (v3.openapi !== "3.0.3") fail(`/openapi3.json says openapi ${v3.openapi}`);
if (v2.swagger !== "2.0") fail(`/openapi.json says swagger ${v2.swagger}`);
// The same operations in both.
const operationsOf = (doc) =>
  Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m} ${path}`)).sort();
if (JSON.stringify(operationsOf(v3)) !== JSON.stringify(operationsOf(v2))) {
  fail(`the documents name different operations: ${operationsOf(v3)} / ${operationsOf(v2)}`);
}

// 2. Every operation, called as documented.
const api = await SwaggerParser.dereference(structuredClone(v3));
const ajv = new Ajv({ strict: false, validateFormats: false, allErrors: true });

const created = {};  // what CreateItem answered, for the operations after it
// Per operationId: values of its parameters by documented name, its body, and the statuses that
// are expected (the call is valid, so a success).
const samples = {
  CreateItem: () => ({
    body: { sku: "OPENAPI-1", name: "From the document", category: "openapi",
            priceCents: "1234", stock: 5, tags: ["documented"] },
  }),
  GetItem: () => ({ params: { id: created.id } }),
  BatchGetItems: () => ({ params: { ids: [created.id, "1"] } }),
  ListItems: () => ({
    params: { category: "openapi", minPriceCents: "0", maxPriceCents: "100000", pageSize: 10,
              orderBy: "id" },
  }),
  UpdateItem: () => ({
    params: { "item.id": created.id, updateMask: "stock", "If-Match": created.etagHeader },
    body: { stock: 7 },
  }),
  SearchItems: () => ({ params: { query: "document", pageSize: 5 } }),
  GetCategoryStats: () => ({ params: { category: "openapi" } }),
  ExportItems: () => ({ params: { category: "openapi", minPriceCents: "0" } }),
  DeleteItem: () => ({ params: { id: created.id } }),
};
// Writes that others depend on first, the delete last.
const order = (op) => (op.operationId === "CreateItem" ? 0 : op.operationId === "DeleteItem" ? 2 : 1);

const operations = Object.entries(api.paths)
  .flatMap(([path, ops]) => Object.entries(ops).map(([method, op]) => ({ path, method, op })))
  .sort((a, b) => order(a.op) - order(b.op));

function check(schema, value, what) {
  const validate = ajv.compile(schema);
  if (!validate(value)) fail(`${what}: ${ajv.errorsText(validate.errors)} in ${JSON.stringify(value)}`);
}

for (const { path, method, op } of operations) {
  const id = op.operationId;
  const sample = samples[id]?.();
  if (!sample) {
    fail(`${method.toUpperCase()} ${path} (${id}) has no sample in check.mjs`);
    continue;
  }
  const values = sample.params ?? {};
  let target = path;
  const query = new URLSearchParams();
  const headers = { "X-Request-Id": `openapi-${id}` };
  for (const parameter of op.parameters ?? []) {
    const value = values[parameter.name];
    if (parameter.in === "path") {
      if (value === undefined) fail(`${id}: no value for path parameter ${parameter.name}`);
      target = target.replace(`{${parameter.name}}`, encodeURIComponent(value));
    } else if (parameter.in === "query" && value !== undefined) {
      // form style: an array explodes into the parameter repeated.
      for (const v of Array.isArray(value) ? value : [value]) query.append(parameter.name, String(v));
    } else if (parameter.in === "header" && value !== undefined) {
      headers[parameter.name] = value;
    }
  }
  // Every value given must be a documented parameter (a sample cannot use an undocumented name).
  for (const name of Object.keys(values)) {
    if (!(op.parameters ?? []).some((p) => p.name === name)) {
      fail(`${id}: sample parameter ${name} is not documented`);
    }
  }
  const init = { method: method.toUpperCase(), headers };
  if (sample.body !== undefined) {
    const media = op.requestBody?.content?.["application/json"];
    if (!media) {
      fail(`${id}: a body is sent but none is documented`);
    } else {
      check(media.schema, sample.body, `${id} request body`);
    }
    init.body = JSON.stringify(sample.body);
    headers["Content-Type"] = "application/json";
  }
  const url = `${base}${target}${query.size ? "?" + query : ""}`;
  const r = await fetch(url, init);
  const text = await r.text();
  const answer = op.responses[String(r.status)] ?? op.responses.default;
  if (r.status !== 200) fail(`${id}: ${init.method} ${url} answered ${r.status}: ${text.slice(0, 300)}`);
  if (!answer) {
    fail(`${id}: status ${r.status} is not documented`);
    continue;
  }
  const type = (r.headers.get("content-type") ?? "").split(";")[0];
  const media = answer.content?.[type];
  if (!media) {
    fail(`${id}: answered ${type}, documented ${Object.keys(answer.content ?? {})}`);
    continue;
  }
  for (const header of Object.keys(answer.headers ?? {})) {
    if (r.headers.get(header) === null) fail(`${id}: documented header ${header} is missing`);
  }
  if (type === "application/x-ndjson") {
    const lines = text.split("\n").filter((l) => l !== "");
    if (lines.length === 0) fail(`${id}: the stream is empty`);
    lines.forEach((line, i) => check(media.schema, JSON.parse(line), `${id} line ${i + 1}`));
  } else {
    const body = JSON.parse(text);
    check(media.schema, body, `${id} answer ${r.status}`);
    if (id === "CreateItem") {
      created.id = body.id;
      created.etagHeader = r.headers.get("etag");
    }
  }
}

// An error, as documented for every operation ("default").
{
  const op = api.paths["/v1/items/{id}"].get;
  const r = await fetch(`${base}/v1/items/987654321`);
  if (r.status !== 404) fail(`GET of a missing item answered ${r.status}`);
  check(op.responses.default.content["application/json"].schema, await r.json(), "error answer");
}

if (failures.length > 0) {
  console.log(failures.join("\n"));
  process.exit(1);
}
console.log(`ok: both documents valid, ${operations.length} operations called as documented`);
