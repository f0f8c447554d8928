// The emulator's runtime for nodejs* functions: the Lambda Runtime API loop
// that AWS's Node.js images run, in plain Node (global fetch, Node >= 18),
// so functions run without building npm's aws-lambda-ric (which needs cmake
// and a C++ toolchain). Handlers are async or return a promise; Node's
// callback style, which the nodejs24.x runtime also dropped, is not served.
import { existsSync } from "node:fs";
import { register } from "node:module";
import path from "node:path";
import tls from "node:tls";
import { pathToFileURL } from "node:url";

// With `--execute-api HOST PORT` (the emulator serves TLS), connections
// to the API's execute-api host on port 443, which code written for AWS
// makes to post to @connections, go to the emulator's port instead; the
// certificate is still checked against HOST. Name resolution alone could
// not change the port. The function's environment is not touched.
const flag = process.argv.indexOf("--execute-api");
if (flag > 0) {
  const host = String(process.argv[flag + 1]).toLowerCase();
  const port = Number(process.argv[flag + 2]);
  const connect = tls.connect;
  tls.connect = function (...args) {
    const o = args[0];
    if (o && typeof o === "object") {
      const name = String(o.servername || o.host || "").toLowerCase().replace(/\.$/, "");
      if (name === host && Number(o.port || 443) === 443) {
        args[0] = { ...o, host: "127.0.0.1", port, servername: host };
      }
    }
    return connect.apply(this, args);
  };
}

// Lambda's Node.js runtimes let ES modules import the AWS SDK they ship,
// but Node's own ES module resolution ignores NODE_PATH (CommonJS honours
// it). This resolve hook retries a bare specifier that the function's own
// node_modules lacks from each NODE_PATH directory, so a bundled copy wins.
const FALLBACK_HOOK = `
import path from "node:path";
import { pathToFileURL } from "node:url";
let parents = [];
export async function initialize({ paths }) {
  parents = paths.map((p) => pathToFileURL(path.join(p, "_.mjs")).href);
}
export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context);
  } catch (e) {
    const bare = !/^(\\.|\\/|[a-zA-Z][a-zA-Z0-9+.-]*:)/.test(specifier);
    if (!bare || e?.code !== "ERR_MODULE_NOT_FOUND") throw e;
    for (const parentURL of parents) {
      try {
        return await next(specifier, { ...context, parentURL });
      } catch {}
    }
    throw e;
  }
}`;
if (process.env.NODE_PATH && typeof register === "function") {
  register("data:text/javascript," + encodeURIComponent(FALLBACK_HOOK), {
    parentURL: import.meta.url,
    data: { paths: process.env.NODE_PATH.split(path.delimiter).filter(Boolean) },
  });
}

const api = `http://${process.env.AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime`;
const root = process.env.LAMBDA_TASK_ROOT || process.cwd();
const spec = process.env._HANDLER || "index.handler";
const dot = spec.lastIndexOf(".");
const modulePath = spec.slice(0, dot);
const exportName = spec.slice(dot + 1);

function failure(e, fallback) {
  const errorType = (e && e.name) || fallback;
  const body = JSON.stringify({
    errorType,
    errorMessage: e && e.message !== undefined ? String(e.message) : String(e),
    trace: String((e && e.stack) || "").split("\n"),
  });
  return { body, headers: { "Lambda-Runtime-Function-Error-Type": errorType } };
}

async function load() {
  for (const ext of [".mjs", ".js", ".cjs"]) {
    const file = path.join(root, modulePath + ext);
    if (!existsSync(file)) continue;
    const mod = await import(pathToFileURL(file).href);
    const fn = mod[exportName] ?? (mod.default && mod.default[exportName]);
    if (typeof fn !== "function") {
      const e = new Error(`${spec} is undefined or not exported`);
      e.name = "Runtime.HandlerNotFound";
      throw e;
    }
    return fn;
  }
  const e = new Error(`Cannot find module '${modulePath}' in ${root}`);
  e.name = "Runtime.ImportModuleError";
  throw e;
}

let handler;
try {
  handler = await load();
} catch (e) {
  const { body, headers } = failure(e, "Runtime.Unknown");
  await fetch(`${api}/init/error`, { method: "POST", body, headers });
  process.exit(1);
}

for (;;) {
  const next = await fetch(`${api}/invocation/next`);
  const id = next.headers.get("lambda-runtime-aws-request-id");
  const deadline = Number(next.headers.get("lambda-runtime-deadline-ms"));
  const clientContext = next.headers.get("lambda-runtime-client-context");
  const identity = next.headers.get("lambda-runtime-cognito-identity");
  process.env._X_AMZN_TRACE_ID = next.headers.get("lambda-runtime-trace-id") || "";
  const event = await next.json();
  const context = {
    awsRequestId: id,
    invokedFunctionArn: next.headers.get("lambda-runtime-invoked-function-arn"),
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
    clientContext: clientContext ? JSON.parse(clientContext) : undefined,
    identity: identity ? JSON.parse(identity) : undefined,
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  };
  try {
    const result = await handler(event, context);
    await fetch(`${api}/invocation/${id}/response`, {
      method: "POST",
      body: JSON.stringify(result === undefined ? null : result),
    });
  } catch (e) {
    const { body, headers } = failure(e, "Error");
    await fetch(`${api}/invocation/${id}/error`, { method: "POST", body, headers });
  }
}
