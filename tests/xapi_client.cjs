// Drives the independent xAPI client (npm @xapi/xapi, installed into .tools/ by
// scripts/_bootstrap.sh eduledger_xapi_client) for tests/test_records_xapi.py.
// stdin: {"module", "endpoint", "user", "password", "version", "calls": [{"fn", "params",
// "moreOf": i}]}; stdout: one JSON array, per call {"status", "data", "headers"} or
// {"error": {"status", "data"}}. "moreOf": i takes params.more from the answer of call i.
const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
const XAPI = require(input.module);

async function main() {
  const auth = input.user === null ? undefined : XAPI.toBasicAuth(input.user, input.password);
  const xapi = new XAPI({ endpoint: input.endpoint, auth, version: input.version || "2.0.0" });
  const out = [];
  for (const call of input.calls) {
    const params = { ...(call.params || {}) };
    if (call.moreOf !== undefined) params.more = out[call.moreOf].data.more;
    try {
      const r = await xapi[call.fn](params);
      out.push({ status: r.status, data: r.data, headers: r.headers });
    } catch (e) {
      const response = e.response || {};
      out.push({ error: { status: response.status || null, data: response.data || String(e) } });
    }
  }
  process.stdout.write(JSON.stringify(out));
}
main().catch((e) => { process.stderr.write(String(e.stack || e)); process.exit(1); });
